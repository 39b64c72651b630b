#!/usr/bin/env bash
# bench/rebalance/kafka.sh: the rebalance measurement against Apache Kafka, for comparison.
#
#   bench/rebalance/kafka.sh [--fast] [any other flag of go run ./bench/rebalance]
#
# Starts a fresh single-node KRaft Kafka on loopback (free ports, data in a temporary directory)
# from the jars bench/run fetches ($SAMSA_CACHE/kafka-broker-jars, default ~/.cache/samsa), with
# group.initial.rebalance.delay.ms=3000 (Kafka's default) and, with --fast,
# group.consumer.heartbeat.interval.ms=500 (group.consumer.min.heartbeat.interval.ms lowered to
# allow it); runs `go run ./bench/rebalance --brokers <it> "$@"`; stops Kafka however it ends.
# Needs: go, java 17+ (JAVA, default /usr/bin/java), python3 (free ports, cluster id).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
CACHE=${SAMSA_CACHE:-$HOME/.cache/samsa}
JARS=$CACHE/kafka-broker-jars
JAVA=${JAVA:-/usr/bin/java}

say() { echo "kafka.sh: $*" >&2; }

if ! compgen -G "$JARS/kafka_2.13-*.jar" > /dev/null; then
	say "no Kafka jars in $JARS: run bench/run once (it fetches them with mvn)"
	exit 1
fi
fast=false
for a in "$@"; do
	if [[ $a == --fast || $a == --fast=true ]]; then fast=true; fi
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/samsa-rebalance-kafka.XXXXXX")
kafka_pid=""
cleanup() {
	local rc=$?
	if [[ -n $kafka_pid ]] && kill -0 "$kafka_pid" 2> /dev/null; then
		kill -TERM "$kafka_pid" 2> /dev/null || true
		for _ in $(seq 1 200); do kill -0 "$kafka_pid" 2> /dev/null || break; sleep 0.1; done
		kill -KILL "$kafka_pid" 2> /dev/null || true
	fi
	if [[ $rc != 0 && -f $WORK/kafka.log ]]; then
		say "failed; the last lines of Kafka's log:"
		tail -n 30 "$WORK/kafka.log" >&2 || true
	fi
	rm -rf "$WORK"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

read -r port cport cluster_id < <(python3 -c '
import base64, socket, uuid
socks = [socket.socket() for _ in range(2)]
for s in socks:
    s.bind(("127.0.0.1", 0))
cid = "-"
while cid.startswith("-"):  # kafka-storage would take it for an option
    cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
print(*(s.getsockname()[1] for s in socks), cid)
')

cat > "$WORK/server.properties" << EOF
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$cport
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs=$WORK/data
num.partitions=1
default.replication.factor=1
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
group.initial.rebalance.delay.ms=3000
file.delete.delay.ms=1000
EOF
if $fast; then
	cat >> "$WORK/server.properties" << EOF
group.consumer.min.heartbeat.interval.ms=500
group.consumer.heartbeat.interval.ms=500
EOF
fi
cat > "$WORK/log4j2.properties" << 'EOF'
status = warn
appender.console.type = Console
appender.console.name = STDERR
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.stderr.ref = STDERR
EOF
log4j=-Dlog4j2.configurationFile=$WORK/log4j2.properties

say "formatting and starting Kafka ($(basename "$(compgen -G "$JARS/kafka_2.13-*.jar" | head -n1)" .jar)) on 127.0.0.1:$port"
timeout 120 "$JAVA" -Xmx512m "$log4j" -cp "$JARS/*" kafka.tools.StorageTool format \
	-t "$cluster_id" -c "$WORK/server.properties" > "$WORK/kafka.log" 2>&1
# The heap and GC settings of kafka-server-start.sh, as bench/run uses.
"$JAVA" -Xms1g -Xmx1g -server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 \
	-XX:+ExplicitGCInvokesConcurrent -Djava.awt.headless=true "$log4j" -cp "$JARS/*" \
	kafka.Kafka "$WORK/server.properties" >> "$WORK/kafka.log" 2>&1 &
kafka_pid=$!
for i in $(seq 1 900); do
	if (exec 3<> "/dev/tcp/127.0.0.1/$port") 2> /dev/null; then break; fi
	kill -0 "$kafka_pid" 2> /dev/null || { say "Kafka exited"; exit 1; }
	((i < 900)) || { say "Kafka did not listen within 90s"; exit 1; }
	sleep 0.1
done

cd "$ROOT"
timeout --signal=TERM --kill-after=30s "${SAMSA_REBALANCE_TIMEOUT:-50m}" \
	go run ./bench/rebalance --brokers "127.0.0.1:$port" "$@"
