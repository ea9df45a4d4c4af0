# Sourced first by PID 1 of each test/vm guest (init.sh, bench.sh): the
# mounts, /run.conf, and the @@STEP/@@OK/@@FAIL lines the host reads from
# the serial console. A guest with more to show when a step fails (its
# daemon's log) redefines on_fail.
export PATH=/bin:/sbin
/bin/busybox mkdir -p /proc /sys /dev /tmp /mnt /run
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /tmp
. /run.conf

step() { CUR=$1; echo "@@STEP $*"; }
ok() { echo "@@OK $CUR $*"; }
on_fail() { :; }
fail() {
	echo "@@FAIL $CUR $*"
	on_fail
	dmesg | tail -n 40
	echo "@@RESULT FAIL"
	poweroff -f
	exit 1
}

# running PID: the process is alive. A daemon is reparented to PID 1 and
# never reaped: a zombie has exited.
running() {
	[ -d /proc/$1 ] && ! grep -q '^State:.*Z' /proc/$1/status 2>/dev/null
}
