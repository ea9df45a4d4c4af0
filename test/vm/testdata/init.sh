#!/bin/sh
# PID 1 of the test/vm guest: attaches s3backer to /dev/nbd0 the way users
# do (daemon mode), puts an ext4 file system on it, stops and restarts it
# and checks that everything survived. Each step prints "@@STEP name" and
# then "@@OK name ..." or "@@FAIL name ..."; the run ends with
# "@@RESULT PASS" or "@@RESULT FAIL". The host test reads them from the
# serial console. /run.conf sets MODE (test or s3) and S3B_ARGS.
. /guest.sh
on_fail() { syslog; }
# (busybox --install put its own mke2fs and e2fsck first in PATH: the real
# ones are called by their path.)
wait_gone() {
	n=0
	while running $1; do
		n=$((n + 1))
		[ $n -gt 600 ] && return 1 # 60 s
		sleep 0.1
	done
}
blocks() {
	if [ "$MODE" = test ]; then find /tmp/s3b -type f | wc -l; else echo 0; fi
}

# s3backer's daemon logs to syslog: kept in a file and shown whole at the
# end (written straight to the console, its lines could interleave with the
# kernel's and be missed by the host's checks).
syslogd -O /tmp/messages
syslog() { echo "@@SYSLOG-BEGIN"; cat /tmp/messages; echo "@@SYSLOG-END"; }

step modules
for m in $(cat /modules.list); do
	insmod /modules/$m || fail "insmod $m"
done
[ -b /dev/nbd0 ] || fail "no /dev/nbd0"
ok

if [ "$MODE" = s3 ]; then
	step network
	ip link set lo up
	ip link set eth0 up || fail "no eth0"
	ip addr add 10.0.2.15/24 dev eth0 || fail
	ok
fi

mkdir -p /tmp/s3b
start() {
	/bin/s3backer --nbd $S3B_ARGS /dev/nbd0 || fail "s3backer exited with $?"
	[ -e /sys/block/nbd0/pid ] || fail "no /sys/block/nbd0/pid after s3backer returned"
	size=$(cat /sys/block/nbd0/size)
	[ "$size" = $((256 * 2048)) ] || fail "size $size sectors"
	ok "thread=$(cat /sys/block/nbd0/pid) backend=$(cat /sys/block/nbd0/backend 2>/dev/null)"
}
# kill_server DEV: SIGTERM to the process serving /dev/DEV, and wait for
# it to exit. The kernel records the attaching thread; signal its process.
kill_server() {
	tid=$(cat /sys/block/$1/pid) || fail "not attached"
	pid=$(sed -n 's/^Tgid:[[:space:]]*//p' /proc/$tid/status)
	[ -n "$pid" ] || fail "no process for thread $tid"
	kill -TERM "$pid" || fail "kill $pid"
	wait_gone "$pid" || fail "s3backer $pid still running"
}
stop() {
	kill_server nbd0
	ok
	step detached
	[ ! -e /sys/block/nbd0/pid ] || fail "pid file still there"
	size=$(cat /sys/block/nbd0/size)
	[ "$size" = 0 ] || fail "size $size sectors after stop"
	ok
}

step attach
start

step mkfs
# mke2fs asks for random bytes: say whether the generator was ready (it
# waited for minutes once, before qemu_test.go seeded it from RDRAND).
dmesg | grep -m1 'crng init done' || echo 'random: crng not ready yet'
/sbin/mke2fs -t ext4 -F -q /dev/nbd0 || fail
ok

step mount
# As the fstab line of s3backer's NBD guide.
mount -t ext4 -o discard,noatime,nodiratime /dev/nbd0 /mnt || fail
ok

step write
for i in 1 2 3 4; do
	dd if=/dev/urandom of=/mnt/file$i bs=64k count=$((i * 8)) 2>/dev/null || fail "file$i"
done
mkdir /mnt/dir && echo "hello from the guest" >/mnt/dir/small || fail
(cd /mnt && sha256sum file1 file2 file3 file4 dir/small) >/tmp/sums || fail
sync
ok "$(wc -l </tmp/sums) files"

step fstrim
dd if=/dev/urandom of=/mnt/junk bs=1M count=16 2>/dev/null || fail junk
sync
before=$(blocks)
rm /mnt/junk
sync
fstrim -v /mnt || fail
sync
after=$(blocks)
if [ "$MODE" = test ] && [ "$after" -ge "$before" ]; then
	fail "blocks $before -> $after: nothing deleted"
fi
ok "blocks $before -> $after"

step umount
umount /mnt || fail
ok

step stop
stop

step reattach
start

step verify
mount -t ext4 -o discard,noatime,nodiratime /dev/nbd0 /mnt || fail mount
(cd /mnt && sha256sum -c /tmp/sums) || fail
ok
umount /mnt || fail umount

step fsck
/sbin/e2fsck -f -n /dev/nbd0 || fail "e2fsck exited with $?"
ok

step stop2
stop

if [ "$MODE" = test ]; then
	# A server killed outright leaves the kernel attached to nothing: the
	# next start takes the device over. (With S3 the 'already mounted'
	# flag would also need --force, as with s3backer.)
	step takeover
	/bin/s3backer --nbd $S3B_ARGS /dev/nbd0 || fail "first start: $?"
	tid=$(cat /sys/block/nbd0/pid)
	pid=$(sed -n 's/^Tgid:[[:space:]]*//p' /proc/$tid/status)
	kill -KILL "$pid"
	wait_gone "$pid" || fail "s3backer $pid survived SIGKILL"
	[ -e /sys/block/nbd0/pid ] || fail "the kernel let go by itself"
	start
	step stop3
	stop
fi

if [ "$MODE" = test ] && [ -x /bin/nbdkit ]; then
	# --nbd-flag: the disk served by nbdkit with our plugin, attached and
	# stopped the same way.
	nbdkit_running() { ps | grep -q '[/]bin/nbdkit '; }
	step nbdkit-attach
	mkdir -p /tmp/s3bk
	/bin/s3backer --nbd --nbd-flag=--threads=4 --test --size=64M --blockSize=64k /tmp/s3bk /dev/nbd1 ||
		fail "s3backer exited with $?"
	[ -e /sys/block/nbd1/pid ] || fail "no /sys/block/nbd1/pid after s3backer returned"
	size=$(cat /sys/block/nbd1/size)
	[ "$size" = $((64 * 2048)) ] || fail "size $size sectors"
	nbdkit_running || fail "no nbdkit running: $(ps)"
	ok
	step nbdkit-io
	dd if=/dev/urandom of=/tmp/k.img bs=64k count=32 2>/dev/null || fail
	dd if=/tmp/k.img of=/dev/nbd1 bs=64k oflag=direct conv=fsync 2>/dev/null || fail "write"
	want=$(md5sum </tmp/k.img)
	got=$(dd if=/dev/nbd1 bs=64k count=32 iflag=direct 2>/dev/null | md5sum)
	[ "$got" = "$want" ] || fail "read back $got, wrote $want"
	ok
	step nbdkit-stop
	kill_server nbd1
	[ ! -e /sys/block/nbd1/pid ] || fail "still attached"
	n=0
	while nbdkit_running; do
		n=$((n + 1))
		[ $n -gt 600 ] && fail "nbdkit still running"
		sleep 0.1
	done
	# The 32 blocks written reached the store (the directory).
	k=$(find /tmp/s3bk -type f | wc -l)
	[ "$k" = 32 ] || fail "$k block files, want 32"
	ok
fi

if [ "$MODE" = test ] && [ -x /bin/nbddev.test ]; then
	step nbddev-tests
	NBDDEV_TEST_DEVICE=/dev/nbd1 /bin/nbddev.test -test.v -test.run Kernel -test.timeout 5m || fail
	ok
fi

syslog
echo "@@RESULT PASS"
poweroff -f
