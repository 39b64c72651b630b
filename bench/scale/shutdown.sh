#!/usr/bin/env bash
# shutdown.sh N: the clean-shutdown time of a broker whose N x 10,000 partitions have all been
# opened. It starts a real `samsa server` in a temporary directory with a 10 s retention
# interval, creates N topics of 10,000 partitions, waits until the retention pass has opened
# every log (each has its segment file), then times SIGTERM to exit: the first shutdown, when
# every log is new and writes its state. Then it starts the broker again on the same data,
# waits 30 s (three retention passes, each opening every log) and times SIGTERM again: the
# steady state, when the logs opened cleanly and unchanged write nothing.
#   bench/scale/shutdown.sh 1     # 10,000 partitions
#   bench/scale/shutdown.sh 10    # 100,000 partitions (needs ulimit -n of about 20,000)
set -euo pipefail
n=${1:-1}
cd "$(dirname "$0")/../.."
work=$(mktemp -d /tmp/samsa-shutdown.XXXXXX)
trap 'kill $pid 2>/dev/null || true; rm -rf "$work"' EXIT
go build -o "$work/samsa" ./cmd/samsa
port=$((20000 + RANDOM % 20000)); cport=$((port + 1))
start_server() {
"$work/samsa" server --override listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport \
	--override log.dirs="$work/data" --override log.retention.check.interval.ms=10000 >>"$work/server.log" 2>&1 &
pid=$!
}
start_server
until "$work/samsa" topic create big1 --partitions 10000 --brokers 127.0.0.1:$port >/dev/null 2>&1; do sleep 0.5; done
for i in $(seq 2 "$n"); do "$work/samsa" topic create "big$i" --partitions 10000 --brokers 127.0.0.1:$port >/dev/null; done
until [ "$(find "$work/data" -name '*.log' | wc -l)" -ge $((n * 10000)) ]; do sleep 2; done
stop_server() {
	start=$(date +%s.%N)
	kill -TERM $pid
	wait $pid || true
	end=$(date +%s.%N)
	echo "$n x 10000 opened partitions, $1: clean shutdown took $(echo "$end - $start" | bc) s"
}
stop_server "new logs"
start_server
until "$work/samsa" topic list --brokers 127.0.0.1:$port >/dev/null 2>&1; do sleep 0.5; done
sleep 30
stop_server "opened again unchanged"
