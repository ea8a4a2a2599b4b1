#!/bin/sh
# demo.sh - the seed example, run by `make demo` (after `make` built bin/).
#
# Two unmodified, dynamically linked programs talk TCP over swrap's emulated
# network:
#   host 10 (127.0.0.10) runs the server:  bin/demo-server 127.0.0.10 7
#   host 11 (127.0.0.11) runs the client:  bin/demo-client 127.0.0.10 7
# The client sends two lines, the server prints them and sends a line back.
# Every frame is captured to bin/demo.pcap, which is then summarised.
#
# demo-server and demo-client (demo/*.c, built by make) do what
# `nc -l` and `nc -N` do here; `sh scripts/demo.sh --nc` runs netcat-openbsd
# instead. The built programs are the default, not nc when it is installed,
# so that the demo needs only Go, gcc and make and shows the same thing on
# every machine (nc's variants differ in options and in when they exit).
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
	mode=built
	case "${1:-}" in
	'') ;;
	--nc) mode=nc ;;
	*)
		echo "usage: sh scripts/demo.sh [--nc]" >&2
		exit 2
		;;
	esac
	if [ ! -x "$swrap" ] || [ ! -x "$root/bin/swrap-broker" ] || [ ! -f "$root/bin/libswrap.so" ] ||
		[ ! -x "$root/bin/demo-server" ] || [ ! -x "$root/bin/demo-client" ]; then
		echo "demo: bin/ is not built; run make first" >&2
		exit 1
	fi
	if [ $mode = nc ]; then
		if ! command -v nc >/dev/null 2>&1; then
			echo "demo: nc is not installed; install netcat-openbsd (apt-get install netcat-openbsd), or run the demo without --nc" >&2
			exit 1
		fi
		if ! nc -h 2>&1 | grep -q -- '^[[:space:]]*-N[[:space:]]'; then
			echo "demo: this nc has no -N option; install netcat-openbsd (apt-get install netcat-openbsd), or run the demo without --nc" >&2
			exit 1
		fi
	fi
	rm -f "$pcap"
	if [ $mode = nc ]; then
		echo "== swrap demo: two wrapped netcats on an emulated network"
	else
		echo "== swrap demo: a wrapped TCP server and client on an emulated network"
	fi
	# timeout bounds the demo, should anything hang: it kills the whole group.
	"$swrap" run --pcap "$pcap" -- timeout 20 sh "$0" --inside $mode
	echo
	echo "== the broker has stopped and its directory is gone; the capture:"
	show "swrap pcap summary bin/demo.pcap"
	"$swrap" pcap summary "$pcap" | sed "s|$pcap|bin/demo.pcap|g"
	exit 0
fi

# Inside the outer `swrap run`: SOCKET_WRAPPER_DIR names the network.
dir=$SOCKET_WRAPPER_DIR
echo "network directory: $dir"
# server and client are the programs as run; the show lines print them as
# typed from the repository's top directory.
if [ "${2:-}" = nc ]; then
	server="nc -l" client="nc -N" server_shown=$server client_shown=$client
else
	server=$root/bin/demo-server client=$root/bin/demo-client
	server_shown=bin/demo-server client_shown=bin/demo-client
fi
echo
show "printf 'greetings from host 10\\n' | swrap run --iface 10 -- $server_shown 127.0.0.10 7 &"
printf 'greetings from host 10\n' |
	"$swrap" run --iface 10 -- $server 127.0.0.10 7 >"$dir/server.out" 2>&1 &
server_pid=$!

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
show "printf 'hello, host 10\\nthis line crossed a gVisor TCP/IP stack\\n' | swrap run --iface 11 -- $client_shown 127.0.0.10 7"
printf 'hello, host 10\nthis line crossed a gVisor TCP/IP stack\n' |
	"$swrap" run --iface 11 -- $client 127.0.0.10 7 >"$dir/client.out"
wait $server_pid

echo
echo "server (host 10, 127.0.0.10) received:"
sed 's/^/  | /' "$dir/server.out"
echo "client (host 11, 127.0.0.11) received:"
sed 's/^/  | /' "$dir/client.out"
