#!/bin/sh
# make bench / make bench-quick: builds the C helpers, installs what is
# missing (as root, with apt-get), raises RLIMIT_NOFILE and runs bench.py.
#   sh bench/run.sh [--quick] [bench.py options...]
#   sh bench/run.sh --profile [profile.py options...]   (make bench-profile)
set -e
cd "$(dirname "$0")/.."

for f in bin/libswrap.so bin/swrap-broker bin/swrap; do
	[ -e "$f" ] || { echo "bench: $f missing: run make first" >&2; exit 1; }
done

mkdir -p bin/bench
for p in rtt cac conns idle relay; do
	if [ ! -x bin/bench/$p ] || [ bench/$p.c -nt bin/bench/$p ] || [ bench/helpers.h -nt bin/bench/$p ]; then
		gcc -O2 -Wall -Wextra -o bin/bench/$p bench/$p.c
	fi
done

# the Go rows' server and client, static (CGO_ENABLED=0) so that swrap run
# supervises them through seccomp
if command -v go >/dev/null 2>&1; then
	CGO_ENABLED=0 go build -o bin/bench/gobench ./bench/gobench
else
	echo "bench: no go: the Go rows are left out" >&2
fi

need=""
command -v iperf3 >/dev/null 2>&1 || need="$need iperf3"
ls /usr/lib/x86_64-linux-gnu/libsocket_wrapper.so* >/dev/null 2>&1 || need="$need libsocket-wrapper"
# the real-server rows: Debian's packaged servers and load generators
command -v redis-server >/dev/null 2>&1 || need="$need redis-server"
command -v redis-benchmark >/dev/null 2>&1 || need="$need redis-tools"
[ -x /usr/sbin/nginx ] || command -v nginx >/dev/null 2>&1 || need="$need nginx"
command -v wrk >/dev/null 2>&1 || need="$need wrk"
command -v ab >/dev/null 2>&1 || need="$need apache2-utils"
# the chart needs matplotlib in the Debian python3
PY=python3
[ -x /usr/bin/python3 ] && PY=/usr/bin/python3
$PY -c 'import matplotlib' 2>/dev/null || need="$need python3-matplotlib"
if [ -n "$need" ]; then
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
		echo "bench: installing$need" >&2
		apt-get update -qq >&2 || true
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $need >&2 || \
			echo "bench: could not install$need; going on without" >&2
	else
		echo "bench: missing$need: run as root, or: sudo apt-get install -y$need" >&2
	fi
fi
command -v iperf3 >/dev/null 2>&1 || { echo "bench: iperf3 is required" >&2; exit 1; }

# 10k connections: client, server and broker each need > 10k descriptors
ulimit -n 1048576 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
PATH="$PATH:/usr/sbin"  # nginx
if [ "$1" = --profile ]; then
	shift
	command -v strace >/dev/null 2>&1 || { echo "bench: --profile needs strace (apt-get install strace)" >&2; exit 1; }
	exec $PY bench/profile.py "$@"
fi
exec $PY bench/bench.py "$@"
