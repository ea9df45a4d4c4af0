#!/bin/sh
# PID 1 of the test/vm benchmark guest (TestVMBench, run by bench/vm.sh):
# replaces init.sh in the initramfs. It times dd of MB MiB of random data
# through ext4 with conv=fsync, and back after dropping the caches, on
#   nbd   /dev/nbd0 attached by s3backer --nbd --test (blocks in tmpfs),
#   brd   a ram disk (brd.ko),
#   loop  a loop device over a file in tmpfs,
# the last two being the guest's own ceiling under the same emulation.
# The devices take turns within each of RUNS rounds, so a change in the
# host's load hits them alike. Each timing is printed as
#   @@BENCH dev run op MB/s seconds
# (MB = 10^6 bytes); steps print @@STEP/@@OK/@@FAIL as in init.sh, and the
# run ends with @@RESULT PASS or FAIL. /run.conf sets S3B_ARGS, MB, RUNS,
# DISK_MB (the size of each device) and NBD_QUEUE (settings of
# /sys/block/nbd0/queue, as "max_sectors_kb=1024 read_ahead_kb=1024").
. /guest.sh

syslogd -O /dev/console

step modules
for m in $(cat /modules.list) loop.ko; do
	insmod /modules/$m || fail "insmod $m"
done
insmod /modules/brd.ko rd_nr=1 rd_size=$((DISK_MB * 1024)) || fail "insmod brd"
[ -b /dev/nbd0 ] && [ -b /dev/ram0 ] && [ -b /dev/loop0 ] || fail "missing devices"
ok "$(grep MemTotal /proc/meminfo) cpus=$(nproc) clocksource=$(cat /sys/devices/system/clocksource/clocksource0/current_clocksource)"

step source
dd if=/dev/urandom of=/tmp/src bs=1M count=$MB 2>/dev/null || fail
ok "$MB MiB in /tmp/src"

step attach
mkdir -p /tmp/s3b
/bin/s3backer --nbd $S3B_ARGS /dev/nbd0 || fail "s3backer exited with $?"
[ -e /sys/block/nbd0/pid ] || fail "not attached"
truncate -s ${DISK_MB}M /tmp/loop.img || fail truncate
losetup /dev/loop0 /tmp/loop.img || fail losetup
ok "nbd0 $(cat /sys/block/nbd0/size) sectors, ram0 $(cat /sys/block/ram0/size), loop0 $(cat /sys/block/loop0/size)"

DEVS="nbd brd loop"
dev() {
	case $1 in
	nbd) echo /dev/nbd0 ;;
	brd) echo /dev/ram0 ;;
	loop) echo /dev/loop0 ;;
	esac
}

step mkfs
# An experiment's knob (S3BACKER_VM_BENCH_NBD_QUEUE): nbd0's queue settings.
for kv in $NBD_QUEUE; do
	echo "${kv#*=}" >/sys/block/nbd0/queue/${kv%%=*} || fail "nbd0 queue $kv"
done
for d in $DEVS; do
	# Inode tables and journal written now: no ext4lazyinit during the runs.
	/sbin/mke2fs -t ext4 -F -q -E lazy_itable_init=0,lazy_journal_init=0 $(dev $d) || fail "mke2fs $d"
	mkdir -p /mnt/$d
	mount -t ext4 -o noatime $(dev $d) /mnt/$d || fail "mount $d"
done
queue() { q=/sys/block/$1/queue; echo "$1 max_sectors_kb=$(cat $q/max_sectors_kb) read_ahead_kb=$(cat $q/read_ahead_kb)"; }
ok "$(queue nbd0), $(queue ram0), $(queue loop0)"

# stamp VAR: the time since boot, from the "now at N nsecs" line of
# /proc/timer_list (read by the shell itself: no process started), else
# from /proc/uptime's centiseconds. report dev run op start end prints it.
if grep -q '^now at [0-9]* nsecs' /proc/timer_list 2>/dev/null; then
	stamp() { { read _; read _; read _ _ _t _; } </proc/timer_list; eval "$1=\$_t"; }
	UNIT=1e9
else
	stamp() { read _t _ </proc/uptime; eval "$1=\$_t"; }
	UNIT=1
fi
report() {
	awk -v d=$1 -v r=$2 -v op=$3 -v a=$4 -v b=$5 -v u=$UNIT -v mb=$MB 'BEGIN {
		s = (b - a) / u; if (s <= 0) s = 0.005
		printf "@@BENCH %s %s %s %.1f %.3f\n", d, r, op, mb * 1.048576 / s, s
	}'
}

step bench
for i in $(seq $RUNS); do
	for d in $DEVS; do
		rm -f /mnt/$d/f
		sync
		echo 3 >/proc/sys/vm/drop_caches
		stamp t0
		dd if=/tmp/src of=/mnt/$d/f bs=1M conv=fsync 2>/dev/null || fail "write $d"
		stamp t1
		echo 3 >/proc/sys/vm/drop_caches
		stamp t2
		dd if=/mnt/$d/f of=/dev/null bs=1M 2>/dev/null || fail "read $d"
		stamp t3
		report $d $i write $t0 $t1
		report $d $i read $t2 $t3
	done
done
ok "timestamps per 1/$UNIT s"

step verify
for d in $DEVS; do
	cmp /tmp/src /mnt/$d/f || fail "$d: data differs"
	umount /mnt/$d || fail "umount $d"
done
ok

step stop
tid=$(cat /sys/block/nbd0/pid) || fail "not attached"
pid=$(sed -n 's/^Tgid:[[:space:]]*//p' /proc/$tid/status)
kill -TERM "$pid" || fail "kill $pid"
n=0
while running $pid; do
	n=$((n + 1))
	[ $n -gt 600 ] && fail "s3backer $pid still running"
	sleep 0.1
done
ok

echo "@@RESULT PASS"
poweroff -f
