# Shared helpers of the bench scripts. The gateway helpers want VGW (the
# versitygw binary), KEY and SECRET (its credentials) and work (a temp dir
# the script removes on exit) set before they are called.
# shellcheck shell=bash disable=SC2154

# need TOOL...: stop unless every TOOL is installed.
need() {
	local t
	for t; do command -v "$t" >/dev/null || fail "$t missing (scripts/install-test-deps.sh)"; done
}
# need_gateway: stop unless VGW is the versitygw binary.
need_gateway() {
	[ -x "$VGW" ] || fail "versitygw missing (go install github.com/versity/versitygw/cmd/versitygw@v1.8.0)"
}
# need_c: stop unless the C s3backer (CBIN), TIME (/usr/bin/time, for its
# CPU seconds) and /dev/fuse are there, for the benchmarks beside it.
need_c() {
	[ -x "$TIME" ] || fail "$TIME missing (apt-get install time)"
	[ -x "$CBIN" ] || fail "$CBIN missing (apt-get install s3backer)"
	[ -e /dev/fuse ] || fail "no /dev/fuse"
}

# start_gateway: a Versity S3 Gateway (posix backend in $work/gw,
# --keep-alive: without it every request opens a connection and throughput
# drops by a fifth) on a free loopback port, polled until it answers; with
# GW_ACCESS_LOG set, it logs every request to that file. Sets port, URL and
# gw_pid; its output goes to $work/gw.log.
start_gateway() {
	local try gwlog=()
	if [ -n "${GW_ACCESS_LOG:-}" ]; then gwlog=(--access-log "$GW_ACCESS_LOG"); fi
	mkdir -p "$work/gw"
	for try in 1 2 3 4 5; do
		port=$((20000 + RANDOM % 40000))
		# Something answers there already: pick another.
		(exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && continue
		"$VGW" --access "$KEY" --secret "$SECRET" --port "127.0.0.1:$port" --keep-alive --quiet \
			"${gwlog[@]}" posix "$work/gw" >"$work/gw.log" 2>&1 &
		gw_pid=$!
		for _ in $(seq 500); do
			if curl -s -o /dev/null "http://127.0.0.1:$port/"; then
				URL=http://127.0.0.1:$port/
				return 0
			fi
			kill -0 "$gw_pid" 2>/dev/null || break
			sleep 0.02
		done
		kill "$gw_pid" 2>/dev/null || true
		wait "$gw_pid" 2>/dev/null || true
		gw_pid=""
	done
	echo "bench: versitygw did not start (try $try):" >&2
	cat "$work/gw.log" >&2
	exit 1
}

# make_bucket NAME: a bucket on the gateway, with curl alone.
make_bucket() {
	curl -sf --aws-sigv4 "aws:amz:us-east-1:s3" --user "$KEY:$SECRET" \
		-H "x-amz-content-sha256: UNSIGNED-PAYLOAD" -X PUT "$URL$1" -o /dev/null
}

# median VALUES...: the median (the lower middle one of an even count).
median() { printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
# cpu PID: user+system CPU seconds of a running process.
cpu() { sed 's/.*) //' "/proc/$1/stat" | awk '{ printf "%.2f", ($12 + $13) / 100 }'; }
# sub A B: A - B.
sub() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a - b }'; }

# now: seconds since the epoch, with nanoseconds.
now() { date +%s.%N; }
# mbps START END [MB]: MB/s (10^6 bytes) of MB MiB (default $SIZE_MB) in END-START s.
mbps() { awk -v mb="${3:-$SIZE_MB}" -v s="$1" -v e="$2" 'BEGIN { printf "%.1f", mb * 1.048576 / (e - s) }'; }
# per_gib CPU_S: CPU seconds per GiB, for $SIZE_MB MiB moved.
per_gib() { awk -v s="$1" -v mb="$SIZE_MB" 'BEGIN { printf "%.2f", s * 1024 / mb }'; }
# bytes SIZE: 256k / 1M / plain bytes, in bytes.
bytes() { case $1 in *k | *K) echo $((${1%?} << 10)) ;; *m | *M) echo $((${1%?} << 20)) ;; *) echo "$1" ;; esac; }
# fail MSG [LOG]: stop with MSG, showing LOG.
fail() { echo "bench: $1" >&2; [ -z "${2:-}" ] || cat "$2" >&2; exit 1; }
# result_median FILE NAME KEY: the median over the lines of FILE that start
# with NAME of their KEY=VALUE field ("-" if never measured).
result_median() {
	local v
	v=$(awk -v name="$2" -v k="$3" '$1 == name { for (i = 2; i <= NF; i++) { split($i, kv, "="); if (kv[1] == k) print kv[2] } }' "$1")
	if [ -z "$v" ]; then echo -; else # shellcheck disable=SC2086
		median $v; fi
}

# wait_socket SOCK PID [LOG]: wait (up to 20 s) for the server PID to
# create the unix socket SOCK; stop, showing LOG, if it exits or never does.
wait_socket() {
	for _ in $(seq 1000); do
		[ -S "$1" ] && return 0
		kill -0 "$2" 2>/dev/null || break
		sleep 0.02
	done
	fail "$1 never appeared" "${3:-}"
}
