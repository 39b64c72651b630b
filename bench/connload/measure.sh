#!/usr/bin/env bash
# measure.sh: the broker's resident memory (VmRSS of a real `samsa server` process) under
# connection load from bench/connload, run as separate processes on loopback.
#   bench/connload/measure.sh slowloris   # 1,000 connections claiming 100 MB, trickling 1 byte/s
#   bench/connload/measure.sh idle        # 10,000 idle connections, one request each
# Prints the RSS before, at the peak while the connections are open, and 20 s after they closed.
set -euo pipefail
scenario=${1:-slowloris}
cd "$(dirname "$0")/../.."
work=$(mktemp -d /tmp/samsa-connload.XXXXXX)
trap 'kill $server 2>/dev/null || true; wait 2>/dev/null; rm -rf "$work"' EXIT
go build -o "$work/samsa" ./cmd/samsa
go build -o "$work/connload" ./bench/connload
port=$((20000 + RANDOM % 20000)); cport=$((port + 1))
ulimit -n 20000
"$work/samsa" server --override listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport \
	--override log.dirs="$work/data" ${SAMSA_OVERRIDES:-} >"$work/server.log" 2>&1 &
server=$!
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.2; done
rss() { awk '/VmRSS/ {print $2}' /proc/$server/status; }
echo "rss before: $(( $(rss) / 1024 )) MiB"
case $scenario in
slowloris) gens=1; args=(-mode slowloris -conns 1000 -claim 100000000 -interval 1s -hold 45s) ;;
idle) gens=2; args=(-mode idle -conns 5000 -hold 40s) ;;
*) echo "unknown scenario $scenario" >&2; exit 2 ;;
esac
pids=()
for _ in $(seq $gens); do "$work/connload" -addr 127.0.0.1:$port "${args[@]}" >>"$work/load.log" 2>&1 & pids+=($!); done
peak=0
while kill -0 "${pids[@]}" 2>/dev/null; do
	r=$(rss); (( r > peak )) && peak=$r
	sleep 1
done
wait "${pids[@]}" || true
cat "$work/load.log"
echo "rss peak with the connections open: $(( peak / 1024 )) MiB"
sleep 20
echo "rss 20 s after they closed: $(( $(rss) / 1024 )) MiB"
grep -c "closing connection: request not received" "$work/server.log" | sed 's/^/connections closed by samsa.request.read.timeout.ms: /'
