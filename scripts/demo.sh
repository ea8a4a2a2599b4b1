#!/bin/sh
# demo.sh - the seed example, run by `make demo` (after `make` built bin/).
#
# Two unmodified netcat processes talk TCP over swrap's emulated network:
#   host 10 (127.0.0.10) runs the server:  nc -l 127.0.0.10 7
#   host 11 (127.0.0.11) runs the client:  nc -N 127.0.0.10 7
# The client sends two lines, the server prints them and sends a line back.
# Every frame is captured to bin/demo.pcap, which is then summarised.
#
# The network lives in a private temporary directory made by the outer
# `swrap run`; the inner `swrap run`s pick a host on it. When the outer one
# ends, it stops the broker (which completes the capture) and removes the
# directory.
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
swrap=$root/bin/swrap
pcap=$root/bin/demo.pcap

# show prints a command as it would be typed.
show() { printf '$ %s\n' "$*"; }

if [ "${1:-}" != --inside ]; then
	if [ ! -x "$swrap" ] || [ ! -x "$root/bin/swrap-broker" ] || [ ! -f "$root/bin/libswrap.so" ]; then
		echo "demo: bin/ is not built; run make first" >&2
		exit 1
	fi
	if ! command -v nc >/dev/null 2>&1; then
		echo "demo: nc is not installed; install netcat-openbsd (apt-get install netcat-openbsd)" >&2
		exit 1
	fi
	if ! nc -h 2>&1 | grep -q -- '^[[:space:]]*-N[[:space:]]'; then
		echo "demo: this nc has no -N option; install netcat-openbsd (apt-get install netcat-openbsd)" >&2
		exit 1
	fi
	rm -f "$pcap"
	echo "== swrap demo: two wrapped netcats on an emulated network"
	# timeout bounds the demo, should anything hang: it kills the whole group.
	"$swrap" run --pcap "$pcap" -- timeout 20 sh "$0" --inside
	echo
	echo "== the broker has stopped and its directory is gone; the capture:"
	show "swrap pcap summary bin/demo.pcap"
	"$swrap" pcap summary "$pcap" | sed "s|$pcap|bin/demo.pcap|g"
	exit 0
fi

# Inside the outer `swrap run`: SOCKET_WRAPPER_DIR names the network.
dir=$SOCKET_WRAPPER_DIR
echo "network directory: $dir"
echo
show "printf 'greetings from host 10\\n' | swrap run --iface 10 -- nc -l 127.0.0.10 7 &"
printf 'greetings from host 10\n' |
	"$swrap" run --iface 10 -- nc -l 127.0.0.10 7 >"$dir/server.out" 2>&1 &
server=$!

# The server's first socket starts the broker; wait until it listens.
i=0
until "$swrap" status --json 2>/dev/null | grep -q '"tcp_state":"LISTEN","local":"127.0.0.10:7"'; do
	i=$((i + 1))
	if [ $i -gt 200 ]; then
		echo "demo: the server did not start listening on 127.0.0.10:7" >&2
		cat "$dir/server.out" >&2
		exit 1
	fi
	sleep 0.025
done
echo
show "swrap status"
"$swrap" status | sed 's/^./  &/'

echo
show "printf 'hello, host 10\\nthis line crossed a gVisor TCP/IP stack\\n' | swrap run --iface 11 -- nc -N 127.0.0.10 7"
printf 'hello, host 10\nthis line crossed a gVisor TCP/IP stack\n' |
	"$swrap" run --iface 11 -- nc -N 127.0.0.10 7 >"$dir/client.out"
wait $server

echo
echo "server (host 10, 127.0.0.10) received:"
sed 's/^/  | /' "$dir/server.out"
echo "client (host 11, 127.0.0.11) received:"
sed 's/^/  | /' "$dir/client.out"
