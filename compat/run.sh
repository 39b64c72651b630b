#!/usr/bin/env bash
# compat/run.sh: the external-client compatibility suite.
#
# Installs the clients (compat/install.sh), builds samsa, starts a fresh
# single-node broker on a free port with a temporary data directory, and runs
# one check per client. Each check creates its own 3-partition topic, produces
# keyed records (300 records over 10 keys, a per-key sequence number in each
# value), reads them back from the beginning and verifies them with
# compat/python/verify.py. The *-group checks (and kafka-consumer-groups) read
# as members of a consumer group, commit, and check the committed offsets. Prints
# "PASS <check>" or "FAIL <check>: reason" per check and ends with exactly
# "N passed, M failed"; exits 1 if M > 0.
#
# Then the 3-node section: `samsa cluster start` runs three samsa processes (the
# built-in config/cluster settings on free ports, in $WORK/cluster) and the
# cluster-* checks drive them with Kafka's own tools (kafka-topics with
# replication factor 3, kafka-metadata-quorum, kafka-features
# --bootstrap-controller, kafka-reassign-partitions --generate/--execute/--verify and
# --cancel, and --under-replicated-partitions after one node is stopped); `samsa
# cluster stop` ends them.
#
# Last the dynamic-quorum check (KIP-853), which starts its own three processes:
# one formatted --standalone, two controllers formatted --no-initial-controllers,
# grown and shrunk with kafka-metadata-quorum add-controller / remove-controller.
#
# Then the security checks, each starting its own SASL_SSL broker, and last the
# secured 3-node check (cluster-secured, issue 14's "done when"): three nodes whose
# client and inter-broker listeners are SASL_SSL, under the standard authorizer, users
# and ACLs made with Kafka's tools, alice served and bob refused by kcat,
# confluent-kafka, kafka-python, kafkajs and Kafka's console clients, and everything
# read back after a node is SIGKILLed.
#
# Environment:
#   SAMSA_CACHE                where installed clients live (default ~/.cache/samsa)
#   SAMSA_COMPAT_ONLY          space-separated subset of clients to run
#   SAMSA_COMPAT_BOOTSTRAP     host:port of a running broker: skip build and start
#   SAMSA_COMPAT_SERVER_ARGS   extra arguments for `samsa server`
#   SAMSA_COMPAT_METRICS       host:port of the running broker's samsa.metrics.address, with
#                              SAMSA_COMPAT_BOOTSTRAP (kcat-metrics scrapes it)
#   SAMSA_COMPAT_TIMEOUT       seconds per client check (default 45; the perf test gets twice that)
#   SAMSA_COMPAT_BUDGET        seconds for all the checks together (default 300); a check
#                              gets at most what is left, and none is started with less than 10s
#   SAMSA_COMPAT_CLUSTER_BUDGET  the same for the 3-node checks (default 210)
#   SAMSA_COMPAT_SECURED_BUDGET  seconds for the secured 3-node check, cluster-secured (default 120)
#   SAMSA_COMPAT_SECURITY_BUDGET  seconds the security checks add to the dynamic-quorum and
#                              security section's budget, which starts at the cluster budget (default 240)
#   SAMSA_COMPAT_KEEP=1        keep the work directory (logs) even when all pass
#   SAMSA_COMPAT_SKIP_INSTALL=1  do not run compat/install.sh
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
COMPAT=$ROOT/compat
export SAMSA_CACHE=${SAMSA_CACHE:-$HOME/.cache/samsa}
CLIENTS=(kcat kafka-python confluent-kafka kafkajs kafka-topics kafka-features kafka-console kafka-producer-perf-test
	kafka-transactional-producer kafka-transactional-copy kafka-transactional-copy-kip848 kafka-transactions kafka-consumer-groups kafka-console-group-kip848 kafka-python-group confluent-kafka-group
	confluent-kafka-group-pair confluent-kafka-group-kip848 confluent-kafka-group-mixed kafka-configs-compact
	confluent-kafka-transactions kafka-topics-mutation-quota kcat-metrics)
# The 3-node checks, in this order (the last one stops a node).
CLUSTER_CHECKS=(cluster-kafka-topics cluster-metadata-quorum cluster-kafka-features cluster-leader-election cluster-reassign-partitions
	cluster-reassign-throttle cluster-reassign-cancel cluster-java-across-kill cluster-under-replicated)
# The dynamic-quorum checks, each starting its own processes.
DYNAMIC_CHECKS=(dynamic-quorum-add-remove-controller)
# The security checks, each starting its own broker with a SASL_SSL listener.
SECURITY_CHECKS=(kcat-sasl-ssl-scram512 confluent-kafka-sasl-ssl-scram512 kafka-configs-scram-java kafka-acls-sasl kafka-configs-quotas
	confluent-kafka-oauthbearer-unsecured kafka-console-oauthbearer kafkajs-oauthbearer kafka-console-oauthbearer-jwks
	kafka-metadata-quorum-sasl-controller kcat-add-scram-bootstrap)
# The secured 3-node check (issue 14's "done when"), starting its own three processes; it
# gets SECURED_BUDGET seconds of its own.
SECURED_CLUSTER_CHECKS=(cluster-secured)
TIMEOUT=${SAMSA_COMPAT_TIMEOUT:-45}
SECURED_BUDGET=${SAMSA_COMPAT_SECURED_BUDGET:-120}
CLUSTER_BUDGET=${SAMSA_COMPAT_CLUSTER_BUDGET:-210}
BUDGET=${SAMSA_COMPAT_BUDGET:-300}
PARTITIONS=3 KEYS=10 PER_KEY=30
# More security checks: kafka-python with PLAIN, kafkajs with SCRAM, mTLS (secc_* functions).
SECURITY_CHECKS+=(kafka-python-sasl-plaintext-plain kafka-python-sasl-ssl-plain kafkajs-sasl-ssl-scram256
	kafkajs-sasl-ssl-scram512 kafka-python-mtls kafkajs-mtls kafka-console-ssl-key-password kafka-delegation-tokens)
# Seconds the security checks add to the dynamic-quorum section's budget (they run with it).
SECURITY_BUDGET=${SAMSA_COMPAT_SECURITY_BUDGET:-270}

BROKER_PID=

stop_broker() {
	[[ -n $BROKER_PID ]] || return 0
	kill -TERM "$BROKER_PID" 2> /dev/null
	for _ in $(seq 100); do
		kill -0 "$BROKER_PID" 2> /dev/null || break
		sleep 0.1
	done
	kill -KILL "$BROKER_PID" 2> /dev/null
	wait "$BROKER_PID" 2> /dev/null
	BROKER_PID=
}
cleanup() {
	stop_broker
	stop_cluster
	if [[ ${KEEP_WORK:-} == 1 || ${SAMSA_COMPAT_KEEP:-} == 1 ]]; then
		echo "compat: logs kept in $WORK" >&2
	else
		rm -rf "$WORK"
	fi
}
log() { echo "compat: $*" >&2; }

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# last_error FILE: the most telling line of a client's output, for a FAIL reason.
last_error() {
	local line
	line=$(grep -E '^error: |ERROR|Exception|^% (ERROR|Failed)|^%[0-3]\|' "$1" 2> /dev/null |
		grep -v 'errors.TimeoutException$' | tail -n 1)
	[[ -n $line ]] || line=$(grep -v '^[[:space:]]*$' "$1" 2> /dev/null | tail -n 1)
	line=${line#error: }
	echo "${line:0:400}"
}

PY=$SAMSA_CACHE/venv/bin/python
JARS=$SAMSA_CACHE/kafka-jars
JAVA_OPTS=(-Xmx256m -XX:TieredStopAtLevel=1 -Xshare:auto
	-Dorg.slf4j.simpleLogger.defaultLogLevel=warn -Dorg.slf4j.simpleLogger.logFile=System.err)

# ---- broker ----------------------------------------------------------------

# start_broker: builds samsa and starts it; sets BOOTSTRAP and BROKER_PID, or
# BROKER_PROBLEM saying why not.
start_broker() {
	if ! (cd "$ROOT" && go build -o "$WORK/samsa" ./cmd/samsa) > "$WORK/build.log" 2>&1; then
		BROKER_PROBLEM="go build ./cmd/samsa failed: $(tail -n 1 "$WORK/build.log")"
		return 1
	fi
	local port cport mport
	port=$(free_port) cport=$(free_port) mport=$(free_port)
	while [[ $cport == "$port" ]]; do cport=$(free_port); done
	while [[ $mport == "$port" || $mport == "$cport" ]]; do mport=$(free_port); done
	METRICS=127.0.0.1:$mport
	# shellcheck disable=SC2206 # word splitting of the extra arguments is intended
	local extra=(${SAMSA_COMPAT_SERVER_ARGS:-})
	"$WORK/samsa" server \
		--override "listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport" \
		--override "advertised.listeners=PLAINTEXT://127.0.0.1:$port" \
		--override "log.dirs=$WORK/data" \
		--override log.cleaner.backoff.ms=100 \
		--override "samsa.metrics.address=$METRICS" \
		"${extra[@]}" > "$WORK/broker.log" 2>&1 &
	BROKER_PID=$!
	BOOTSTRAP=127.0.0.1:$port
	local deadline=$((SECONDS + 30))
	while ((SECONDS < deadline)); do
		if ! kill -0 "$BROKER_PID" 2> /dev/null; then
			wait "$BROKER_PID"
			BROKER_PROBLEM="samsa server exited with status $? at startup: $(tail -n 1 "$WORK/broker.log")"
			BROKER_PID=
			return 1
		fi
		if (exec 3<> "/dev/tcp/127.0.0.1/$port") 2> /dev/null; then
			# Accepting connections; wait for metadata that lists this broker.
			if ! command -v kcat > /dev/null ||
				kcat -L -b "$BOOTSTRAP" -m 2 2> /dev/null | grep -q '1 brokers'; then
				return 0
			fi
		fi
		sleep 0.2
	done
	BROKER_PROBLEM="samsa server did not answer metadata on $BOOTSTRAP within 30s: $(tail -n 1 "$WORK/broker.log")"
	return 1
}

# ---- 3-node cluster ----------------------------------------------------------

CLUSTER_DIR=${CLUSTER_DIR:-} # exported to the checks, which run in a fresh copy of this script

# start_cluster: `samsa cluster start` of three nodes in $WORK/cluster on free ports;
# sets CLUSTER_BOOTSTRAP and CLUSTER_CONTROLLERS, or CLUSTER_PROBLEM saying why not.
start_cluster() {
	SAMSA_BIN=$WORK/samsa
	if [[ ! -x $SAMSA_BIN ]] && ! (cd "$ROOT" && go build -o "$SAMSA_BIN" ./cmd/samsa) > "$WORK/build.log" 2>&1; then
		CLUSTER_PROBLEM="go build ./cmd/samsa failed: $(tail -n 1 "$WORK/build.log")"
		return 1
	fi
	local ports=() p
	while ((${#ports[@]} < 6)); do
		p=$(free_port)
		[[ " ${ports[*]} " == *" $p "* ]] || ports+=("$p")
	done
	CLUSTER_DIR=$WORK/cluster
	if ! "$SAMSA_BIN" cluster start --dir "$CLUSTER_DIR" --ports "$(IFS=,; echo "${ports[*]}")" --timeout 60s \
		> "$WORK/cluster-start.log" 2>&1; then
		CLUSTER_PROBLEM="samsa cluster start failed: $(grep -v '^[[:space:]]*$' "$WORK/cluster-start.log" | tail -n 3 | tr '\n' ' ' | cut -c1-400)"
		return 1
	fi
	CLUSTER_BOOTSTRAP=$(sed -n 's/^bootstrap servers: //p' "$WORK/cluster-start.log")
	CLUSTER_CONTROLLERS=$(sed -n 's/^controllers: //p' "$WORK/cluster-start.log")
	export SAMSA_BIN CLUSTER_DIR CLUSTER_BOOTSTRAP CLUSTER_CONTROLLERS
}

# stop_cluster: `samsa cluster stop`; SIGKILL to a node it could not stop (by the pid
# in its pid file, if that process still runs with this cluster's settings).
stop_cluster() {
	[[ -n $CLUSTER_DIR && -d $CLUSTER_DIR ]] || return 0
	"$SAMSA_BIN" cluster stop --dir "$CLUSTER_DIR" --timeout 30s > "$WORK/cluster-stop.log" 2>&1 && return 0
	local f pid
	for f in "$CLUSTER_DIR"/node*/server.pid; do
		[[ -f $f ]] || continue
		pid=$(< "$f")
		grep -qF "$CLUSTER_DIR" "/proc/$pid/cmdline" 2> /dev/null && kill -KILL "$pid"
	done
	CLUSTER_DIR=
}

# ---- client checks ---------------------------------------------------------
# Each check runs in its own directory ($WORK/<client>) under a timeout. It
# returns 0 on success; on failure it writes the reason to ./reason. A line
# written to ./note is printed under the PASS/FAIL line.

reason() { echo "$*" > reason; }

need() {
	case $1 in
	curl) command -v curl > /dev/null || { reason "curl is not installed"; return 1; } ;;
	kcat) command -v kcat > /dev/null || { reason "kcat is not installed"; return 1; } ;;
	python) [[ -x $PY ]] || { reason "python venv $SAMSA_CACHE/venv is not installed"; return 1; } ;;
	node) [[ -f $COMPAT/js/node_modules/kafkajs/package.json ]] ||
		{ reason "kafkajs is not installed in compat/js/node_modules"; return 1; } ;;
	java) compgen -G "$JARS/kafka-tools-*.jar" > /dev/null ||
		{ reason "Kafka CLI jars are not installed in $JARS"; return 1; } ;;
	esac
}

# records.tsv: the keyed records in production order, "KEY<TAB>VALUE".
write_records() {
	local seq k
	for ((seq = 0; seq < PER_KEY; seq++)); do
		for ((k = 0; k < KEYS; k++)); do
			printf 'key-%d\tkey-%d:%d\n' "$k" "$k" "$seq"
		done
	done
}

verify() {
	local problem
	if ! problem=$(python3 "$COMPAT/python/verify.py" --keys "$KEYS" --per-key "$PER_KEY" < "$1"); then
		reason "$problem${2:+ ($2)}"
		return 1
	fi
}

kafka_tool() { java "${JAVA_OPTS[@]}" -cp "$JARS/*" "$@"; }

# topics_create TOPIC [PARTITIONS]: kafka-topics --create.
topics_create() {
	if ! kafka_tool org.apache.kafka.tools.TopicCommand --bootstrap-server "$BOOTSTRAP" \
		--create --topic "$1" --partitions "${2:-$PARTITIONS}" --replication-factor 1 \
		> create.out 2> create.err || ! grep -q "Created topic $1" create.out; then
		reason "kafka-topics --create (CreateTopics): $(last_error create.err)"
		return 1
	fi
}

check_kcat() {
	need kcat && need python || return 1
	local topic=compat-kcat-$RUN_ID
	"$PY" "$COMPAT/python/create_topic.py" "$BOOTSTRAP" "$topic" "$PARTITIONS" 2> create.err ||
		{ reason "$(last_error create.err)"; return 1; }
	write_records > records.tsv
	kcat -P -b "$BOOTSTRAP" -t "$topic" -K $'\t' -X acks=all < records.tsv 2> produce.err ||
		{ reason "kcat -P (Produce): $(last_error produce.err)"; return 1; }
	grep -qE '^% (ERROR|Failed)' produce.err && { reason "kcat -P (Produce): $(last_error produce.err)"; return 1; }
	# -e: exit at the end of every partition, which librdkafka detects from a Fetch
	# response without records at the high watermark. -d fetch logs fetch problems.
	local rc=0
	timeout 20 kcat -C -b "$BOOTSTRAP" -t "$topic" -o beginning -e -q -d fetch \
		-f '%p\t%k\t%s\n' > consumed.tsv 2> consume.err || rc=$?
	if ((rc == 124)); then
		reason "kcat -C -e (Fetch): read $(wc -l < consumed.tsv) records but never reached the end of the partitions in 20s: $(last_error consume.err)"
		return 1
	elif ((rc != 0)); then
		reason "kcat -C (Fetch): $(last_error consume.err)"
		return 1
	fi
	verify consumed.tsv "$(last_error consume.err)"
}

# librdkafka_hint FILE: " (librdkafka: <last error log line>)" when FILE has one.
librdkafka_hint() {
	local line
	line=$(grep -E '^%[0-3]\|' "$1" 2> /dev/null | tail -n 1)
	[[ -z $line ]] || echo " (librdkafka: ${line:0:300})"
}

# python_client SCRIPT CHECK [ARG...]: runs one of the Python client programs on
# the topic compat-CHECK-RUN_ID; its "note: " stderr lines become the check's note.
python_client() {
	need python || return 1
	local rc=0
	"$PY" "$COMPAT/python/$1" --bootstrap "$BOOTSTRAP" --topic "compat-$2-$RUN_ID" \
		--partitions "$PARTITIONS" --keys "$KEYS" --per-key "$PER_KEY" --timeout 20 "${@:3}" \
		> consumed.tsv 2> client.err || rc=$?
	sed -n 's/^note: //p' client.err > note
	((rc == 0)) || { reason "$(last_error client.err)$(librdkafka_hint client.err)"; return 1; }
	verify consumed.tsv "$(last_error client.err)"
}
check_kafka-python() { python_client kafka_python_client.py kafka-python; }
check_confluent-kafka() { python_client confluent_client.py confluent-kafka; }

# The group checks: read as members of a consumer group, commit, and a member
# started afterwards must read nothing (see the --group docs of the scripts).
check_kafka-python-group() {
	python_client kafka_python_client.py kafka-python-group --group "compat-kafka-python-$RUN_ID"
}
check_confluent-kafka-group() {
	python_client confluent_client.py confluent-kafka-group --group "compat-confluent-$RUN_ID"
}
# Two members share the 3 partitions: each reads some, together all once.
check_confluent-kafka-group-pair() {
	python_client confluent_client.py confluent-kafka-group-pair --group "compat-confluent-pair-$RUN_ID" \
		--members 2
}
# The same with librdkafka's KIP-848 consumer (ConsumerGroupHeartbeat).
check_confluent-kafka-group-kip848() {
	python_client confluent_client.py confluent-kafka-group-kip848 --group "compat-confluent-kip848-$RUN_ID" \
		--members 2 --group-protocol consumer
}
# A mixed group: a KIP-848 member and a classic member share the partitions; the group
# becomes a classic group when the KIP-848 member leaves first.
check_confluent-kafka-group-mixed() {
	python_client confluent_client.py confluent-kafka-group-mixed --group "compat-confluent-mixed-$RUN_ID" \
		--members 2 --group-protocol consumer,classic
}

# librdkafka's transactional producer: a consume-transform-produce step with the group's
# offsets in the transaction (send_offsets_to_transaction), then an aborted transaction; a
# read_committed reader sees exactly the committed copies and the group's offsets are the
# input's ends (see compat/python/confluent_txn.py).
check_confluent-kafka-transactions() {
	need python || return 1
	local rc=0
	"$PY" "$COMPAT/python/confluent_txn.py" --bootstrap "$BOOTSTRAP" --topic "compat-confluent-txn-$RUN_ID" \
		--partitions "$PARTITIONS" --group "compat-confluent-txn-$RUN_ID" --txn-id "compat-confluent-txn-$RUN_ID" \
		--records 100 --timeout 20 > /dev/null 2> client.err || rc=$?
	sed -n 's/^note: //p' client.err > note
	((rc == 0)) || { reason "$(last_error client.err)$(librdkafka_hint client.err)"; return 1; }
}

check_kafkajs() {
	need node || return 1
	node "$COMPAT/js/kafkajs_client.js" --bootstrap "$BOOTSTRAP" --topic "compat-kafkajs-$RUN_ID" \
		--partitions "$PARTITIONS" --keys "$KEYS" --per-key "$PER_KEY" --timeout 20 > consumed.tsv 2> client.err ||
		{ reason "$(last_error client.err)"; return 1; }
	verify consumed.tsv "$(last_error client.err)"
}

check_kafka-topics() {
	need java || return 1
	local topic=compat-topics-$RUN_ID
	topics_create "$topic" || return 1
	kafka_tool org.apache.kafka.tools.TopicCommand --bootstrap-server "$BOOTSTRAP" --list \
		> list.out 2> list.err || { reason "kafka-topics --list: $(last_error list.err)"; return 1; }
	grep -qx "$topic" list.out || { reason "kafka-topics --list (Metadata) does not show $topic"; return 1; }
	kafka_tool org.apache.kafka.tools.TopicCommand --bootstrap-server "$BOOTSTRAP" --describe --topic "$topic" \
		> describe.out 2> describe.err || { reason "kafka-topics --describe: $(last_error describe.err)"; return 1; }
	grep -q "PartitionCount: $PARTITIONS" describe.out ||
		{ reason "kafka-topics --describe: no 'PartitionCount: $PARTITIONS' in: $(head -n 1 describe.out)"; return 1; }
	local n
	n=$(grep -cE "Partition: [0-9]+[[:space:]]+Leader: [0-9]+" describe.out)
	((n == PARTITIONS)) || { reason "kafka-topics --describe: $n partitions with a leader, want $PARTITIONS"; return 1; }
}

# Controller mutation quotas (KIP-599): kafka-configs gives a client id
# controller_mutation_rate=2 (a burst of 22 partitions with Kafka's default
# controller.quota.window.num=11); kafka-topics --create by that client id of a topic of 40
# partitions succeeds (the bucket was full; it is left 18 below zero, 9 s to refill), and of a
# second topic fails with ThrottlingQuotaExceededException (kafka-topics asks its admin client
# not to retry quota violations); compat/java/MutationQuota.java, as that client id, is refused
# that topic without retries, then creates it with the admin client's default options, which
# retry THROTTLING_QUOTA_EXCEEDED after the throttle.
# kcat-metrics: kcat produces the keyed records, then curl scrapes the broker's Prometheus
# endpoint (samsa.metrics.address): the topic's samsa_topic_messages_in_total is the number of
# records, Produce requests were counted, and the help text names Kafka's MBean.
check_kcat-metrics() {
	need kcat && need python && need curl || return 1
	[[ -n ${METRICS:-} ]] || { reason "no metrics endpoint: set SAMSA_COMPAT_METRICS with SAMSA_COMPAT_BOOTSTRAP"; return 1; }
	local topic=compat-metrics-$RUN_ID want=$((KEYS * PER_KEY)) got
	"$PY" "$COMPAT/python/create_topic.py" "$BOOTSTRAP" "$topic" "$PARTITIONS" 2> create.err ||
		{ reason "$(last_error create.err)"; return 1; }
	write_records > records.tsv
	kcat -P -b "$BOOTSTRAP" -t "$topic" -K $'\t' -X acks=all -X enable.idempotence=true < records.tsv 2> produce.err ||
		{ reason "kcat -P (Produce): $(last_error produce.err)"; return 1; }
	curl -sSf "http://$METRICS/metrics" > metrics.txt 2> curl.err ||
		{ reason "curl http://$METRICS/metrics: $(last_error curl.err)"; return 1; }
	got=$(awk -v m="samsa_topic_messages_in_total{topic=\"$topic\"}" '$1 == m { print $2 }' metrics.txt)
	[[ $got == "$want" ]] ||
		{ reason "samsa_topic_messages_in_total of $topic: '$got', want $want"; return 1; }
	awk '$1 == "samsa_requests_total{request=\"Produce\"}" && $2 > 0 { ok = 1 } END { exit !ok }' metrics.txt ||
		{ reason "no Produce request counted in samsa_requests_total"; return 1; }
	grep -q '^# HELP samsa_topic_bytes_in_total .*kafka.server:type=BrokerTopicMetrics,name=BytesInPerSec' metrics.txt ||
		{ reason "samsa_topic_bytes_in_total's help does not name BytesInPerSec"; return 1; }
}

check_kafka-topics-mutation-quota() {
	need java || return 1
	local client=compat-mutator-$RUN_ID big=compat-mutation-big-$RUN_ID second=compat-mutation-second-$RUN_ID
	kafka_tool kafka.admin.ConfigCommand --bootstrap-server "$BOOTSTRAP" --alter --entity-type clients \
		--entity-name "$client" --add-config controller_mutation_rate=2 > quota.out 2> quota.err ||
		{ reason "kafka-configs --alter controller_mutation_rate: $(last_error quota.err)"; return 1; }
	echo "client.id=$client" > client.properties
	topics() { kafka_tool org.apache.kafka.tools.TopicCommand --bootstrap-server "$BOOTSTRAP" --command-config client.properties "$@"; }
	topics --create --topic "$big" --partitions 40 --replication-factor 1 > big.out 2> big.err &&
		grep -q "Created topic $big" big.out ||
		{ reason "kafka-topics --create of 40 partitions: $(last_error big.err)"; return 1; }
	if topics --create --topic "$second" --partitions 1 --replication-factor 1 > second.out 2> second.err; then
		reason "kafka-topics --create after 40 partitions was not refused: $(head -n 1 second.out)"
		return 1
	fi
	grep -q 'ThrottlingQuotaExceededException: The throttling quota has been exceeded.' second.err ||
		{ reason "kafka-topics --create after 40 partitions: $(last_error second.err)"; return 1; }
	java "${JAVA_OPTS[@]}" -cp "$JARS/*" "$COMPAT/java/MutationQuota.java" "$BOOTSTRAP" "$client" "$second" \
		> retried.out 2> retried.err
	grep -q '^OK ' retried.out || { reason "$(grep -m1 '^FAIL: ' retried.out || last_error retried.err)"; return 1; }
	{ echo -n "kafka-topics refused after 40 partitions; the admin client "; sed -n 's/^OK //p' retried.out; } > note
}

# check_kafka-features: kafka-features describe shows the features ApiVersions reports, as
# "Feature: NAME<TAB>SupportedMinVersion: ..<TAB>SupportedMaxVersion: ..<TAB>FinalizedVersionLevel: ..".
check_kafka-features() {
	need java || return 1
	kafka_tool org.apache.kafka.tools.FeatureCommand --bootstrap-server "$BOOTSTRAP" describe \
		> describe.out 2> describe.err || { reason "kafka-features describe: $(last_error describe.err)"; return 1; }
	local want
	for want in "metadata.version SupportedMinVersion: 3.3-IV3 SupportedMaxVersion: 3.8-IV0 FinalizedVersionLevel: 3.8-IV0" \
		"group.version SupportedMinVersion: 0 SupportedMaxVersion: 1 FinalizedVersionLevel: 1" \
		"transaction.version SupportedMinVersion: 0 SupportedMaxVersion: 2 FinalizedVersionLevel: 2"; do
		tr '\t' ' ' < describe.out | grep -q "^Feature: $want Epoch: [0-9]" ||
			{ reason "kafka-features describe: no line 'Feature: $want' in: $(grep '^Feature' describe.out | tr '\t\n' ' |')"; return 1; }
	done
}

# console_produce TOPIC FILE: kafka-console-producer of the keyed records in FILE.
console_produce() {
	local err=produce.${2%.tsv}.err
	kafka_tool org.apache.kafka.tools.ConsoleProducer --bootstrap-server "$BOOTSTRAP" --topic "$1" \
		--property parse.key=true --property key.separator=$'\t' < "$2" 2> "$err" ||
		{ reason "kafka-console-producer (Produce): $(last_error "$err")"; return 1; }
	! grep -q ERROR "$err" || { reason "kafka-console-producer (Produce): $(last_error "$err")"; return 1; }
}

check_kafka-console() {
	need java || return 1
	local topic=compat-console-$RUN_ID p
	topics_create "$topic" || return 1
	write_records > records.tsv
	console_produce "$topic" records.tsv || return 1
	# One consumer per assigned partition, no consumer group; each stops after 4s without records.
	for ((p = 0; p < PARTITIONS; p++)); do
		kafka_tool org.apache.kafka.tools.consumer.ConsoleConsumer --bootstrap-server "$BOOTSTRAP" \
			--topic "$topic" --partition "$p" --offset earliest --timeout-ms 4000 \
			--property print.key=true --property print.partition=true > "consumed.$p.tsv" 2> "consume.$p.err" &
	done
	wait
	cat consumed.*.tsv > consumed.tsv
	verify consumed.tsv "$(cat consume.*.err | last_error /dev/stdin)"
}

# ---- consumer groups with the Kafka tools ----

GROUP_COMMAND=org.apache.kafka.tools.consumer.group.ConsumerGroupCommand

# console_group_consume TOPIC GROUP [OPTION...]: kafka-console-consumer --group reads
# every record of TOPIC as a member of GROUP into consumed.tsv and commits on exit
# (enable.auto.commit), then checks them; it gives up after 15s without a record.
console_group_consume() {
	local rc=0
	kafka_tool org.apache.kafka.tools.consumer.ConsoleConsumer --bootstrap-server "$BOOTSTRAP" \
		--topic "$1" --group "$2" --from-beginning --max-messages $((KEYS * PER_KEY)) --timeout-ms 15000 \
		--property print.key=true --property print.partition=true "${@:3}" > consumed.tsv 2> consume.err ||
		rc=$?
	if ((rc != 0)) || grep -q 'ERROR' consume.err; then
		reason "kafka-console-consumer --group $2 (FindCoordinator/group membership/Fetch): read" \
			"$(wc -l < consumed.tsv) records, exit status $rc: $(last_error consume.err)"
		return 1
	fi
	verify consumed.tsv "$(last_error consume.err)"
}

# consumed_offsets: the offset a group member commits after reading consumed.tsv,
# per partition: its record count there ("90 90 120", in partition order).
consumed_offsets() {
	awk -F'\t' -v parts="$PARTITIONS" '{ sub(/^Partition:/, "", $1); n[$1]++ }
		END { for (p = 0; p < parts; p++) printf "%s%d", (p ? " " : ""), n[p] }' consumed.tsv
}

# group_offsets STEP GROUP TOPIC: kafka-consumer-groups --describe --group GROUP into
# describe.STEP.out, and its rows for TOPIC as "PARTITION CURRENT-OFFSET LOG-END-OFFSET
# LAG" lines, sorted by partition, into offsets.STEP.
group_offsets() {
	kafka_tool "$GROUP_COMMAND" --bootstrap-server "$BOOTSTRAP" --describe --group "$2" \
		> "describe.$1.out" 2> "describe.$1.err" ||
		{ reason "kafka-consumer-groups --describe $1: $(last_error "describe.$1.err")"; return 1; }
	awk -v t="$3" '$1 == "GROUP" && $2 == "TOPIC" { for (i = 1; i <= NF; i++) col[$i] = i; next }
		col["TOPIC"] && $col["TOPIC"] == t {
			print $col["PARTITION"], $col["CURRENT-OFFSET"], $col["LOG-END-OFFSET"], $col["LAG"]
		}' "describe.$1.out" | sort -n > "offsets.$1"
}

# expect_offsets STEP CURRENT LAG [HINT]: the describe table of STEP (group_offsets) must
# list every partition once with the committed offsets CURRENT ("90 90 120", in partition
# order), on each the lag LOG-END-OFFSET - CURRENT-OFFSET, and the lags adding up to LAG.
# HINT is added to the failure reason.
expect_offsets() {
	local got table
	got=$(awk '{ cur = cur (NR > 1 ? " " : "") $2; lag += $4; if ($1 != NR - 1 || $4 != $3 - $2) bad = 1 }
		END { print (bad ? "inconsistent" : cur " lag " lag + 0) }' "offsets.$1")
	[[ $got == "$2 lag $3" ]] && return 0
	table=$(awk '{ printf "%sp%s current %s end %s lag %s", (NR > 1 ? ", " : ""), $1, $2, $3, $4 }' "offsets.$1")
	if [[ -z $table ]]; then
		table="no rows for the topic: $(last_error "describe.$1.err")"
		[[ -s describe.$1.err ]] || table="no rows for the topic: $(grep -v '^[[:space:]]*$' "describe.$1.out" | tail -n 1)"
	fi
	reason "kafka-consumer-groups --describe $1 (OffsetFetch/ListOffsets): want committed offsets" \
		"$2 and a total lag of $3, got ${table:0:300}${4:+ ($4)}"
	return 1
}

# samsa_same_lag GROUP TOPIC STEP: `samsa group describe` must show the same committed
# offset, log end offset and lag per partition as kafka-consumer-groups did at STEP.
samsa_same_lag() {
	# A check runs in its own directory under the run's work directory, where the broker's
	# build left the binary; with an external broker (SAMSA_COMPAT_BOOTSTRAP) build one here.
	local bin=$PWD/../samsa
	[[ -x $bin ]] || bin=$PWD/samsa
	if [[ ! -x $bin ]] && ! (cd "$ROOT" && go build -o "$bin" ./cmd/samsa) > samsa-build.log 2>&1; then
		reason "go build ./cmd/samsa failed: $(tail -n 1 samsa-build.log)"
		return 1
	fi
	"$bin" group describe "$1" --brokers "$BOOTSTRAP" > samsa-describe.out 2> samsa-describe.err ||
		{ reason "samsa group describe: $(tail -n 1 samsa-describe.err)"; return 1; }
	awk -v t="$2" '$1 == t { print $2, $3, $4, $5 }' samsa-describe.out | sort -n > samsa-offsets
	cmp -s samsa-offsets "offsets.$3" && return 0
	reason "samsa group describe disagrees with kafka-consumer-groups --describe:" \
		"samsa [$(tr '\n' ';' < samsa-offsets)] kafka [$(tr '\n' ';' < "offsets.$3")]"
	return 1
}

# Classic group (kafka-console-consumer's default protocol): consume and commit,
# then kafka-consumer-groups --describe (lag 0), produce one more round and describe
# (lag = the new records), --list, --reset-offsets --to-earliest and describe (lag =
# every record).
check_kafka-consumer-groups() {
	need java || return 1
	local topic=compat-groups-$RUN_ID group=compat-groups-$RUN_ID committed more=$KEYS
	topics_create "$topic" || return 1
	write_records > records.tsv
	console_produce "$topic" records.tsv || return 1
	console_group_consume "$topic" "$group" || return 1
	committed=$(consumed_offsets)
	group_offsets consumed "$group" "$topic" && expect_offsets consumed "$committed" 0 || return 1

	# One more round of records (sequence number PER_KEY) after the consumer left.
	local k
	for ((k = 0; k < KEYS; k++)); do printf 'key-%d\tkey-%d:%d\n' "$k" "$k" "$PER_KEY"; done > more.tsv
	console_produce "$topic" more.tsv || return 1
	group_offsets produced "$group" "$topic" && expect_offsets produced "$committed" "$more" || return 1
	samsa_same_lag "$group" "$topic" produced || return 1

	kafka_tool "$GROUP_COMMAND" --bootstrap-server "$BOOTSTRAP" --list > list.out 2> list.err ||
		{ reason "kafka-consumer-groups --list (ListGroups): $(last_error list.err)"; return 1; }
	grep -qx "$group" list.out ||
		{ reason "kafka-consumer-groups --list (ListGroups) does not show $group: $(last_error list.err)"; return 1; }

	kafka_tool "$GROUP_COMMAND" --bootstrap-server "$BOOTSTRAP" --reset-offsets --to-earliest --execute \
		--group "$group" --topic "$topic" > reset.out 2> reset.err ||
		{ reason "kafka-consumer-groups --reset-offsets (OffsetCommit): $(last_error reset.err)"; return 1; }
	local zeros said
	zeros=$(awk -v n="$PARTITIONS" 'BEGIN { for (p = 0; p < n; p++) printf "%s0", (p ? " " : "") }')
	said=$(grep -hiE 'error|exception' reset.out reset.err | tail -n 1 | cut -c1-200)
	group_offsets reset "$group" "$topic" &&
		expect_offsets reset "$zeros" $((KEYS * PER_KEY + more)) "${said:+--reset-offsets: $said}"
}

# KIP-848: kafka-console-consumer with group.protocol=consumer reads everything and
# commits; --describe shows lag 0 and --list --type shows the group as a Consumer group.
check_kafka-console-group-kip848() {
	need java || return 1
	local topic=compat-kip848-$RUN_ID group=compat-kip848-$RUN_ID
	topics_create "$topic" || return 1
	write_records > records.tsv
	console_produce "$topic" records.tsv || return 1
	console_group_consume "$topic" "$group" --consumer-property group.protocol=consumer || return 1
	group_offsets consumed "$group" "$topic" && expect_offsets consumed "$(consumed_offsets)" 0 || return 1
	kafka_tool "$GROUP_COMMAND" --bootstrap-server "$BOOTSTRAP" --list --type > list.out 2> list.err ||
		{ reason "kafka-consumer-groups --list --type (ListGroups): $(last_error list.err)"; return 1; }
	grep -qE "^${group}[[:space:]]+Consumer[[:space:]]*\$" list.out || {
		reason "kafka-consumer-groups --list --type (ListGroups) does not show $group as a Consumer" \
			"group: $(grep -E "^${group}[[:space:]]" list.out || echo "not listed; $(last_error list.err)")"
		return 1
	}
}

check_kafka-producer-perf-test() {
	need java || return 1
	local topic=compat-perf-$RUN_ID records=100000
	topics_create "$topic" || return 1
	kafka_tool org.apache.kafka.tools.ProducerPerformance --topic "$topic" --num-records "$records" \
		--record-size 100 --throughput -1 --producer-props "bootstrap.servers=$BOOTSTRAP" acks=1 \
		> perf.out 2> perf.err || { reason "producer-perf-test: $(last_error perf.err)"; return 1; }
	local summary
	summary=$(grep -E "^$records records sent, " perf.out | tail -n 1)
	[[ -n $summary ]] || { reason "producer-perf-test printed no '$records records sent' line: $(last_error perf.err)"; return 1; }
	echo "$summary" > note
	# All records must be stored: the end offsets add up to the record count.
	kafka_tool org.apache.kafka.tools.GetOffsetShell --bootstrap-server "$BOOTSTRAP" --topic "$topic" \
		--time -1 > offsets.out 2> offsets.err || { reason "get-offsets (ListOffsets): $(last_error offsets.err)"; return 1; }
	local stored
	stored=$(awk -F: '{ n += $NF } END { print n + 0 }' offsets.out)
	((stored == records)) || { reason "end offsets add up to $stored, want $records"; return 1; }
}

# A Java transactional producer (producer-perf-test with --transactional-id: initTransactions,
# then transactions committed every --transaction-duration-ms) succeeds, and a read_committed
# console consumer reads back every record it sent.
check_kafka-transactional-producer() {
	need java || return 1
	local topic=compat-txn-$RUN_ID rc=0 records=1000 got
	kafka_tool org.apache.kafka.tools.ProducerPerformance --topic "$topic" --num-records $records \
		--record-size 10 --throughput -1 --transactional-id "compat-txn-$RUN_ID" --transaction-duration-ms 100 \
		--producer-props "bootstrap.servers=$BOOTSTRAP" max.block.ms=20000 > perf.out 2> perf.err || rc=$?
	((rc == 0)) || { reason "the transactional producer failed (exit $rc): $(last_error perf.err)"; return 1; }
	kafka_tool org.apache.kafka.tools.consumer.ConsoleConsumer --bootstrap-server "$BOOTSTRAP" \
		--topic "$topic" --from-beginning --isolation-level read_committed --max-messages $records \
		--timeout-ms 15000 > txn-consumed.txt 2> txn-consume.err || rc=$?
	got=$(wc -l < txn-consumed.txt)
	((got == records)) || { reason "a read_committed consumer read $got of the $records committed records (exit $rc): $(last_error txn-consume.err)"; return 1; }
	echo "$records records in transactions, all read back with isolation.level=read_committed" > note
}

# The Java client's consume-transform-produce (compat/java/TransactionalCopy.java, run from
# source): a group member reads 100 records; a transactional producer (initTransactions)
# copies half with sendOffsetsToTransaction(offsets, groupMetadata) and aborts, then all of
# them and commits. The group must have no offsets after the abort and the end offsets after
# the commit (kafka-consumer-groups' ListConsumerGroupOffsets with requireStable, and
# consumer.committed), and read_committed must see the 100 committed copies only.
# $1 is the consumer's group.protocol (classic or consumer, KIP-848).
transactional_copy() {
	need java || return 1
	local in=compat-copy-in-$1-$RUN_ID out=compat-copy-out-$1-$RUN_ID
	topics_create "$in" || return 1
	topics_create "$out" || return 1
	java "${JAVA_OPTS[@]}" -cp "$JARS/*" "$COMPAT/java/TransactionalCopy.java" "$BOOTSTRAP" "$in" "$out" \
		"compat-copy-$1-$RUN_ID" "compat-copy-$1-$RUN_ID" "$1" > copy.out 2> copy.err
	if ! grep -q '^OK ' copy.out; then
		reason "$(grep -m1 '^FAIL: ' copy.out || last_error copy.err)"
		return 1
	fi
	sed -n 's/^OK //p' copy.out > note
}
check_kafka-transactional-copy() { transactional_copy classic; }
check_kafka-transactional-copy-kip848() { transactional_copy consumer; }

# Kafka's kafka-transactions.sh (TransactionsCommand) against a transaction that
# python/open_txn.py (confluent-kafka) holds open on partition 0 after writing one record:
# `list` shows the transactional id Ongoing; `describe` shows it with the partition;
# `describe-producers` shows the producer with the transaction's first offset; `find-hanging
# --max-transaction-timeout 0` must not report it (its coordinator has it Ongoing with the
# partition). The open transaction holds the last stable offset, so a read_committed
# console consumer does not see a plain record written after it; `abort --start-offset`
# (WriteTxnMarkers) aborts the transaction on the partition and the consumer then reads it.
check_kafka-transactions() {
	need java && need python || return 1
	local topic=compat-txns-$RUN_ID id=compat-txns-$RUN_ID pid start
	topics_create "$topic" 1 || return 1
	"$PY" "$COMPAT/python/open_txn.py" "$BOOTSTRAP" "$topic" "$id" 60 > open.out 2> open.err &
	pid=$!
	local deadline=$((SECONDS + 30))
	until grep -q '^OPEN ' open.out; do
		if ((SECONDS > deadline)) || ! kill -0 "$pid" 2> /dev/null; then
			kill "$pid" 2> /dev/null
			reason "the confluent-kafka producer did not open a transaction: $(last_error open.err)"
			return 1
		fi
		sleep 0.2
	done
	start=$(sed -n 's/^OPEN //p' open.out)
	txns() { kafka_tool org.apache.kafka.tools.TransactionsCommand --bootstrap-server "$BOOTSTRAP" "$@"; }
	local problem=
	if ! txns list > list.out 2> list.err || ! grep -E "^$id[[:space:]].*Ongoing" list.out > /dev/null; then
		problem="list does not show $id Ongoing: $(tr '\n' ' ' < list.out | cut -c1-300) $(last_error list.err)"
	elif ! txns describe --transactional-id "$id" > describe.out 2> describe.err ||
		! grep -q Ongoing describe.out || ! grep -q "$topic-0" describe.out; then
		problem="describe does not show $id Ongoing with $topic-0: $(tr '\n' ' ' < describe.out | cut -c1-300) $(last_error describe.err)"
	elif ! txns describe-producers --topic "$topic" --partition 0 > producers.out 2> producers.err ||
		! awk -v s="$start" 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == "CurrentTransactionStartOffset") c = i }
			NR > 1 && c && $c == s { found = 1 } END { exit !found }' producers.out; then
		problem="describe-producers does not show a transaction starting at offset $start: $(tr '\n' ' ' < producers.out | cut -c1-300) $(last_error producers.err)"
	elif ! txns find-hanging --broker-id 1 --max-transaction-timeout 0 > hanging.out 2> hanging.err ||
		grep -q "$topic" hanging.out; then
		problem="find-hanging failed or reported the live transaction: $(tr '\n' ' ' < hanging.out | cut -c1-300) $(last_error hanging.err)"
	fi
	if [[ -n $problem ]]; then
		kill "$pid" 2> /dev/null
		reason "kafka-transactions $problem"
		return 1
	fi
	echo after | kafka_tool org.apache.kafka.tools.ConsoleProducer --bootstrap-server "$BOOTSTRAP" --topic "$topic" \
		> after.out 2> after.err || { kill "$pid" 2> /dev/null; reason "console producer: $(last_error after.err)"; return 1; }
	read_committed() {
		kafka_tool org.apache.kafka.tools.consumer.ConsoleConsumer --bootstrap-server "$BOOTSTRAP" --topic "$topic" \
			--from-beginning --isolation-level read_committed --max-messages 1 --timeout-ms "$1" > "$2" 2> "$2.err" || true
	}
	read_committed 3000 before.txt
	if [[ -s before.txt ]]; then
		kill "$pid" 2> /dev/null
		reason "read_committed read $(tr '\n' ' ' < before.txt) past the open transaction"
		return 1
	fi
	txns abort --topic "$topic" --partition 0 --start-offset "$start" > abort.out 2> abort.err
	local rc=$?
	kill "$pid" 2> /dev/null
	((rc == 0)) || { reason "kafka-transactions abort --start-offset $start (exit $rc): $(last_error abort.err)"; return 1; }
	read_committed 15000 released.txt
	[[ $(< released.txt) == after ]] ||
		{ reason "read_committed after the abort read '$(tr '\n' ' ' < released.txt)', want 'after': $(last_error released.txt.err)"; return 1; }
	echo "list, describe, describe-producers (start offset $start), find-hanging (none), abort --start-offset: read_committed then passes the aborted transaction" > note
}

# ---- log compaction ----

# log_dirs_size TOPIC: the topic's size in bytes, summed over its partitions, from
# kafka-log-dirs --describe (DescribeLogDirs); empty on failure.
log_dirs_size() {
	kafka_tool org.apache.kafka.tools.LogDirsCommand --bootstrap-server "$BOOTSTRAP" --describe \
		--topic-list "$1" > logdirs.out 2> logdirs.err || return 1
	python3 -c '
import json, sys
for line in sys.stdin:
    if line.startswith("{"):
        d = json.loads(line)
        print(sum(p["size"] for b in d["brokers"] for ld in b["logDirs"] for p in ld["partitions"]))
' < logdirs.out
}

# kafka-configs sets cleanup.policy=compact on a topic holding 30 updates of each of 10 keys;
# a marker per partition, written after segment.ms, rolls the segment that holds them, and
# the cleaner (log.cleaner.backoff.ms=100 on this broker) must compact them: kcat reading
# from the beginning finds one record per key (waited up to 30 s), kafka-log-dirs shows the
# topic smaller, and kafka-python reads the latest value of every key.
check_kafka-configs-compact() {
	need java && need kcat && need python || return 1
	local topic=compat-compact-$RUN_ID before after p n want
	topics_create "$topic" || return 1
	write_records > records.tsv
	kcat -P -b "$BOOTSTRAP" -t "$topic" -K $'\t' -X acks=all < records.tsv 2> produce.err ||
		{ reason "kcat -P (Produce): $(last_error produce.err)"; return 1; }
	before=$(log_dirs_size "$topic") && [[ -n $before ]] ||
		{ reason "kafka-log-dirs --describe (DescribeLogDirs): $(last_error logdirs.err)"; return 1; }
	kafka_tool kafka.admin.ConfigCommand --bootstrap-server "$BOOTSTRAP" --alter --entity-type topics \
		--entity-name "$topic" --add-config cleanup.policy=compact,min.cleanable.dirty.ratio=0.01,segment.ms=100 \
		> alter.out 2> alter.err || { reason "kafka-configs --alter (IncrementalAlterConfigs): $(last_error alter.err)"; return 1; }
	kafka_tool kafka.admin.ConfigCommand --bootstrap-server "$BOOTSTRAP" --describe --entity-type topics \
		--entity-name "$topic" > describe.out 2> describe.err ||
		{ reason "kafka-configs --describe (DescribeConfigs): $(last_error describe.err)"; return 1; }
	for want in cleanup.policy=compact min.cleanable.dirty.ratio=0.01 segment.ms=100; do
		grep -q "$want sensitive=false" describe.out ||
			{ reason "kafka-configs --describe does not show $want: $(tr '\n' ' ' < describe.out | cut -c1-300)"; return 1; }
	done
	# segment.ms has passed for the segments holding the updates: the next append rolls them.
	sleep 0.3
	for ((p = 0; p < PARTITIONS; p++)); do
		printf 'end-%d\tend\n' "$p" | kcat -P -b "$BOOTSTRAP" -t "$topic" -p "$p" -K $'\t' -X acks=all 2>> produce.err ||
			{ reason "kcat -P -p $p (Produce): $(last_error produce.err)"; return 1; }
	done
	local deadline=$((SECONDS + 30))
	while :; do
		timeout 10 kcat -C -b "$BOOTSTRAP" -t "$topic" -o beginning -e -q -f '%k\n' > keys.out 2> consume.err
		n=$(grep -c '^key-' keys.out)
		# Compacted: one record per key (and the markers).
		((n == KEYS)) && [[ -z $(sort keys.out | uniq -d) ]] && break
		if ((SECONDS >= deadline)); then
			reason "the cleaner did not compact $topic within 30s: kcat reads $n records of keys key-*, want $KEYS (broker log: $(grep -c 'log cleaned' "$WORK/broker.log" 2> /dev/null) 'log cleaned' lines)"
			return 1
		fi
		sleep 0.5
	done
	after=$(log_dirs_size "$topic") && [[ -n $after ]] ||
		{ reason "kafka-log-dirs --describe after cleaning: $(last_error logdirs.err)"; return 1; }
	((after < before)) || { reason "kafka-log-dirs: $topic is $after bytes after cleaning, $before before"; return 1; }
	"$PY" "$COMPAT/python/compacted.py" --bootstrap "$BOOTSTRAP" --topic "$topic" --partitions "$PARTITIONS" \
		--keys "$KEYS" --per-key "$PER_KEY" --timeout 20 > /dev/null 2> client.err ||
		{ reason "$(last_error client.err)"; return 1; }
	{
		echo "kafka-log-dirs: $before bytes before cleaning, $after after; compaction seen $((SECONDS + 30 - deadline)) s after the markers"
		sed -n 's/^note: //p' client.err
	} > note
}

# ---- 3-node checks (Kafka's tools against `samsa cluster start`) ----------

# cluster_topics OUT [ARG...]: kafka-topics against the cluster's brokers into OUT.out/OUT.err.
cluster_topics() {
	kafka_tool org.apache.kafka.tools.TopicCommand --bootstrap-server "$CLUSTER_BOOTSTRAP" "${@:2}" \
		> "$1.out" 2> "$1.err"
}

# rf3_partitions FILE: the partition lines of kafka-topics --describe in FILE as
# "PARTITION LEADER REPLICAS ISR" (comma-separated ids), sorted by partition.
rf3_partitions() {
	awk '{ for (i = 1; i < NF; i++) { if ($i == "Partition:") p = $(i + 1); if ($i == "Leader:") l = $(i + 1)
			if ($i == "Replicas:") r = $(i + 1); if ($i == "Isr:") s = $(i + 1) }
		if (p != "") print p, l, r, s; p = "" }' "$1" | sort -n
}

# create_rf3 TOPIC: kafka-topics --create with 3 partitions of replication factor 3.
create_rf3() {
	cluster_topics create --create --topic "$1" --partitions "$PARTITIONS" --replication-factor 3 &&
		grep -q "Created topic $1" create.out ||
		{ reason "kafka-topics --create --replication-factor 3 (CreateTopics): $(last_error create.err)"; return 1; }
}

# kafka-topics --create --replication-factor 3, then --describe: every partition has 3
# replicas, all in the ISR, and its leader among them; the leaders are spread over the nodes.
check_cluster-kafka-topics() {
	need java || return 1
	local topic=compat-rf3-$RUN_ID
	create_rf3 "$topic" || return 1
	cluster_topics describe --describe --topic "$topic" ||
		{ reason "kafka-topics --describe: $(last_error describe.err)"; return 1; }
	grep -q "ReplicationFactor: 3" describe.out ||
		{ reason "kafka-topics --describe: no 'ReplicationFactor: 3' in: $(head -n 1 describe.out)"; return 1; }
	rf3_partitions describe.out > partitions
	local bad
	bad=$(awk '{ n = split($3, r, ","); m = split($4, s, ","); lead = 0
			for (i = 1; i <= n; i++) if (r[i] == $2) lead = 1
			if (n != 3 || m != 3 || !lead) print "partition " $1 ": leader " $2 " replicas " $3 " isr " $4 }
		END { if (NR != '"$PARTITIONS"') print NR " partitions" }' partitions | head -n 1)
	[[ -z $bad ]] || { reason "kafka-topics --describe: want 3 replicas, all in sync, the leader among them: $bad"; return 1; }
	(($(cut -d' ' -f2 partitions | sort -u | wc -l) == 3)) ||
		{ reason "kafka-topics --describe: the 3 partitions are not led by 3 different nodes: $(tr '\n' ';' < partitions)"; return 1; }
}

# kafka-metadata-quorum --bootstrap-server describe --status and --replication
# (DescribeQuorum, forwarded by a broker to the active controller).
check_cluster-metadata-quorum() {
	need java || return 1
	local id
	id=$(< "$CLUSTER_DIR/cluster.id")
	kafka_tool org.apache.kafka.tools.MetadataQuorumCommand --bootstrap-server "$CLUSTER_BOOTSTRAP" describe --status \
		> status.out 2> status.err || { reason "kafka-metadata-quorum describe --status: $(last_error status.err)"; return 1; }
	grep -qE "^ClusterId: +$id\$" status.out ||
		{ reason "describe --status: no 'ClusterId: $id' in: $(tr '\n' ' ' < status.out | cut -c1-300)"; return 1; }
	grep -qE '^LeaderId: +[123]$' status.out ||
		{ reason "describe --status: no LeaderId among the nodes: $(grep LeaderId status.out)"; return 1; }
	local voters
	voters=$(grep '^CurrentVoters:' status.out | grep -oE '"id": [0-9]+' | tr -dc '0-9\n' | sort -n | tr '\n' ' ')
	[[ $voters == "1 2 3 " ]] || { reason "describe --status: voters [$voters], want 1 2 3: $(grep CurrentVoters status.out)"; return 1; }
	kafka_tool org.apache.kafka.tools.MetadataQuorumCommand --bootstrap-server "$CLUSTER_BOOTSTRAP" describe --replication \
		> replication.out 2> replication.err ||
		{ reason "kafka-metadata-quorum describe --replication: $(last_error replication.err)"; return 1; }
	local rows
	rows=$(awk '$1 ~ /^[0-9]+$/ { print $NF }' replication.out | sort | tr '\n' ' ')
	[[ $rows == "Follower Follower Leader " ]] ||
		{ reason "describe --replication: want one Leader and two Followers, got [$rows]"; return 1; }
}

# kafka-features --bootstrap-controller describe: a controller listener answers as Kafka's.
check_cluster-kafka-features() {
	need java || return 1
	kafka_tool org.apache.kafka.tools.FeatureCommand --bootstrap-controller "${CLUSTER_CONTROLLERS%%,*}" describe \
		> describe.out 2> describe.err ||
		{ reason "kafka-features --bootstrap-controller describe: $(last_error describe.err)"; return 1; }
	tr '\t' ' ' < describe.out | grep -q "^Feature: metadata.version SupportedMinVersion: 3.3-IV3 SupportedMaxVersion: 3.8-IV0 FinalizedVersionLevel: 3.8-IV0 Epoch: [0-9]" ||
		{ reason "kafka-features --bootstrap-controller describe: no metadata.version line in: $(grep '^Feature' describe.out | tr '\t\n' ' |')"; return 1; }
}

# leader_of TOPIC PARTITION: the leader id kafka-topics --describe shows.
leader_of() {
	cluster_topics lead --describe --topic "$1" || return 1
	rf3_partitions lead.out | awk -v p="$2" '$1 == p { print $2 }'
}

# wait_isr TOPIC N: waits (30s) until every partition of TOPIC has N replicas in its ISR.
wait_isr() {
	local i
	for ((i = 0; i < 60; i++)); do
		cluster_topics isr --describe --topic "$1" &&
			[[ -z $(rf3_partitions isr.out | awk -v n="$2" '{ if (split($4, s, ",") != n) print }') ]] && return 0
		sleep 0.5
	done
	return 1
}

# kafka-leader-election --election-type PREFERRED: partition 0's preferred leader (its first
# replica) is stopped and started again (`samsa cluster stop/start --node`); once it is back in
# the ISR, the election makes it the leader again (ElectLeaders forwarded to the active
# controller), and a second election answers that none was needed.
check_cluster-leader-election() {
	need java || return 1
	local topic=compat-elect-$RUN_ID preferred leader
	create_rf3 "$topic" || return 1
	preferred=$(leader_of "$topic" 0)
	[[ -n $preferred ]] || { reason "no leader for $topic-0"; return 1; }
	"$SAMSA_BIN" cluster stop --dir "$CLUSTER_DIR" --node "$preferred" > stop.out 2>&1 ||
		{ reason "samsa cluster stop --node $preferred: $(tail -n 1 stop.out)"; return 1; }
	"$SAMSA_BIN" cluster start --dir "$CLUSTER_DIR" --timeout 60s > start.out 2>&1 ||
		{ reason "samsa cluster start (node $preferred again): $(tail -n 1 start.out)"; return 1; }
	wait_isr "$topic" 3 || { reason "node $preferred did not rejoin the ISR of $topic within 30s: $(rf3_partitions isr.out | tr '\n' ';')"; return 1; }
	leader=$(leader_of "$topic" 0)
	[[ $leader != "$preferred" ]] || { reason "node $preferred leads $topic-0 again before any election"; return 1; }
	kafka_tool org.apache.kafka.tools.LeaderElectionCommand --bootstrap-server "$CLUSTER_BOOTSTRAP" \
		--election-type PREFERRED --topic "$topic" --partition 0 > elect.out 2> elect.err ||
		{ reason "kafka-leader-election --election-type PREFERRED: $(last_error elect.err) $(head -c 300 elect.out)"; return 1; }
	grep -q "Successfully completed leader election (PREFERRED) for partitions $topic-0" elect.out ||
		{ reason "kafka-leader-election: $(tr '\n' ' ' < elect.out | cut -c1-300)"; return 1; }
	leader=$(leader_of "$topic" 0)
	[[ $leader == "$preferred" ]] || { reason "after the election $topic-0 is led by $leader, want $preferred"; return 1; }
	kafka_tool org.apache.kafka.tools.LeaderElectionCommand --bootstrap-server "$CLUSTER_BOOTSTRAP" \
		--election-type PREFERRED --topic "$topic" --partition 0 > again.out 2> again.err || true
	grep -q "Valid replica already elected for partitions" again.out ||
		{ reason "a second preferred election: $(tr '\n' ' ' < again.out | cut -c1-300)"; return 1; }
}

# reassign_tool OUT ARG...: kafka-reassign-partitions against the cluster into OUT.out/OUT.err.
reassign_tool() {
	kafka_tool org.apache.kafka.tools.reassign.ReassignPartitionsCommand --bootstrap-server "$CLUSTER_BOOTSTRAP" "${@:2}" \
		> "$1.out" 2> "$1.err"
}

# kafka-reassign-partitions (KIP-455: AlterPartitionReassignments, ListPartitionReassignments,
# forwarded to the active controller): a 2-partition topic on nodes 1,2 (replica assignment
# 1:2,2:1, node 1 leading partition 0) holds 1,000 records (console producer, acks=all);
# --generate with --broker-list 2,3 proposes a plan off node 1, --execute starts it, --verify
# (polled) reports every partition completed and clears the throttles (before all that, a
# plan growing partition 0 to 3 replicas is refused with --disallow-replication-factor-change,
# KIP-860), kafka-topics
# --describe shows the replicas and leaders on nodes 2 and 3, node 1 has deleted its logs of
# the topic, and the console consumer reads the 1,000 records back.
check_cluster-reassign-partitions() {
	need java || return 1
	local topic=compat-reassign-$RUN_ID i bad
	cluster_topics create --create --topic "$topic" --replica-assignment 1:2,2:1 && grep -q "Created topic $topic" create.out ||
		{ reason "kafka-topics --create --replica-assignment 1:2,2:1: $(last_error create.err)"; return 1; }
	seq 1 1000 > records.txt
	kafka_tool org.apache.kafka.tools.ConsoleProducer --bootstrap-server "$CLUSTER_BOOTSTRAP" --topic "$topic" \
		--producer-property acks=all < records.txt > produce.out 2> produce.err ||
		{ reason "console producer: $(last_error produce.err)"; return 1; }
	# KIP-860: a plan changing the replication factor, refused with --disallow-replication-factor-change.
	echo '{"version":1,"partitions":[{"topic":"'"$topic"'","partition":0,"replicas":[1,2,3]}]}' > rf.json
	reassign_tool rf --reassignment-json-file rf.json --execute --disallow-replication-factor-change
	grep -q "$topic-0: The replication factor is changed from 2 to 3" rf.out rf.err ||
		{ reason "kafka-reassign-partitions --disallow-replication-factor-change: $(cat rf.out rf.err | tr '\n' ' ' | cut -c1-300)"; return 1; }
	echo '{"version":1,"topics":[{"topic":"'"$topic"'"}]}' > move.json
	reassign_tool generate --topics-to-move-json-file move.json --broker-list 2,3 --generate ||
		{ reason "kafka-reassign-partitions --generate: $(last_error generate.err)"; return 1; }
	sed -n '/^Proposed partition reassignment configuration/{n;p}' generate.out > plan.json
	grep -q '"replicas"' plan.json || { reason "kafka-reassign-partitions --generate proposed no plan: $(tr '\n' ' ' < generate.out | cut -c1-300)"; return 1; }
	reassign_tool execute --reassignment-json-file plan.json --execute &&
		grep -q "Successfully started partition reassignment" execute.out ||
		{ reason "kafka-reassign-partitions --execute: $(last_error execute.err) $(tail -n 1 execute.out)"; return 1; }
	for ((i = 0; i < 30; i++)); do
		reassign_tool verify --reassignment-json-file plan.json --verify ||
			{ reason "kafka-reassign-partitions --verify: $(last_error verify.err)"; return 1; }
		(($(grep -c "^Reassignment of partition $topic-[01] is completed" verify.out) == 2)) && break
		sleep 0.5
	done
	(($(grep -c "^Reassignment of partition $topic-[01] is completed" verify.out) == 2)) ||
		{ reason "kafka-reassign-partitions --verify never reported both partitions completed: $(tr '\n' ' ' < verify.out | cut -c1-300)"; return 1; }
	grep -q "Clearing topic-level throttles on topic $topic" verify.out ||
		{ reason "kafka-reassign-partitions --verify did not clear the throttles: $(tr '\n' ' ' < verify.out | cut -c1-300)"; return 1; }
	cluster_topics describe --describe --topic "$topic" || { reason "kafka-topics --describe: $(last_error describe.err)"; return 1; }
	bad=$(rf3_partitions describe.out | awk '{ if (($3 != "2,3" && $3 != "3,2") || ($2 != 2 && $2 != 3)) print "partition " $1 ": leader " $2 " replicas " $3 }
		END { if (NR != 2) print NR " partitions" }' | head -n 1)
	[[ -z $bad ]] || { reason "kafka-topics --describe after the reassignment: want replicas 2,3 and a leader among them: $bad"; return 1; }
	for ((i = 0; i < 20; i++)); do
		compgen -G "$CLUSTER_DIR/node1/data/$topic-*" > /dev/null || break
		sleep 0.5
	done
	! compgen -G "$CLUSTER_DIR/node1/data/$topic-*" > /dev/null ||
		{ reason "node 1 still has $(cd "$CLUSTER_DIR/node1/data" && echo "$topic"-*) after the reassignment"; return 1; }
	kafka_tool org.apache.kafka.tools.consumer.ConsoleConsumer --bootstrap-server "$CLUSTER_BOOTSTRAP" \
		--topic "$topic" --from-beginning --max-messages 1000 --timeout-ms 20000 > consumed.txt 2> consume.err || true
	cmp -s <(sort -n consumed.txt) records.txt ||
		{ reason "console consumer read $(wc -l < consumed.txt) records, want 1..1000 once each: $(last_error consume.err)"; return 1; }
}

# kafka-reassign-partitions --throttle (KIP-73): a topic on node 1 holds 3 MB (producer perf
# test, 300 records of 10,000 bytes, acks=1: the cluster has min.insync.replicas=2);
# --execute --throttle 150000 (and --replica-alter-log-dirs-throttle, accepted: no log
# directory moves) moves it to node 2 and reports the limit set; kafka-configs
# --describe shows the rate on broker 1 and the throttled replicas on the topic while it moves;
# after those (several seconds of JVM starts) --verify still reports it in progress, and the
# move takes at least 5 s (what is left after the first burst of 10 windows × 150 kB/s takes
# 10 s at that rate; unthrottled it takes well under a second); then --verify reports it
# completed and clears the throttles, which kafka-configs no longer shows.
check_cluster-reassign-throttle() {
	need java || return 1
	local topic=compat-reassign-throttle-$RUN_ID i start took done= moving=
	cluster_topics create --create --topic "$topic" --replica-assignment 1 && grep -q "Created topic $topic" create.out ||
		{ reason "kafka-topics --create --replica-assignment 1: $(last_error create.err)"; return 1; }
	kafka_tool org.apache.kafka.tools.ProducerPerformance --topic "$topic" --num-records 300 \
		--record-size 10000 --throughput -1 --producer-props "bootstrap.servers=$CLUSTER_BOOTSTRAP" acks=1 \
		> perf.out 2> perf.err || { reason "producer-perf-test: $(last_error perf.err)"; return 1; }
	grep -q "^300 records sent" perf.out || { reason "producer-perf-test: $(last_error perf.err)"; return 1; }
	echo '{"version":1,"partitions":[{"topic":"'"$topic"'","partition":0,"replicas":[2]}]}' > plan.json
	start=$(date +%s.%N)
	reassign_tool execute --reassignment-json-file plan.json --execute --throttle 150000 --replica-alter-log-dirs-throttle 1000000 &&
		grep -q "Successfully started partition reassignment" execute.out ||
		{ reason "kafka-reassign-partitions --execute --throttle: $(last_error execute.err) $(tail -n 1 execute.out)"; return 1; }
	grep -q "The inter-broker throttle limit was set to 150000 B/s" execute.out ||
		{ reason "kafka-reassign-partitions --execute --throttle did not set the limit: $(tr '\n' ' ' < execute.out | cut -c1-300)"; return 1; }
	kafka_tool kafka.admin.ConfigCommand --bootstrap-server "$CLUSTER_BOOTSTRAP" --describe --entity-type brokers \
		--entity-name 1 > broker.out 2> broker.err
	grep -q "leader.replication.throttled.rate=150000" broker.out ||
		{ reason "kafka-configs --describe broker 1 during the move: $(tr '\n' ' ' < broker.out | cut -c1-300) $(last_error broker.err)"; return 1; }
	kafka_tool kafka.admin.ConfigCommand --bootstrap-server "$CLUSTER_BOOTSTRAP" --describe --entity-type topics \
		--entity-name "$topic" > topic.out 2> topic.err
	grep -q "follower.replication.throttled.replicas=0:2" topic.out && grep -q "leader.replication.throttled.replicas=0:1" topic.out ||
		{ reason "kafka-configs --describe the topic during the move: $(tr '\n' ' ' < topic.out | cut -c1-300) $(last_error topic.err)"; return 1; }
	for ((i = 0; i < 120; i++)); do
		reassign_tool verify --reassignment-json-file plan.json --verify ||
			{ reason "kafka-reassign-partitions --verify: $(last_error verify.err)"; return 1; }
		if grep -q "^Reassignment of partition $topic-0 is completed" verify.out; then
			done=1
			break
		fi
		grep -q "^Reassignment of partition $topic-0 is still in progress" verify.out && moving=1
		sleep 0.5
	done
	took=$(echo "$(date +%s.%N) - $start" | bc)
	[[ -n $done ]] || { reason "kafka-reassign-partitions --verify never reported the move completed: $(tr '\n' ' ' < verify.out | cut -c1-300)"; return 1; }
	echo "moved 3 MB at 150000 B/s in ${took}s" > note
	[[ -n $moving ]] && (($(echo "$took >= 5" | bc) == 1)) ||
		{ reason "the throttled move of 3 MB at 150000 B/s took ${took}s, want at least 5s, with --verify reporting it in progress after the kafka-configs calls (seen: ${moving:-no})"; return 1; }
	grep -q "Clearing broker-level throttles" verify.out && grep -q "Clearing topic-level throttles on topic $topic" verify.out ||
		{ reason "kafka-reassign-partitions --verify did not clear the throttles: $(tr '\n' ' ' < verify.out | cut -c1-300)"; return 1; }
	kafka_tool kafka.admin.ConfigCommand --bootstrap-server "$CLUSTER_BOOTSTRAP" --describe --entity-type brokers \
		--entity-name 1 > cleared.out 2> cleared.err
	! grep -q "replication.throttled.rate" cleared.out ||
		{ reason "kafka-configs --describe broker 1 after --verify: $(tr '\n' ' ' < cleared.out | cut -c1-300)"; return 1; }
}

# kafka-reassign-partitions --cancel: node 3 is stopped; the Java admin client moves
# partition 0 of a topic on nodes 1,2 to 1,3 (compat/java/Reassign.java: the tool's --execute
# refuses a broker that is not running), which cannot complete; --verify reports it in
# progress (and kafka-topics --describe its adding and removing replicas), --cancel cancels
# it, and kafka-topics --describe shows the replicas 1,2 again.
# Node 3 is started again. (--preserve-throttles: clearing them would ask the stopped node.)
check_cluster-reassign-cancel() {
	need java || return 1
	local topic=compat-reassign-cancel-$RUN_ID two=${CLUSTER_BOOTSTRAP%,*} out
	"$SAMSA_BIN" cluster stop --dir "$CLUSTER_DIR" --node 3 > stop.out 2>&1 ||
		{ reason "samsa cluster stop --node 3: $(tail -n 1 stop.out)"; return 1; }
	restart() {
		"$SAMSA_BIN" cluster start --dir "$CLUSTER_DIR" --timeout 60s > start.out 2>&1 ||
			{ reason "samsa cluster start (node 3 again): $(tail -n 1 start.out)"; return 1; }
	}
	kafka_tool org.apache.kafka.tools.TopicCommand --bootstrap-server "$two" --create --topic "$topic" --replica-assignment 1:2 \
		> create.out 2> create.err && grep -q "Created topic $topic" create.out ||
		{ reason "kafka-topics --create --replica-assignment 1:2: $(last_error create.err)"; restart; return 1; }
	out=$(java "${JAVA_OPTS[@]}" -cp "$JARS/*" "$COMPAT/java/Reassign.java" "$two" "$topic" 0 1,3 2> reassign.err)
	[[ $out == "OK replicas=[1, 3, 2] adding=[3] removing=[2]" ]] ||
		{ reason "Reassign.java (alterPartitionReassignments, listPartitionReassignments): ${out:-$(last_error reassign.err)}"; restart; return 1; }
	echo '{"version":1,"partitions":[{"topic":"'"$topic"'","partition":0,"replicas":[1,3]}]}' > plan.json
	kafka_tool org.apache.kafka.tools.reassign.ReassignPartitionsCommand --bootstrap-server "$two" \
		--reassignment-json-file plan.json --verify --preserve-throttles > verify.out 2> verify.err
	grep -q "^Reassignment of partition $topic-0 is still in progress" verify.out ||
		{ reason "kafka-reassign-partitions --verify: $(tr '\n' ' ' < verify.out | cut -c1-300) $(last_error verify.err)"; restart; return 1; }
	kafka_tool org.apache.kafka.tools.TopicCommand --bootstrap-server "$two" --describe --topic "$topic" > moving.out 2> moving.err
	grep -q "Adding Replicas: 3[[:space:]]*Removing Replicas: 2" moving.out ||
		{ reason "kafka-topics --describe during the reassignment: no 'Adding Replicas: 3 Removing Replicas: 2' in: $(tr '\t\n' '  ' < moving.out | cut -c1-300) $(last_error moving.err)"; restart; return 1; }
	kafka_tool org.apache.kafka.tools.reassign.ReassignPartitionsCommand --bootstrap-server "$two" \
		--reassignment-json-file plan.json --cancel --preserve-throttles > cancel.out 2> cancel.err
	grep -q "Successfully cancelled partition reassignment" cancel.out ||
		{ reason "kafka-reassign-partitions --cancel: $(tr '\n' ' ' < cancel.out | cut -c1-300) $(last_error cancel.err)"; restart; return 1; }
	kafka_tool org.apache.kafka.tools.TopicCommand --bootstrap-server "$two" --describe --topic "$topic" > describe.out 2> describe.err
	[[ $(rf3_partitions describe.out) == "0 1 1,2 1,2" ]] ||
		{ reason "kafka-topics --describe after the cancel: want leader 1, replicas and ISR 1,2: $(rf3_partitions describe.out)"; restart; return 1; }
	restart
}

# The Java producer (acks=all, idempotent) and console consumer across a broker kill: 1,000
# records, then SIGKILL of the node leading partition 0 (by the pid in its pid file), 1,000 more
# with the node dead, the node started again; the console consumer reads all 2,000 exactly
# once. The producer gets a producer's settings for a failover (30 s request timeout, unbounded
# retries within the 60 s delivery timeout): the console producer's own defaults (1.5 s, 3
# retries) give up in about 6 s, shorter than a session timeout (9 s), which a kill whose
# connection close the controller does not notice must wait for (seen once in CI).
check_cluster-java-across-kill() {
	need java || return 1
	local topic=compat-kill-$RUN_ID victim pid
	create_rf3 "$topic" || return 1
	seq 1 1000 > a.txt
	seq 1001 2000 > b.txt
	java_produce() {
		kafka_tool org.apache.kafka.tools.ConsoleProducer --bootstrap-server "$CLUSTER_BOOTSTRAP" --topic "$topic" \
			--producer-property acks=all --producer-property enable.idempotence=true \
			--producer-property delivery.timeout.ms=60000 --producer-property request.timeout.ms=30000 \
			--producer-property retries=2147483647 < "$1" > "$1.out" 2> "$1.err"
	}
	java_produce a.txt || { reason "console producer before the kill: $(last_error a.txt.err)"; return 1; }
	victim=$(leader_of "$topic" 0)
	pid=$(< "$CLUSTER_DIR/node$victim/server.pid")
	kill -KILL "$pid" || { reason "could not SIGKILL node $victim (pid $pid)"; return 1; }
	java_produce b.txt || { reason "console producer with node $victim killed: $(last_error b.txt.err)"; return 1; }
	grep -q "ERROR" b.txt.err && { reason "console producer with node $victim killed logged: $(grep -m1 ERROR b.txt.err | cut -c1-300)"; return 1; }
	"$SAMSA_BIN" cluster start --dir "$CLUSTER_DIR" --timeout 60s > start.out 2>&1 ||
		{ reason "samsa cluster start (node $victim again): $(tail -n 1 start.out)"; return 1; }
	kafka_tool org.apache.kafka.tools.consumer.ConsoleConsumer --bootstrap-server "$CLUSTER_BOOTSTRAP" \
		--topic "$topic" --from-beginning --max-messages 2000 --timeout-ms 20000 > consumed.txt 2> consume.err || true
	local got dup
	got=$(sort -n consumed.txt | uniq | wc -l)
	dup=$(sort -n consumed.txt | uniq -d | wc -l)
	((got == 2000 && dup == 0)) && cmp -s <(sort -n consumed.txt) <(seq 1 2000) ||
		{ reason "console consumer read $(wc -l < consumed.txt) records, $got distinct, $dup duplicated, want 1..2000 once each (node $victim was killed): $(last_error consume.err)"; return 1; }
}

# After `samsa cluster stop --node 3` (a controlled shutdown: the controller moves node 3's
# leaderships and takes it out of every ISR), kafka-topics --describe
# --under-replicated-partitions lists every partition of an RF=3 topic with the ISR of the
# two other nodes and a leader among them, and --unavailable-partitions lists none of them.
check_cluster-under-replicated() {
	need java || return 1
	local topic=compat-urp-$RUN_ID
	create_rf3 "$topic" || return 1
	"$SAMSA_BIN" cluster stop --dir "$CLUSTER_DIR" --node 3 > stop.out 2>&1 ||
		{ reason "samsa cluster stop --node 3: $(tail -n 1 stop.out)"; return 1; }
	local two=${CLUSTER_BOOTSTRAP%,*}
	kafka_tool org.apache.kafka.tools.TopicCommand --bootstrap-server "$two" --describe --under-replicated-partitions \
		> urp.out 2> urp.err || { reason "kafka-topics --under-replicated-partitions: $(last_error urp.err)"; return 1; }
	grep -E "Topic: $topic[[:space:]]" urp.out > urp.topic
	rf3_partitions urp.topic > partitions
	local bad
	bad=$(awk '{ if ($4 != "1,2" && $4 != "2,1" || ($2 != 1 && $2 != 2)) print "partition " $1 ": leader " $2 " isr " $4 }
		END { if (NR != '"$PARTITIONS"') print NR " under-replicated partitions listed" }' partitions | head -n 1)
	[[ -z $bad ]] || { reason "kafka-topics --under-replicated-partitions after node 3 stopped: want the $PARTITIONS partitions with ISR 1,2 and a leader among them: $bad"; return 1; }
	kafka_tool org.apache.kafka.tools.TopicCommand --bootstrap-server "$two" --describe --unavailable-partitions \
		> unavailable.out 2> unavailable.err ||
		{ reason "kafka-topics --unavailable-partitions: $(last_error unavailable.err)"; return 1; }
	! grep -q "Topic: $topic[[:space:]]" unavailable.out ||
		{ reason "kafka-topics --unavailable-partitions lists partitions of $topic: $(grep "Topic: $topic" unavailable.out | head -n 1)"; return 1; }
}

# ---- dynamic quorum (KIP-853) ------------------------------------------------

# dyn_start N: starts `samsa server` of node N (config nodeN.properties, log nodeN.log) and
# records its pid in nodeN.pid.
dyn_start() {
	"$SAMSA_BIN" server --config "node$1.properties" > "node$1.log" 2>&1 &
	echo $! > "node$1.pid"
}

# dyn_wait_started N: waits (30s) until node N logged that it serves.
dyn_wait_started() {
	local i
	for ((i = 0; i < 150; i++)); do
		grep -q 'msg="samsa started"' "node$1.log" 2> /dev/null && return 0
		kill -0 "$(< "node$1.pid")" 2> /dev/null || break
		sleep 0.2
	done
	reason "node $1 did not start: $(grep -v '^[[:space:]]*$' "node$1.log" | tail -n 1 | cut -c1-300)"
	return 1
}

# dyn_stop: SIGTERM to the nodes this check started, SIGKILL after 30s.
dyn_stop() {
	local f pid i
	for f in node*.pid; do
		[[ -f $f ]] && kill -TERM "$(< "$f")" 2> /dev/null
	done
	for f in node*.pid; do
		[[ -f $f ]] || continue
		pid=$(< "$f")
		for ((i = 0; i < 300; i++)); do kill -0 "$pid" 2> /dev/null || break; sleep 0.1; done
		kill -KILL "$pid" 2> /dev/null
		rm -f "$f"
	done
}

# quorum_ids FILE KEY: the node ids describe --status lists in its KEY line (CurrentVoters,
# CurrentObservers), sorted, space-separated.
quorum_ids() { grep "^$2:" "$1" | grep -oE '"id": [0-9]+' | tr -dc '0-9\n' | sort -n | tr '\n' ' '; }

# A dynamic quorum grown and shrunk with Kafka 4.1's kafka-metadata-quorum: node 1
# (broker and controller) formatted --standalone; nodes 2 and 3, controller-only, formatted
# --no-initial-controllers, start as observers. add-controller --command-config nodeN.properties
# (which reads node.id, the controller listener and the directory id from meta.properties)
# makes each a voter; describe --status shows three voters with their directory ids;
# remove-controller --controller-id 3 --controller-directory-id takes node 3 out, which stays
# an observer; kafka-features shows kraft.version 1; a topic is still created.
check_dynamic-quorum-add-remove-controller() {
	need java || return 1
	trap dyn_stop EXIT
	local ports=() p i id
	while ((${#ports[@]} < 4)); do
		p=$(free_port)
		[[ " ${ports[*]} " == *" $p "* ]] || ports+=("$p")
	done
	local boot=127.0.0.1:${ports[1]} client=127.0.0.1:${ports[0]}
	printf '%s\n' node.id=1 process.roles=broker,controller \
		"listeners=PLAINTEXT://$client,CONTROLLER://$boot" controller.listener.names=CONTROLLER \
		"controller.quorum.bootstrap.servers=$boot" "log.dirs=$PWD/data1" > node1.properties
	for i in 2 3; do
		printf '%s\n' "node.id=$i" process.roles=controller "listeners=CONTROLLER://127.0.0.1:${ports[i]}" \
			controller.listener.names=CONTROLLER "controller.quorum.bootstrap.servers=$boot" \
			"log.dirs=$PWD/data$i" > "node$i.properties"
	done
	id=$("$SAMSA_BIN" storage random-uuid)
	"$SAMSA_BIN" storage format --cluster-id "$id" --config node1.properties --standalone > format1.out 2>&1 ||
		{ reason "samsa storage format --standalone: $(tail -n 1 format1.out)"; return 1; }
	for i in 2 3; do
		"$SAMSA_BIN" storage format --cluster-id "$id" --config "node$i.properties" --no-initial-controllers > "format$i.out" 2>&1 ||
			{ reason "samsa storage format --no-initial-controllers: $(tail -n 1 "format$i.out")"; return 1; }
	done
	for i in 1 2 3; do dyn_start "$i" && dyn_wait_started "$i" || return 1; done

	local dir
	for i in 2 3; do
		dir=$(sed -n 's/^directory.id=//p' "data$i/meta.properties")
		kafka_tool org.apache.kafka.tools.MetadataQuorumCommand --bootstrap-controller "$boot" \
			--command-config "node$i.properties" add-controller > "add$i.out" 2> "add$i.err" ||
			{ reason "kafka-metadata-quorum add-controller (node $i): $(last_error "add$i.err")"; return 1; }
		grep -q "^Added controller $i with directory id $dir and endpoints: CONTROLLER://127.0.0.1:${ports[i]}\$" "add$i.out" ||
			{ reason "add-controller (node $i) printed: $(tr '\n' ' ' < "add$i.out" | cut -c1-300)"; return 1; }
	done
	kafka_tool org.apache.kafka.tools.MetadataQuorumCommand --bootstrap-controller "$boot" describe --status \
		> status3.out 2> status3.err || { reason "describe --status: $(last_error status3.err)"; return 1; }
	[[ $(quorum_ids status3.out CurrentVoters) == "1 2 3 " ]] ||
		{ reason "describe --status after add-controller: $(grep CurrentVoters status3.out | cut -c1-300)"; return 1; }
	for i in 1 2 3; do
		dir=$(sed -n 's/^directory.id=//p' "data$i/meta.properties")
		grep -q "\"id\": $i, \"directoryId\": \"$dir\"" status3.out ||
			{ reason "describe --status: voter $i without its directory id $dir: $(grep CurrentVoters status3.out | cut -c1-300)"; return 1; }
	done

	dir=$(sed -n 's/^directory.id=//p' data3/meta.properties)
	kafka_tool org.apache.kafka.tools.MetadataQuorumCommand --bootstrap-controller "$boot" \
		remove-controller --controller-id 3 --controller-directory-id "$dir" > remove.out 2> remove.err ||
		{ reason "kafka-metadata-quorum remove-controller: $(last_error remove.err)"; return 1; }
	grep -qE "^Removed +KRaft controller 3 with directory id $dir\$" remove.out ||
		{ reason "remove-controller printed: $(tr '\n' ' ' < remove.out | cut -c1-300)"; return 1; }
	kafka_tool org.apache.kafka.tools.MetadataQuorumCommand --bootstrap-server "$client" describe --status \
		> status2.out 2> status2.err || { reason "describe --status (--bootstrap-server): $(last_error status2.err)"; return 1; }
	[[ $(quorum_ids status2.out CurrentVoters) == "1 2 " && $(quorum_ids status2.out CurrentObservers) == *"3 "* ]] ||
		{ reason "describe --status after remove-controller: $(grep -E '^Current' status2.out | tr '\n' ' ' | cut -c1-300)"; return 1; }

	kafka_tool org.apache.kafka.tools.FeatureCommand --bootstrap-controller "$boot" describe > features.out 2> features.err ||
		{ reason "kafka-features describe: $(last_error features.err)"; return 1; }
	tr '\t' ' ' < features.out | grep -q "^Feature: kraft.version SupportedMinVersion: 0 SupportedMaxVersion: 1 FinalizedVersionLevel: 1 " ||
		{ reason "kafka-features describe: no finalized kraft.version 1 in: $(grep '^Feature' features.out | tr '\t\n' ' |')"; return 1; }
	kafka_tool org.apache.kafka.tools.TopicCommand --bootstrap-server "$client" --create --topic "dyn-$RUN_ID" \
		--partitions 1 --replication-factor 1 > create.out 2> create.err && grep -q "Created topic" create.out ||
		{ reason "kafka-topics --create after the quorum changes: $(last_error create.err)"; return 1; }
}

# ---- security: PLAIN, SCRAM and mTLS from more clients -----------------------

# The PLAIN users of the secc_* brokers (Kafka's PlainLoginModule JAAS, user_NAME="PASSWORD").
SECC_PLAIN_JAAS='org.apache.kafka.common.security.plain.PlainLoginModule required user_alice="alice-secret";'

# secc_start LISTENER... -- [SETTING...]: certificates (sec_certs), then one samsa node with a
# PLAINTEXT listener for admin calls (SEC_PLAIN) and the named listeners (SASL_PLAINTEXT,
# SASL_SSL, SSL) on free ports, their host:port in SECC_ADDR[NAME]; PLAIN (SECC_PLAIN_JAAS)
# and SCRAM-SHA-256/512 are enabled, the settings after -- are added. Certificates a check
# made before (ca.pem) are kept.
declare -A SECC_ADDR
secc_start() {
	[[ -f ca.pem ]] || sec_certs || return 1
	local names=() settings=() l p ports=()
	while (($# > 0)) && [[ $1 != -- ]]; do names+=("$1"); shift; done
	[[ ${1:-} == -- ]] && shift
	while ((${#ports[@]} < ${#names[@]} + 2)); do
		p=$(free_port)
		[[ " ${ports[*]} " == *" $p "* ]] || ports+=("$p")
	done
	SEC_PLAIN=127.0.0.1:${ports[0]}
	local listeners="PLAINTEXT://$SEC_PLAIN,CONTROLLER://127.0.0.1:${ports[1]}" i=2
	for l in "${names[@]}"; do
		SECC_ADDR[$l]=127.0.0.1:${ports[i]}
		listeners+=",$l://127.0.0.1:${ports[i]}"
		settings+=("listener.name.${l,,}.plain.sasl.jaas.config=$SECC_PLAIN_JAAS")
		i=$((i + 1))
	done
	printf '%s\n' node.id=1 process.roles=broker,controller "listeners=$listeners" \
		controller.listener.names=CONTROLLER inter.broker.listener.name=PLAINTEXT "log.dirs=$PWD/data1" \
		sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512 \
		ssl.keystore.type=PEM "ssl.keystore.location=$PWD/broker.pem" \
		ssl.truststore.type=PEM "ssl.truststore.location=$PWD/ca.pem" "${settings[@]}" "$@" > node1.properties
	trap dyn_stop EXIT
	dyn_start 1 && dyn_wait_started 1
}

# secc_client_cert CN: client.crt and client.key, signed by the check's CA (sec_certs).
secc_client_cert() {
	{
		openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout client.key -out client.csr \
			-subj "/CN=$1" &&
			printf 'extendedKeyUsage=clientAuth\n' > client.ext &&
			openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out client.crt \
				-days 1 -extfile client.ext
	} >> certs.log 2>&1 || { reason "openssl (client certificate): $(tail -n 1 certs.log)"; return 1; }
}

# secc_refused WANT CLIENT ARG...: runs a client program in its --expect-auth-failure mode (into
# refused.out/refused.err); it must fail to log in, WANT among the error names it prints.
secc_refused() {
	local want=$1
	shift
	if ! "$@" --expect-auth-failure > refused.out 2> refused.err; then
		reason "$want expected: $(last_error refused.err)"
		return 1
	fi
	grep -qx "$want" refused.out ||
		{ reason "want $want, the client was refused with $(tr '\n' ' ' < refused.out | cut -c1-200): $(last_error refused.err)"; return 1; }
}

# secc_python LISTENER SETTING...: the kafka-python group check (produce, consume in a group,
# commit) on the listener with the kafka-python settings given (--config NAME=VALUE each).
secc_python() {
	need python || return 1
	local addr=${SECC_ADDR[$1]} cfg=() s
	shift
	for s in "$@"; do cfg+=(--config "$s"); done
	BOOTSTRAP=$addr python_client kafka_python_client.py kafka-python-sec --group "compat-kpy-sec-$RUN_ID" "${cfg[@]}"
}

# kafka-python with SASL PLAIN over SASL_PLAINTEXT and over SASL_SSL; a wrong password is
# refused with kafka-python's SaslAuthenticationFailedError.
secc_python_plain() {
	local l=$1 tls=()
	[[ $l == SASL_SSL ]] && tls=("ssl_cafile=$PWD/ca.pem")
	secc_start "$l" || return 1
	local login=(security_protocol="$l" sasl_mechanism=PLAIN sasl_plain_username=alice "${tls[@]}")
	secc_python "$l" "${login[@]}" sasl_plain_password=alice-secret || return 1
	local cfg=() s
	for s in "${login[@]}" sasl_plain_password=wrong; do cfg+=(--config "$s"); done
	secc_refused SaslAuthenticationFailedError "$PY" "$COMPAT/python/kafka_python_client.py" \
		--bootstrap "${SECC_ADDR[$l]}" --topic unused --timeout 10 "${cfg[@]}"
}
check_kafka-python-sasl-plaintext-plain() { secc_python_plain SASL_PLAINTEXT; }
check_kafka-python-sasl-ssl-plain() { secc_python_plain SASL_SSL; }

# secc_kafkajs LISTENER ARG...: the kafkajs check (produce, consume in a group, commit) on the
# listener with the kafkajs_client.js arguments given.
secc_kafkajs() {
	need node || return 1
	local addr=${SECC_ADDR[$1]}
	shift
	node "$COMPAT/js/kafkajs_client.js" --bootstrap "$addr" --topic "compat-kafkajs-sec-$RUN_ID" \
		--partitions "$PARTITIONS" --keys "$KEYS" --per-key "$PER_KEY" --timeout 20 "$@" > consumed.tsv 2> client.err ||
		{ reason "$(last_error client.err)"; return 1; }
	verify consumed.tsv "$(last_error client.err)"
}

# kafkajs over SASL_SSL with SCRAM-SHA-256 or -512 (a user made by samsa user create); a wrong
# password is refused with KafkaJSSASLAuthenticationError.
secc_kafkajs_scram() {
	local mech=$1
	secc_start SASL_SSL && sec_user js-user js-secret "$mech" || return 1
	local login=(--ca "$PWD/ca.pem" --sasl "${mech,,}" --username js-user)
	secc_kafkajs SASL_SSL "${login[@]}" --password js-secret || return 1
	secc_refused KafkaJSSASLAuthenticationError node "$COMPAT/js/kafkajs_client.js" \
		--bootstrap "${SECC_ADDR[SASL_SSL]}" --topic unused "${login[@]}" --password wrong
}
check_kafkajs-sasl-ssl-scram256() { secc_kafkajs_scram SCRAM-SHA-256; }
check_kafkajs-sasl-ssl-scram512() { secc_kafkajs_scram SCRAM-SHA-512; }

# secc_cert_required: the refusal (refused.err) was the broker's TLS alert "certificate required".
secc_cert_required() {
	grep -qi 'certificate required' refused.err ||
		{ reason "a client without a certificate was refused, but not with the TLS alert 'certificate required': $(last_error refused.err)"; return 1; }
}

# mTLS: an SSL listener with ssl.client.auth=required; the client logs in with a certificate
# signed by the CA, and a client without one is refused.
check_kafka-python-mtls() {
	need python || return 1
	secc_start SSL -- listener.name.ssl.ssl.client.auth=required && secc_client_cert py-client || return 1
	local tls=(security_protocol=SSL "ssl_cafile=$PWD/ca.pem")
	# TLS 1.2: under TLS 1.3 the broker's session ticket arrives after the handshake when the
	# client sends a certificate, and kafka-python (2.3) sometimes reads it before its first
	# request and closes the connection ("Socket EVENT_READ without in-flight-requests",
	# dpkp/kafka-python#2369, seen against Kafka too). The refusal below stays on TLS 1.3.
	secc_python SSL "${tls[@]}" "ssl_certfile=$PWD/client.crt" "ssl_keyfile=$PWD/client.key" \
		ssl_maximum_version=TLSv1_2 || return 1
	secc_refused SSLError "$PY" "$COMPAT/python/kafka_python_client.py" \
		--bootstrap "${SECC_ADDR[SSL]}" --topic unused --timeout 10 --config "${tls[0]}" --config "${tls[1]}" &&
		secc_cert_required
}
check_kafkajs-mtls() {
	need node || return 1
	secc_start SSL -- listener.name.ssl.ssl.client.auth=required && secc_client_cert js-client || return 1
	secc_kafkajs SSL --ca "$PWD/ca.pem" --cert "$PWD/client.crt" --key "$PWD/client.key" || return 1
	secc_refused KafkaJSConnectionError node "$COMPAT/js/kafkajs_client.js" \
		--bootstrap "${SECC_ADDR[SSL]}" --topic unused --ca "$PWD/ca.pem" && secc_cert_required
}

# secc_jks NAME CERT KEY: NAME.keystore.jks as Kafka's docs make stores: openssl pkcs12
# -export of the certificate (with the CA) and key, keytool -importkeystore to JKS (store
# password store-secret), and keytool -keypasswd giving the key its own password, key-secret.
secc_jks() {
	{
		openssl pkcs12 -export -in "$2" -inkey "$3" -certfile ca.pem -name "$1" -out "$1.p12" -passout pass:store-secret &&
			keytool -importkeystore -noprompt -srckeystore "$1.p12" -srcstoretype PKCS12 -srcstorepass store-secret \
				-destkeystore "$1.keystore.jks" -deststoretype JKS -deststorepass store-secret -destkeypass store-secret &&
			keytool -keypasswd -alias "$1" -keypass store-secret -new key-secret -keystore "$1.keystore.jks" -storepass store-secret
	} >> certs.log 2>&1 || { reason "openssl/keytool ($1.keystore.jks): $(tail -n 1 certs.log)"; return 1; }
}

# A Kafka-style server.properties whose keys have passwords of their own (ssl.key.password):
# the SSL listener (mutual TLS) takes JKS key and trust stores made with keytool, the key
# re-protected by keytool -keypasswd; a second SSL listener, PEMSSL, takes a PEM key encrypted
# by openssl pkcs8 -topk8. Kafka's console producer and consumer (JKS stores, their own key
# with ssl.key.password too) round-trip records on the first, kcat on the second.
check_kafka-console-ssl-key-password() {
	need java && need kcat || return 1
	sec_certs && secc_client_cert java-client || return 1
	secc_jks broker broker.crt broker.key && secc_jks client client.crt client.key || return 1
	{
		keytool -importcert -noprompt -alias ca -file ca.pem -keystore truststore.jks -storetype JKS -storepass trust-secret &&
			openssl pkcs8 -topk8 -in broker.key -out broker-enc.key -passout pass:pem-secret
	} >> certs.log 2>&1 || { reason "keytool/openssl: $(tail -n 1 certs.log)"; return 1; }
	grep -q 'BEGIN ENCRYPTED PRIVATE KEY' broker-enc.key || { reason "openssl pkcs8 -topk8 wrote no encrypted key"; return 1; }
	cat broker.crt broker-enc.key > broker-enc.pem
	secc_start SSL PEMSSL -- listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,SSL:SSL,PEMSSL:SSL \
		listener.name.ssl.ssl.keystore.type=JKS "listener.name.ssl.ssl.keystore.location=$PWD/broker.keystore.jks" \
		listener.name.ssl.ssl.keystore.password=store-secret listener.name.ssl.ssl.key.password=key-secret \
		listener.name.ssl.ssl.truststore.type=JKS "listener.name.ssl.ssl.truststore.location=$PWD/truststore.jks" \
		listener.name.ssl.ssl.truststore.password=trust-secret listener.name.ssl.ssl.client.auth=required \
		"listener.name.pemssl.ssl.keystore.location=$PWD/broker-enc.pem" listener.name.pemssl.ssl.key.password=pem-secret || return 1
	printf '%s\n' security.protocol=SSL ssl.truststore.type=JKS "ssl.truststore.location=$PWD/truststore.jks" \
		ssl.truststore.password=trust-secret ssl.keystore.type=JKS "ssl.keystore.location=$PWD/client.keystore.jks" \
		ssl.keystore.password=store-secret ssl.key.password=key-secret > client.properties
	SEC_SASL=${SECC_ADDR[SSL]} java_console_roundtrip "compat-jks-$RUN_ID" client.properties "over SSL with JKS stores" || return 1
	local topic=compat-pemkey-$RUN_ID sec=(-X security.protocol=SSL -X "ssl.ca.location=$PWD/ca.pem")
	BOOTSTRAP=$SEC_PLAIN topics_create "$topic" || return 1
	kcat -P -b "${SECC_ADDR[PEMSSL]}" "${sec[@]}" -t "$topic" -K $'\t' -X acks=all < records.tsv 2> produce.err ||
		{ reason "kcat -P over PEMSSL: $(last_error produce.err)"; return 1; }
	timeout 20 kcat -C -b "${SECC_ADDR[PEMSSL]}" "${sec[@]}" -t "$topic" -o beginning -e -q -f '%p\t%k\t%s\n' \
		> consumed.tsv 2> consume.err || { reason "kcat -C over PEMSSL: $(last_error consume.err)"; return 1; }
	verify consumed.tsv "$(last_error consume.err)"
}

# ---- security: SASL_SSL with SCRAM ------------------------------------------

# sec_certs: a CA and a broker certificate for 127.0.0.1/localhost, made with openssl in the
# check's directory: ca.pem (the trust store) and broker.pem (certificate and key, as
# ssl.keystore.location takes them).
sec_certs() {
	command -v openssl > /dev/null || { reason "openssl is not installed"; return 1; }
	{
		openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.pem \
			-days 1 -subj "/CN=samsa compat CA" &&
			openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout broker.key -out broker.csr \
				-subj "/CN=broker" &&
			printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' > san.ext &&
			openssl x509 -req -in broker.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out broker.crt \
				-days 1 -extfile san.ext
	} > certs.log 2>&1 || { reason "openssl: $(tail -n 1 certs.log)"; return 1; }
	cat broker.crt broker.key > broker.pem
}

# sec_start [SETTING...]: certificates, then one samsa node (node1.properties, with the settings
# given) with PLAINTEXT (admin) and SASL_SSL (SCRAM-SHA-256/512) listeners; sets SEC_PLAIN and
# SEC_SASL (host:port).
sec_start() {
	sec_certs || return 1
	local ports=() p
	while ((${#ports[@]} < 3)); do
		p=$(free_port)
		[[ " ${ports[*]} " == *" $p "* ]] || ports+=("$p")
	done
	SEC_PLAIN=127.0.0.1:${ports[0]} SEC_SASL=127.0.0.1:${ports[1]}
	printf '%s\n' node.id=1 process.roles=broker,controller \
		"listeners=PLAINTEXT://$SEC_PLAIN,SASL_SSL://$SEC_SASL,CONTROLLER://127.0.0.1:${ports[2]}" \
		controller.listener.names=CONTROLLER inter.broker.listener.name=PLAINTEXT "log.dirs=$PWD/data1" \
		sasl.enabled.mechanisms=SCRAM-SHA-256,SCRAM-SHA-512 \
		ssl.keystore.type=PEM "ssl.keystore.location=$PWD/broker.pem" \
		ssl.truststore.type=PEM "ssl.truststore.location=$PWD/ca.pem" "$@" > node1.properties
	if [[ -n ${SEC_FORMAT+x} ]]; then
		# samsa storage format with the options in SEC_FORMAT (e.g. --add-scram) before the first start.
		"$SAMSA_BIN" storage format --cluster-id "$("$SAMSA_BIN" storage random-uuid)" --config node1.properties \
			"${SEC_FORMAT[@]}" > format.out 2>&1 || { reason "samsa storage format: $(tail -n 1 format.out)"; return 1; }
	fi
	trap dyn_stop EXIT
	dyn_start 1 && dyn_wait_started 1
}

# sec_user USER PASSWORD MECHANISM: samsa user create on the PLAINTEXT listener.
sec_user() {
	"$SAMSA_BIN" user create "$1" --password-stdin --mechanism "$3" --brokers "$SEC_PLAIN" <<< "$2" \
		> user.out 2>&1 || { reason "samsa user create: $(tail -n 1 user.out)"; return 1; }
}

# kcat (librdkafka) over SASL_SSL with SCRAM-SHA-512: a user made by samsa user create, the
# broker's certificate checked against the CA; a wrong password is refused.
check_kcat-sasl-ssl-scram512() {
	need kcat && need python || return 1
	sec_start && sec_user kcat-user kcat-secret SCRAM-SHA-512 || return 1
	local topic=compat-kcat-sasl-$RUN_ID
	"$PY" "$COMPAT/python/create_topic.py" "$SEC_PLAIN" "$topic" "$PARTITIONS" 2> create.err ||
		{ reason "$(last_error create.err)"; return 1; }
	local sec=(-X security.protocol=SASL_SSL -X sasl.mechanisms=SCRAM-SHA-512 -X sasl.username=kcat-user
		-X "ssl.ca.location=$PWD/ca.pem")
	write_records > records.tsv
	kcat -P -b "$SEC_SASL" "${sec[@]}" -X sasl.password=kcat-secret -t "$topic" -K $'\t' -X acks=all \
		< records.tsv 2> produce.err || { reason "kcat -P over SASL_SSL: $(last_error produce.err)"; return 1; }
	grep -qE '^% (ERROR|Failed)' produce.err && { reason "kcat -P over SASL_SSL: $(last_error produce.err)"; return 1; }
	timeout 20 kcat -C -b "$SEC_SASL" "${sec[@]}" -X sasl.password=kcat-secret -t "$topic" -o beginning -e -q \
		-f '%p\t%k\t%s\n' > consumed.tsv 2> consume.err ||
		{ reason "kcat -C over SASL_SSL: $(last_error consume.err)"; return 1; }
	verify consumed.tsv "$(last_error consume.err)" || return 1
	if timeout 10 kcat -L -b "$SEC_SASL" "${sec[@]}" -X sasl.password=wrong > wrong.out 2> wrong.err; then
		reason "kcat -L with a wrong password succeeded"
		return 1
	fi
	grep -q 'SASL authentication error' wrong.err ||
		{ reason "kcat -L with a wrong password: no SASL authentication error: $(last_error wrong.err)"; return 1; }
}

# kafka-storage format --add-scram's equivalent: a node formatted with samsa storage format
# --add-scram (admin SCRAM-SHA-512, alice SCRAM-SHA-256 with 8192 iterations) has those users
# from its first start, with no user made through any listener; the standard authorizer with
# admin its only super user, so the PLAINTEXT listener's User:ANONYMOUS can do nothing. admin
# creates a topic with samsa topic create over SASL_SSL, kcat (librdkafka) writes and reads it
# as admin, lists metadata as alice; a wrong password is refused.
check_kcat-add-scram-bootstrap() {
	need kcat && need python || return 1
	local SEC_FORMAT=(--add-scram 'SCRAM-SHA-512=[name=admin,password=admin-secret]'
		--add-scram 'SCRAM-SHA-256=[name=alice,iterations=8192,password=alice-secret]')
	sec_start authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer super.users=User:admin || return 1
	local topic=compat-add-scram-$RUN_ID
	if "$SAMSA_BIN" topic create "$topic" --partitions "$PARTITIONS" --brokers "$SEC_PLAIN" > anon.out 2>&1; then
		reason "User:ANONYMOUS created a topic on the PLAINTEXT listener"
		return 1
	fi
	printf '%s\n' security.protocol=SASL_SSL sasl.mechanism=SCRAM-SHA-512 "ssl.truststore.location=$PWD/ca.pem" \
		'sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="admin-secret";' \
		> admin.properties
	"$SAMSA_BIN" topic create "$topic" --partitions "$PARTITIONS" --brokers "$SEC_SASL" --command-config admin.properties \
		> create.out 2>&1 || { reason "samsa topic create as admin: $(tail -n 1 create.out)"; return 1; }
	local sec=(-X security.protocol=SASL_SSL -X "ssl.ca.location=$PWD/ca.pem")
	local admin=("${sec[@]}" -X sasl.mechanisms=SCRAM-SHA-512 -X sasl.username=admin -X sasl.password=admin-secret)
	write_records > records.tsv
	kcat -P -b "$SEC_SASL" "${admin[@]}" -t "$topic" -K $'\t' -X acks=all < records.tsv 2> produce.err ||
		{ reason "kcat -P as admin: $(last_error produce.err)"; return 1; }
	grep -qE '^% (ERROR|Failed)' produce.err && { reason "kcat -P as admin: $(last_error produce.err)"; return 1; }
	timeout 20 kcat -C -b "$SEC_SASL" "${admin[@]}" -t "$topic" -o beginning -e -q -f '%p\t%k\t%s\n' \
		> consumed.tsv 2> consume.err || { reason "kcat -C as admin: $(last_error consume.err)"; return 1; }
	verify consumed.tsv "$(last_error consume.err)" || return 1
	timeout 10 kcat -L -b "$SEC_SASL" "${sec[@]}" -X sasl.mechanisms=SCRAM-SHA-256 -X sasl.username=alice \
		-X sasl.password=alice-secret > alice.out 2> alice.err ||
		{ reason "kcat -L as alice (SCRAM-SHA-256): $(last_error alice.err)"; return 1; }
	if timeout 10 kcat -L -b "$SEC_SASL" "${sec[@]}" -X sasl.mechanisms=SCRAM-SHA-256 -X sasl.username=alice \
		-X sasl.password=wrong > wrong.out 2> wrong.err; then
		reason "kcat -L with a wrong password succeeded"
		return 1
	fi
}

# confluent-kafka (librdkafka from Python) over SASL_SSL with SCRAM-SHA-512.
check_confluent-kafka-sasl-ssl-scram512() {
	need python || return 1
	sec_start && sec_user py-user py-secret SCRAM-SHA-512 || return 1
	local rc=0
	"$PY" "$COMPAT/python/confluent_client.py" --bootstrap "$SEC_SASL" --topic "compat-confluent-sasl-$RUN_ID" \
		--partitions "$PARTITIONS" --keys "$KEYS" --per-key "$PER_KEY" --timeout 20 \
		--config security.protocol=SASL_SSL --config sasl.mechanisms=SCRAM-SHA-512 \
		--config sasl.username=py-user --config sasl.password=py-secret --config "ssl.ca.location=$PWD/ca.pem" \
		> consumed.tsv 2> client.err || rc=$?
	((rc == 0)) || { reason "$(last_error client.err)$(librdkafka_hint client.err)"; return 1; }
	verify consumed.tsv "$(last_error client.err)"
}

# confluent-kafka (librdkafka from Python) over SASL_SSL with OAUTHBEARER and librdkafka's
# unsecured tokens (sasl.oauthbearer.config=principal=alice), which the broker's default
# validator (Kafka's unsecured one) accepts; sessions of 1.5 s (connections.max.reauth.ms; a
# client re-authenticates at about 90% of that, and Kafka refuses a re-authentication less than
# 1 s after the previous one began), so librdkafka re-authenticates (KIP-368) while it produces
# and consumes in a group (the group's join waits 3 s): a refused
# re-authentication shows in librdkafka's log, a request on an expired session as "SASL session
# expired" in the broker's, and there must be neither. A token whose scope lacks the listener's required scope is refused.
check_confluent-kafka-oauthbearer-unsecured() {
	need python || return 1
	sec_start sasl.enabled.mechanisms=OAUTHBEARER connections.max.reauth.ms=1500 \
		'listener.name.sasl_ssl.oauthbearer.sasl.jaas.config=org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required unsecuredValidatorRequiredScope="kafka";' ||
		return 1
	local rc=0 oauth=(--config security.protocol=SASL_SSL --config sasl.mechanisms=OAUTHBEARER
		--config enable.sasl.oauthbearer.unsecure.jwt=true --config "ssl.ca.location=$PWD/ca.pem")
	"$PY" "$COMPAT/python/confluent_client.py" --bootstrap "$SEC_SASL" --topic "compat-confluent-oauth-$RUN_ID" \
		--partitions "$PARTITIONS" --keys "$KEYS" --per-key "$PER_KEY" --timeout 20 "${oauth[@]}" \
		--group "compat-confluent-oauth-$RUN_ID" \
		--config 'sasl.oauthbearer.config=principal=alice scope=kafka' > consumed.tsv 2> client.err || rc=$?
	((rc == 0)) || { reason "$(last_error client.err)$(librdkafka_hint client.err)"; return 1; }
	verify consumed.tsv "$(last_error client.err)" || return 1
	! grep -q 'SASL session expired' node1.log ||
		{ reason "librdkafka let a session expire: $(grep -m 1 'SASL session expired' node1.log | cut -c1-300)"; return 1; }
	# A refused re-authentication does not fail the client (it connects again) but logs.
	! grep -qE '^%[0-3]\|' client.err || { reason "librdkafka logged an error$(librdkafka_hint client.err)"; return 1; }
	rc=0
	"$PY" "$COMPAT/python/confluent_client.py" --bootstrap "$SEC_SASL" --topic "compat-confluent-oauth-refused-$RUN_ID" \
		--partitions 1 --keys 1 --per-key 1 --timeout 10 "${oauth[@]}" \
		--config 'sasl.oauthbearer.config=principal=mallory scope=other' > refused.tsv 2> refused.err || rc=$?
	((rc != 0)) || { reason "a token without the required scope was accepted"; return 1; }
	grep -qi 'insufficient_scope\|authentication' refused.err ||
		{ reason "the token without the required scope: no authentication error: $(last_error refused.err)"; return 1; }
}

# java_console_roundtrip TOPIC PROPERTIES WHAT: creates TOPIC through the PLAINTEXT listener,
# produces the check's records to it with Kafka's console producer over SEC_SASL with the client
# PROPERTIES, reads them back with the console consumer and verifies them; WHAT says how the
# clients connect, in the reasons.
java_console_roundtrip() {
	local topic=$1 props=$2 what=$3
	BOOTSTRAP=$SEC_PLAIN topics_create "$topic" || return 1
	write_records > records.tsv
	kafka_tool org.apache.kafka.tools.ConsoleProducer --bootstrap-server "$SEC_SASL" --topic "$topic" \
		--producer.config "$props" --property parse.key=true --property key.separator=$'\t' \
		< records.tsv > produce.out 2> produce.err || { reason "kafka-console-producer $what: $(last_error produce.err)"; return 1; }
	kafka_tool org.apache.kafka.tools.consumer.ConsoleConsumer --bootstrap-server "$SEC_SASL" --topic "$topic" \
		--consumer.config "$props" --from-beginning --max-messages $((KEYS * PER_KEY)) --timeout-ms 15000 \
		--property print.key=true --property print.partition=true > consumed.tsv 2> consume.err ||
		{ reason "kafka-console-consumer $what: $(last_error consume.err)"; return 1; }
	verify consumed.tsv "$(last_error consume.err)"
}

# Kafka's kafka-configs --alter --add-config 'SCRAM-SHA-256=[...]' --entity-type users makes the
# user (AlterUserScramCredentials), samsa user list shows it (DescribeUserScramCredentials), and the
# Java console producer and consumer log in with it over SASL_SSL (PEM trust store).
check_kafka-configs-scram-java() {
	need java || return 1
	sec_start || return 1
	kafka_tool kafka.admin.ConfigCommand --bootstrap-server "$SEC_PLAIN" --alter \
		--add-config 'SCRAM-SHA-256=[iterations=8192,password=alice-secret]' --entity-type users --entity-name alice \
		> configs.out 2> configs.err || { reason "kafka-configs --alter --add-config SCRAM-SHA-256: $(last_error configs.err)"; return 1; }
	# kafka-configs --describe --entity-type users lists quotas (DescribeClientQuotas) and
	# credentials (DescribeUserScramCredentials).
	kafka_tool kafka.admin.ConfigCommand --bootstrap-server "$SEC_PLAIN" --describe --entity-type users \
		> users.out 2> users.err || { reason "kafka-configs --describe --entity-type users: $(last_error users.err)"; return 1; }
	grep -qF "SCRAM credential configs for user-principal 'alice' are SCRAM-SHA-256=iterations=8192" users.out ||
		{ reason "kafka-configs --describe --entity-type users does not show alice's credential: $(tr '\n' ' ' < users.out | cut -c1-300)"; return 1; }
	"$SAMSA_BIN" user list alice --brokers "$SEC_PLAIN" > describe.out 2>&1 ||
		{ reason "samsa user list alice: $(tail -n 1 describe.out)"; return 1; }
	grep -qE 'alice +SCRAM-SHA-256 +8192' describe.out ||
		{ reason "samsa user list does not show alice SCRAM-SHA-256 8192: $(tr '\n' ' ' < describe.out)"; return 1; }
	printf '%s\n' security.protocol=SASL_SSL sasl.mechanism=SCRAM-SHA-256 \
		'sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="alice" password="alice-secret";' \
		ssl.truststore.type=PEM "ssl.truststore.location=$PWD/ca.pem" > client.properties
	java_console_roundtrip "compat-java-sasl-$RUN_ID" client.properties "over SASL_SSL" || return 1
	# A wrong password is refused with Kafka's error.
	sed 's/password="alice-secret"/password="wrong"/' client.properties > wrong.properties
	kafka_tool org.apache.kafka.tools.TopicCommand --bootstrap-server "$SEC_SASL" --command-config wrong.properties \
		--list > wrong.out 2> wrong.err
	grep -q 'SaslAuthenticationException' wrong.err ||
		{ reason "kafka-topics with a wrong password: no SaslAuthenticationException: $(last_error wrong.err)"; return 1; }
}

# Kafka's kafka-delegation-tokens (DelegationTokenCommand, KIP-48): alice, a SCRAM user over
# SASL_SSL, creates a token with bob as its renewer (--create), describes it (--describe) and
# renews it (--renew);
# Kafka's console producer and consumer log in with the token (ScramLoginModule's username the
# token id, password the HMAC, tokenauth="true") and round-trip the records; the token may not
# ask for tokens itself; --expire with a negative period expires it, and a login with it fails.
check_kafka-delegation-tokens() {
	need java || return 1
	sec_start delegation.token.secret.key=compat-token-secret && sec_user alice alice-secret SCRAM-SHA-256 || return 1
	local tool=org.apache.kafka.tools.DelegationTokenCommand id hmac
	printf '%s\n' security.protocol=SASL_SSL sasl.mechanism=SCRAM-SHA-256 \
		'sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="alice" password="alice-secret";' \
		ssl.truststore.type=PEM "ssl.truststore.location=$PWD/ca.pem" > alice.properties
	kafka_tool $tool --bootstrap-server "$SEC_SASL" --command-config alice.properties --create \
		--max-life-time-period -1 --renewer-principal User:bob > token-create.out 2> token-create.err ||
		{ reason "kafka-delegation-tokens --create: $(last_error token-create.err)"; return 1; }
	id=$(sed -n 's/.*Created delegation token with tokenId : *//p' token-create.out | tr -d '[:space:]')
	hmac=$(awk -v id="$id" '$1 == id { print $2 }' token-create.out)
	[[ -n $id && -n $hmac ]] ||
		{ reason "kafka-delegation-tokens --create: no token id and HMAC in: $(tr '\n' ' ' < token-create.out | cut -c1-300)"; return 1; }
	# Without --owner-principal the tool sends an empty owner list, which Kafka answers with no
	# tokens; alice names herself.
	kafka_tool $tool --bootstrap-server "$SEC_SASL" --command-config alice.properties --describe --owner-principal User:alice \
		> token-describe.out 2> token-describe.err || { reason "kafka-delegation-tokens --describe: $(last_error token-describe.err)"; return 1; }
	awk -v id="$id" -v hmac="$hmac" '$1 == id && $2 == hmac && $3 == "User:alice" && $4 == "User:alice" && /User:bob/ { found = 1 } END { exit !found }' \
		token-describe.out || { reason "kafka-delegation-tokens --describe does not show alice's token with renewer bob: $(tr '\n' ' ' < token-describe.out | cut -c1-300)"; return 1; }
	kafka_tool $tool --bootstrap-server "$SEC_SASL" --command-config alice.properties --renew --hmac "$hmac" \
		--renew-time-period 3600000 > token-renew.out 2> token-renew.err || { reason "kafka-delegation-tokens --renew: $(last_error token-renew.err)"; return 1; }
	grep -q 'Completed renew operation' token-renew.out ||
		{ reason "kafka-delegation-tokens --renew: $(tr '\n' ' ' < token-renew.out | cut -c1-300)"; return 1; }
	printf '%s\n' security.protocol=SASL_SSL sasl.mechanism=SCRAM-SHA-256 \
		"sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username=\"$id\" password=\"$hmac\" tokenauth=\"true\";" \
		ssl.truststore.type=PEM "ssl.truststore.location=$PWD/ca.pem" > token.properties
	java_console_roundtrip "compat-dtoken-$RUN_ID" token.properties "with a delegation token" || return 1
	# A token-authenticated client may not ask for tokens (DELEGATION_TOKEN_REQUEST_NOT_ALLOWED).
	kafka_tool $tool --bootstrap-server "$SEC_SASL" --command-config token.properties --describe --owner-principal User:alice \
		> token-by-token.out 2> token-by-token.err && { reason "kafka-delegation-tokens --describe with a token was not refused"; return 1; }
	grep -q 'UnsupportedByAuthenticationException' token-by-token.err token-by-token.out ||
		{ reason "kafka-delegation-tokens --describe with a token: not refused as Kafka does: $(last_error token-by-token.err)"; return 1; }
	kafka_tool $tool --bootstrap-server "$SEC_SASL" --command-config alice.properties --expire --hmac "$hmac" \
		--expiry-time-period -1 > token-expire.out 2> token-expire.err || { reason "kafka-delegation-tokens --expire: $(last_error token-expire.err)"; return 1; }
	kafka_tool org.apache.kafka.tools.TopicCommand --bootstrap-server "$SEC_SASL" --command-config token.properties \
		--list > expired.out 2> expired.err
	grep -q 'SaslAuthenticationException' expired.err ||
		{ reason "kafka-topics with the expired token: no SaslAuthenticationException: $(last_error expired.err)"; return 1; }
}

# Kafka's kafka-metadata-quorum --bootstrap-controller against a SASL_SSL controller listener
# (PLAIN, sasl.mechanism.controller.protocol, the node's JAAS login, the standard authorizer):
# the node's own user is served describe --status (the node registered itself over SASL); a
# user without CLUSTER_ACTION gets ClusterAuthorizationException, a wrong password
# SaslAuthenticationException.
check_kafka-metadata-quorum-sasl-controller() {
	need java || return 1
	sec_start 'listener.security.protocol.map=PLAINTEXT:PLAINTEXT,SASL_SSL:SASL_SSL,CONTROLLER:SASL_SSL' \
		listener.name.controller.sasl.enabled.mechanisms=PLAIN sasl.mechanism.controller.protocol=PLAIN \
		'listener.name.controller.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username="controller" password="controller-secret" user_controller="controller-secret" user_mallory="mallory-secret";' \
		authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer 'super.users=User:controller;User:ANONYMOUS' ||
		return 1
	local ctrl user pass
	ctrl=$(sed -n 's/^listeners=.*CONTROLLER:\/\/\([^,]*\).*/\1/p' node1.properties)
	for user in controller:controller-secret mallory:mallory-secret controller:wrong; do
		pass=${user#*:} user=${user%%:*}
		printf '%s\n' security.protocol=SASL_SSL sasl.mechanism=PLAIN \
			"sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username=\"$user\" password=\"$pass\";" \
			ssl.truststore.type=PEM "ssl.truststore.location=$PWD/ca.pem" > "$user-$pass.properties"
		kafka_tool org.apache.kafka.tools.MetadataQuorumCommand --bootstrap-controller "$ctrl" \
			--command-config "$user-$pass.properties" describe --status > "$user-$pass.out" 2> "$user-$pass.err"
	done
	grep -qE '^LeaderId: +1$' controller-controller-secret.out ||
		{ reason "kafka-metadata-quorum as the nodes' user: $(last_error controller-controller-secret.err)"; return 1; }
	grep -q 'ClusterAuthorizationException' mallory-mallory-secret.err ||
		{ reason "kafka-metadata-quorum as a user without CLUSTER_ACTION: no ClusterAuthorizationException: $(last_error mallory-mallory-secret.err)"; return 1; }
	grep -q 'SaslAuthenticationException' controller-wrong.err ||
		{ reason "kafka-metadata-quorum with a wrong password: no SaslAuthenticationException: $(last_error controller-wrong.err)"; return 1; }
}

# Kafka's Java console producer and consumer over SASL_SSL with OAUTHBEARER as Kafka's
# quickstart configures it (OAuthBearerLoginModule, unsecuredLoginStringClaim_sub, the client's
# unsecured tokens), against the broker's default unsecured validator, with sessions of 1.5 s
# (connections.max.reauth.ms; the console consumer's group join alone waits 3 s): the Java
# clients re-authenticate (KIP-368) with no error, and the broker logs no expired session.
check_kafka-console-oauthbearer() {
	need java || return 1
	sec_start sasl.enabled.mechanisms=OAUTHBEARER connections.max.reauth.ms=1500 || return 1
	printf '%s\n' security.protocol=SASL_SSL sasl.mechanism=OAUTHBEARER \
		'sasl.jaas.config=org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required unsecuredLoginStringClaim_sub="alice";' \
		ssl.truststore.type=PEM "ssl.truststore.location=$PWD/ca.pem" > client.properties
	java_console_roundtrip "compat-java-oauth-$RUN_ID" client.properties "over SASL_SSL OAUTHBEARER" || return 1
	! grep -qE 'ERROR|Exception' produce.err consume.err ||
		{ reason "the Java clients logged an error: $(grep -hE 'ERROR|Exception' produce.err consume.err | head -n 1 | cut -c1-300)"; return 1; }
	! grep -q 'SASL session expired' node1.log ||
		{ reason "a Java client let a session expire: $(grep -m 1 'SASL session expired' node1.log | cut -c1-300)"; return 1; }
}

# kafkajs over SASL_SSL with OAUTHBEARER (its oauthBearerProvider giving unsecured tokens)
# against the broker's default validator, sessions of 1.5 s: kafkajs re-authenticates 500 ms
# before a session ends (reauthenticationThreshold), with no error and no expired session.
check_kafkajs-oauthbearer() {
	need node || return 1
	sec_start sasl.enabled.mechanisms=OAUTHBEARER connections.max.reauth.ms=1500 || return 1
	node "$COMPAT/js/kafkajs_client.js" --bootstrap "$SEC_SASL" --topic "compat-kafkajs-oauth-$RUN_ID" \
		--partitions "$PARTITIONS" --keys "$KEYS" --per-key "$PER_KEY" --timeout 20 \
		--ca "$PWD/ca.pem" --oauth-sub alice --reauth-threshold 500 > consumed.tsv 2> client.err ||
		{ reason "$(last_error client.err)"; return 1; }
	verify consumed.tsv "$(last_error client.err)" || return 1
	! grep -q 'kafkajs ERROR' client.err || { reason "kafkajs logged an error: $(grep -m 1 'kafkajs ERROR' client.err | cut -c1-300)"; return 1; }
	! grep -q 'SASL session expired' node1.log ||
		{ reason "kafkajs let a session expire: $(grep -m 1 'SASL session expired' node1.log | cut -c1-300)"; return 1; }
}

# Kafka's Java console clients with a signed JWT (RS256, made by python/make_jwt.py with openssl)
# read by Kafka's OAuthBearerLoginCallbackHandler from a file: token endpoint, against the
# broker's validating handler (Kafka's OAuthBearerValidatorCallbackHandler) with the JWKS in a
# file: URL and the expected audience and issuer; a token for another audience is refused with
# Kafka's SaslAuthenticationException.
check_kafka-console-oauthbearer-jwks() {
	need java && need python || return 1
	command -v openssl > /dev/null || { reason "openssl is not installed"; return 1; }
	"$PY" "$COMPAT/python/make_jwt.py" "$PWD" alice kafka https://idp.example 2> jwt.err ||
		{ reason "make_jwt.py: $(last_error jwt.err)"; return 1; }
	sec_start sasl.enabled.mechanisms=OAUTHBEARER \
		listener.name.sasl_ssl.oauthbearer.sasl.server.callback.handler.class=org.apache.kafka.common.security.oauthbearer.OAuthBearerValidatorCallbackHandler \
		"listener.name.sasl_ssl.oauthbearer.sasl.oauthbearer.jwks.endpoint.url=file://$PWD/jwks.json" \
		sasl.oauthbearer.expected.audience=kafka sasl.oauthbearer.expected.issuer=https://idp.example || return 1
	local token
	for token in token wrong-audience; do
		printf '%s\n' security.protocol=SASL_SSL sasl.mechanism=OAUTHBEARER \
			'sasl.jaas.config=org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required ;' \
			sasl.login.callback.handler.class=org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginCallbackHandler \
			"sasl.oauthbearer.token.endpoint.url=file://$PWD/$token.jwt" \
			ssl.truststore.type=PEM "ssl.truststore.location=$PWD/ca.pem" > "$token.properties"
	done
	# Kafka 4's clients read a token URL only when this system property allows it.
	local JAVA_OPTS=("${JAVA_OPTS[@]}" "-Dorg.apache.kafka.sasl.oauthbearer.allowed.urls=file://$PWD/token.jwt,file://$PWD/wrong-audience.jwt")
	java_console_roundtrip "compat-java-jwks-$RUN_ID" token.properties "with a signed JWT" || return 1
	kafka_tool org.apache.kafka.tools.TopicCommand --bootstrap-server "$SEC_SASL" --command-config wrong-audience.properties \
		--list > wrong.out 2> wrong.err
	grep -q 'SaslAuthenticationException' wrong.err ||
		{ reason "kafka-topics with a token for another audience: no SaslAuthenticationException: $(last_error wrong.err)"; return 1; }
}

# Kafka's kafka-acls against a broker with the standard authorizer: alice (SCRAM-SHA-256 over
# SASL_SSL) is refused by the Java console producer until kafka-acls --add gives her WRITE on the
# topic; --list shows the ACL, --remove deletes it and she is refused again. The PLAINTEXT
# listener's User:ANONYMOUS is the super user that administers.
check_kafka-acls-sasl() {
	need java || return 1
	sec_start authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer \
		super.users=User:ANONYMOUS || return 1
	sec_user alice alice-secret SCRAM-SHA-256 || return 1
	printf '%s\n' security.protocol=SASL_SSL sasl.mechanism=SCRAM-SHA-256 \
		'sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="alice" password="alice-secret";' \
		ssl.truststore.type=PEM "ssl.truststore.location=$PWD/ca.pem" > client.properties
	local topic=compat-acls-$RUN_ID
	BOOTSTRAP=$SEC_PLAIN topics_create "$topic" 1 || return 1
	produce_as_alice() {
		printf 'v1\nv2\n' | timeout 60 java "${JAVA_OPTS[@]}" -cp "$JARS/*" org.apache.kafka.tools.ConsoleProducer \
			--bootstrap-server "$SEC_SASL" --topic "$topic" --producer.config client.properties \
			--producer-property max.block.ms=10000 --producer-property delivery.timeout.ms=15000 \
			--producer-property request.timeout.ms=5000 > "$1.out" 2> "$1.err"
	}
	produce_as_alice denied
	grep -q 'TopicAuthorizationException' denied.err ||
		{ reason "kafka-console-producer without ACLs: no TopicAuthorizationException: $(last_error denied.err)"; return 1; }
	acls() { kafka_tool org.apache.kafka.tools.AclCommand --bootstrap-server "$SEC_PLAIN" "$@"; }
	acls --add --allow-principal User:alice --operation Write --topic "$topic" > add.out 2> add.err ||
		{ reason "kafka-acls --add (CreateAcls): $(last_error add.err)"; return 1; }
	acls --list --topic "$topic" > list.out 2> list.err ||
		{ reason "kafka-acls --list (DescribeAcls): $(last_error list.err)"; return 1; }
	grep -q 'principal=User:alice, host=\*, operation=WRITE, permissionType=ALLOW' list.out ||
		{ reason "kafka-acls --list does not show alice's WRITE: $(tr '\n' ' ' < list.out | cut -c1-300)"; return 1; }
	produce_as_alice allowed ||
		{ reason "kafka-console-producer with WRITE: $(last_error allowed.err)"; return 1; }
	acls --remove --force --allow-principal User:alice --operation Write --topic "$topic" > remove.out 2> remove.err ||
		{ reason "kafka-acls --remove (DeleteAcls): $(last_error remove.err)"; return 1; }
	acls --list --topic "$topic" > list2.out 2> list2.err
	grep -q 'User:alice' list2.out && { reason "kafka-acls --list after --remove still shows alice"; return 1; }
	produce_as_alice denied2
	grep -q 'TopicAuthorizationException' denied2.err ||
		{ reason "kafka-console-producer after --remove: no TopicAuthorizationException: $(last_error denied2.err)"; return 1; }
}

# Kafka's kafka-configs sets client quotas (AlterClientQuotas) of a user, the default client id,
# a user's client id, an ip and an ip named by a host name (an unresolvable one refused, by the
# tool itself), describes each (DescribeClientQuotas) with its own output
# lines, lists users with their quotas and SCRAM credentials, deletes a quota with
# --delete-config, and is refused a fractional byte rate (INVALID_REQUEST with Kafka's message).
# (Kafka 4.1's kafka-configs cannot alter quotas with --bootstrap-controller: it describes them
# first, and its admin client sends DescribeClientQuotas to brokers only.)
check_kafka-configs-quotas() {
	need java || return 1
	sec_start && sec_user alice alice-secret SCRAM-SHA-256 || return 1
	configs() { kafka_tool kafka.admin.ConfigCommand --bootstrap-server "$SEC_PLAIN" "$@"; }
	local rates='producer_byte_rate=1048576,consumer_byte_rate=2097152' both='consumer_byte_rate=2097152.0, producer_byte_rate=1048576.0'
	local entities=('--entity-type users --entity-name alice' '--entity-type clients --entity-default'
		'--entity-type users --entity-name alice --entity-type clients --entity-name app1')
	local wants=("Quota configs for user-principal 'alice' are $both" "Quota configs for the default client-id are $both"
		"Quota configs for user-principal 'alice', client-id 'app1' are $both") i
	for i in 0 1 2; do
		# shellcheck disable=SC2086 # the entity flags are words
		configs --alter --add-config "$rates" ${entities[i]} > "alter$i.out" 2> "alter$i.err" ||
			{ reason "kafka-configs --alter ${entities[i]}: $(last_error "alter$i.err")"; return 1; }
	done
	configs --alter --add-config connection_creation_rate=10 --entity-type ips --entity-name 127.0.0.1 > alter3.out 2> alter3.err ||
		{ reason "kafka-configs --alter --entity-type ips: $(last_error alter3.err)"; return 1; }
	entities+=('--entity-type ips --entity-name 127.0.0.1')
	wants+=("Quota configs for ip '127.0.0.1' are connection_creation_rate=10.0")
	# An ip entity may name a host that resolves (kept as named); one that does not is refused.
	configs --alter --add-config connection_creation_rate=5 --entity-type ips --entity-name localhost > alter4.out 2> alter4.err ||
		{ reason "kafka-configs --alter --entity-type ips --entity-name localhost: $(last_error alter4.err)"; return 1; }
	entities+=('--entity-type ips --entity-name localhost')
	wants+=("Quota configs for ip 'localhost' are connection_creation_rate=5.0")
	if configs --alter --add-config connection_creation_rate=5 --entity-type ips --entity-name no-such-host.invalid > badhost.out 2> badhost.err; then
		reason "kafka-configs --alter --entity-type ips --entity-name no-such-host.invalid succeeded"
		return 1
	fi
	# (kafka-configs refuses it itself, InetAddress.getByName, before asking the broker.)
	grep -q 'must be a valid IP or resolvable host, but it is: no-such-host.invalid' badhost.err ||
		{ reason "kafka-configs --alter of an unresolvable host: $(last_error badhost.err)"; return 1; }
	for i in 0 1 2 3 4; do
		# shellcheck disable=SC2086
		configs --describe ${entities[i]} > "describe$i.out" 2> "describe$i.err" ||
			{ reason "kafka-configs --describe ${entities[i]}: $(last_error "describe$i.err")"; return 1; }
		grep -qxF "${wants[i]}" "describe$i.out" ||
			{ reason "kafka-configs --describe ${entities[i]}: want \"${wants[i]}\", got: $(tr '\n' ' ' < "describe$i.out" | cut -c1-300)"; return 1; }
	done
	configs --describe --entity-type users > users.out 2> users.err ||
		{ reason "kafka-configs --describe --entity-type users: $(last_error users.err)"; return 1; }
	grep -qxF "${wants[0]}" users.out && grep -qxF "SCRAM credential configs for user-principal 'alice' are SCRAM-SHA-256=iterations=8192" users.out ||
		{ reason "kafka-configs --describe --entity-type users: $(tr '\n' ' ' < users.out | cut -c1-300)"; return 1; }
	configs --alter --delete-config producer_byte_rate --entity-type users --entity-name alice > delete.out 2> delete.err ||
		{ reason "kafka-configs --alter --delete-config: $(last_error delete.err)"; return 1; }
	configs --describe --entity-type users --entity-name alice > describe4.out 2> describe4.err
	grep -qxF "Quota configs for user-principal 'alice' are consumer_byte_rate=2097152.0" describe4.out ||
		{ reason "kafka-configs --describe after --delete-config: $(tr '\n' ' ' < describe4.out | cut -c1-300)"; return 1; }
	if configs --alter --add-config producer_byte_rate=10.5 --entity-type users --entity-name bob > bad.out 2> bad.err; then
		reason "kafka-configs --alter producer_byte_rate=10.5 succeeded"
		return 1
	fi
	grep -q 'InvalidRequestException: producer_byte_rate cannot be a fractional value.' bad.err ||
		{ reason "kafka-configs --alter producer_byte_rate=10.5: $(last_error bad.err)"; return 1; }
}

# ---- secured 3-node cluster (issue 14's "done when") -------------------------

# sc_node_config I: node I's settings (nodeI.properties) for the secured cluster: a SASL_SSL
# listener for clients (SCRAM-SHA-256/512 for users, PLAIN for the admin from the JAAS config),
# a SASL_SSL listener BROKER for replication (SCRAM-SHA-512 only; the brokers log in as
# User:broker), the standard authorizer with User:broker and User:admin as super users.
# SC_PORTS holds the client ports of nodes 1..3, then their controller ports, then their
# BROKER ports.
sc_node_config() {
	local i=$1 voters=1@127.0.0.1:${SC_PORTS[3]},2@127.0.0.1:${SC_PORTS[4]},3@127.0.0.1:${SC_PORTS[5]}
	local sasl=127.0.0.1:${SC_PORTS[i - 1]} broker=127.0.0.1:${SC_PORTS[i + 5]}
	printf '%s\n' "node.id=$i" process.roles=broker,controller "controller.quorum.voters=$voters" \
		"listeners=SASL_SSL://$sasl,BROKER://$broker,CONTROLLER://127.0.0.1:${SC_PORTS[i + 2]}" \
		"advertised.listeners=SASL_SSL://$sasl,BROKER://$broker" controller.listener.names=CONTROLLER \
		listener.security.protocol.map=SASL_SSL:SASL_SSL,BROKER:SASL_SSL,CONTROLLER:PLAINTEXT \
		inter.broker.listener.name=BROKER "log.dirs=$PWD/data$i" \
		sasl.enabled.mechanisms=SCRAM-SHA-256,SCRAM-SHA-512,PLAIN sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512 \
		listener.name.broker.sasl.enabled.mechanisms=SCRAM-SHA-512 \
		'listener.name.broker.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="broker" password="broker-secret";' \
		'listener.name.sasl_ssl.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_admin="admin-secret";' \
		authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer 'super.users=User:broker;User:admin' \
		ssl.keystore.type=PEM "ssl.keystore.location=$PWD/broker.pem" \
		ssl.truststore.type=PEM "ssl.truststore.location=$PWD/ca.pem" \
		offsets.topic.replication.factor=3 default.replication.factor=3 min.insync.replicas=2 \
		broker.session.timeout.ms=4000 broker.heartbeat.interval.ms=500 > "node$i.properties"
}

# sc_java_properties FILE MECHANISM USER PASSWORD: a Java client's SASL_SSL settings.
sc_java_properties() {
	local module=org.apache.kafka.common.security.scram.ScramLoginModule
	[[ $2 == PLAIN ]] && module=org.apache.kafka.common.security.plain.PlainLoginModule
	printf '%s\n' security.protocol=SASL_SSL "sasl.mechanism=$2" \
		"sasl.jaas.config=$module required username=\"$3\" password=\"$4\";" \
		ssl.truststore.type=PEM "ssl.truststore.location=$PWD/ca.pem" > "$1"
}

# sc_start: certificates, three formatted nodes started (dyn_start) and serving; sets SC_PORTS
# and SC_BROKERS (the SASL_SSL host:port of nodes 1..3).
sc_start() {
	sec_certs || return 1
	SC_PORTS=()
	local p i id
	while ((${#SC_PORTS[@]} < 9)); do
		p=$(free_port)
		[[ " ${SC_PORTS[*]} " == *" $p "* ]] || SC_PORTS+=("$p")
	done
	SC_BROKERS=(127.0.0.1:"${SC_PORTS[0]}" 127.0.0.1:"${SC_PORTS[1]}" 127.0.0.1:"${SC_PORTS[2]}")
	id=$("$SAMSA_BIN" storage random-uuid)
	for i in 1 2 3; do
		sc_node_config "$i"
		"$SAMSA_BIN" storage format --cluster-id "$id" --config "node$i.properties" > "format$i.out" 2>&1 ||
			{ reason "samsa storage format (node $i): $(tail -n 1 "format$i.out")"; return 1; }
	done
	trap dyn_stop EXIT
	for i in 1 2 3; do dyn_start "$i"; done
	for i in 1 2 3; do dyn_wait_started "$i" || return 1; done
}

# sc_kcat_isr USER PASSWORD BROKER TOPIC...: waits (30s) until kcat -L as USER through BROKER
# shows every partition of the TOPICs with three replicas in sync.
sc_kcat_isr() {
	local i t ok
	for ((i = 0; i < 150; i++)); do
		ok=1
		for t in "${@:4}"; do
			kcat -L -b "$3" -t "$t" -m 5 -X security.protocol=SASL_SSL -X sasl.mechanisms=SCRAM-SHA-512 \
				-X sasl.username="$1" -X sasl.password="$2" -X "ssl.ca.location=$PWD/ca.pem" > isr.out 2> isr.err
			[[ $(grep -c 'isrs: [0-9],[0-9],[0-9]' isr.out) == "$PARTITIONS" ]] || { ok=0; break; }
		done
		((ok)) && return 0
		sleep 0.2
	done
	reason "kcat -L as $1: $t's partitions are not all in sync on 3 replicas within 30s: $(grep -E 'partition|error|Error' isr.out isr.err | tr '\n' ' ' | cut -c1-300)"
	return 1
}

# sc_refused WHO FILE KIND PATTERN: FILE (the stderr of the client WHO) must show PATTERN, the
# client's own error for a refusal of KIND (authorization or authentication).
sc_refused() {
	grep -qE "$4" "$2" && return 0
	reason "$1: want the client's $3 error /$4/, got: $(last_error "$2")"
	return 1
}

# sc_kcat USER PASSWORD BROKER MECHANISM KCAT-ARG...: kcat as USER over SASL_SSL, for at most 30s.
sc_kcat() {
	timeout 30 kcat -b "$3" -X security.protocol=SASL_SSL -X "sasl.mechanisms=$4" -X "sasl.username=$1" \
		-X "sasl.password=$2" -X "ssl.ca.location=$PWD/ca.pem" "${@:5}"
}

# sc_py CLIENT USER PASSWORD BROKER TOPIC [ARG...]: secured_client.py use.
sc_py() {
	"$PY" "$COMPAT/python/secured_client.py" use --client "$1" --user "$2" --password "$3" --bootstrap "$4" \
		--topic "$5" --ca "$PWD/ca.pem" --partitions "$PARTITIONS" --keys "$KEYS" --per-key "$PER_KEY" "${@:6}"
}

# sc_js USER PASSWORD BROKER TOPIC [ARG...]: kafkajs_client.js with SCRAM-SHA-512 on TOPIC.
sc_js() {
	node "$COMPAT/js/kafkajs_client.js" --bootstrap "$3" --topic "$4" --no-create true --ca "$PWD/ca.pem" \
		--scram "scram-sha-512:$1:$2" --partitions "$PARTITIONS" --keys "$KEYS" --per-key "$PER_KEY" \
		--timeout 20 "${@:5}"
}

# sc_java_produce PROPERTIES BROKER TOPIC FILE: the Java console producer, acks=all, of the
# keyed records in FILE, for at most 40s.
sc_java_produce() {
	timeout 40 java "${JAVA_OPTS[@]}" -cp "$JARS/*" org.apache.kafka.tools.ConsoleProducer --bootstrap-server "$2" --topic "$3" \
		--producer.config "$1" --producer-property acks=all --producer-property max.block.ms=15000 \
		--producer-property delivery.timeout.ms=20000 --producer-property request.timeout.ms=5000 \
		--property parse.key=true --property key.separator=$'\t' < "$4"
}

# Issue 14's closing condition with real processes and every non-Go client: three samsa nodes
# with SASL_SSL listeners for clients and for replication (SCRAM; the brokers replicate as the
# super user User:broker), the standard authorizer. The admin (PLAIN, a super user) makes the
# SCRAM users with Kafka's kafka-configs through node 1 and alice's ACLs (WRITE, READ, DESCRIBE
# on the topic prefix alice-, READ on the group prefix alice-) with kafka-acls through node 2;
# alice's topics have replication factor 3 and min.insync.replicas=2. alice produces with
# acks=all and reads everything back in a consumer group with kcat, confluent-kafka,
# kafka-python, kafkajs and the Java console clients, each through another broker. bob (valid
# password, no ACLs) gets each client's authorization error; a wrong password each client's
# authentication error; PLAINTEXT and TLS without SASL on the SASL_SSL port get no metadata.
# Last node 1 is killed (SIGKILL) and every record of every client is read back through nodes
# 2 and 3.
check_cluster-secured() {
	need kcat && need python && need node && need java || return 1
	sc_start || return 1
	local b1=${SC_BROKERS[0]} b2=${SC_BROKERS[1]} b3=${SC_BROKERS[2]}
	sc_java_properties admin.properties PLAIN admin admin-secret
	local user
	for user in broker alice bob; do
		kafka_tool kafka.admin.ConfigCommand --bootstrap-server "$b1" --command-config admin.properties --alter \
			--add-config "SCRAM-SHA-256=[password=$user-secret],SCRAM-SHA-512=[password=$user-secret]" \
			--entity-type users --entity-name "$user" > "configs-$user.out" 2> "configs-$user.err" ||
			{ reason "kafka-configs --alter --add-config SCRAM (user $user): $(last_error "configs-$user.err")"; return 1; }
	done
	acls() { kafka_tool org.apache.kafka.tools.AclCommand --bootstrap-server "$b2" --command-config admin.properties "$@"; }
	acls --add --allow-principal User:alice --operation Write --operation Read --operation Describe \
		--topic alice- --resource-pattern-type prefixed > acl-topic.out 2> acl-topic.err ||
		{ reason "kafka-acls --add (topic prefix alice-): $(last_error acl-topic.err)"; return 1; }
	acls --add --allow-principal User:alice --operation Read --group alice- --resource-pattern-type prefixed \
		> acl-group.out 2> acl-group.err || { reason "kafka-acls --add (group prefix alice-): $(last_error acl-group.err)"; return 1; }
	local clients=(kcat confluent-kafka kafka-python kafkajs java) c topics=()
	for c in "${clients[@]}"; do topics+=("alice-$c-$RUN_ID"); done
	"$PY" "$COMPAT/python/secured_client.py" create --bootstrap "$b3" --mechanism PLAIN --user admin \
		--password admin-secret --ca "$PWD/ca.pem" --partitions "$PARTITIONS" "${topics[@]/#/--topic=}" 2> create.err ||
		{ reason "creating alice's topics as admin: $(last_error create.err)"; return 1; }
	sc_kcat_isr alice alice-secret "$b1" "${topics[@]}" || return 1

	# alice, with each client through another broker: acks=all, then her group reads everything.
	write_records > records.tsv
	local rc
	sc_kcat alice alice-secret "$b1" SCRAM-SHA-256 -P -t "alice-kcat-$RUN_ID" -K $'\t' -X acks=all \
		< records.tsv 2> kcat-produce.err && ! grep -qE '^% (ERROR|Failed)' kcat-produce.err ||
		{ reason "alice's kcat -P (SCRAM-SHA-256, node 1): $(last_error kcat-produce.err)"; return 1; }
	rc=0
	sc_kcat alice alice-secret "$b1" SCRAM-SHA-256 -G "alice-kcat-$RUN_ID" "alice-kcat-$RUN_ID" \
		-X auto.offset.reset=earliest -e -q -f '%p\t%k\t%s\n' > kcat.tsv 2> kcat-group.err || rc=$?
	((rc == 0)) || { reason "alice's kcat -G (node 1): exit status $rc after $(wc -l < kcat.tsv) records: $(last_error kcat-group.err)"; return 1; }
	verify kcat.tsv "alice's kcat" || return 1
	sc_py confluent-kafka alice alice-secret "$b2" "alice-confluent-kafka-$RUN_ID" --group "alice-confluent-$RUN_ID" \
		> confluent.tsv 2> confluent.err || { reason "alice's confluent-kafka (node 2): $(last_error confluent.err)"; return 1; }
	verify confluent.tsv "alice's confluent-kafka" || return 1
	sc_py kafka-python alice alice-secret "$b3" "alice-kafka-python-$RUN_ID" --group "alice-kafka-python-$RUN_ID" \
		--mechanism SCRAM-SHA-256 > kafka-python.tsv 2> kafka-python.err ||
		{ reason "alice's kafka-python (SCRAM-SHA-256, node 3): $(last_error kafka-python.err)"; return 1; }
	verify kafka-python.tsv "alice's kafka-python" || return 1
	sc_js alice alice-secret "$b1" "alice-kafkajs-$RUN_ID" --group "alice-kafkajs-$RUN_ID" > kafkajs.tsv 2> kafkajs.err ||
		{ reason "alice's kafkajs (node 1): $(last_error kafkajs.err)"; return 1; }
	verify kafkajs.tsv "alice's kafkajs" || return 1
	sc_java_properties alice.properties SCRAM-SHA-512 alice alice-secret
	sc_java_produce alice.properties "$b2" "alice-java-$RUN_ID" records.tsv > java-produce.out 2> java-produce.err &&
		! grep -q ERROR java-produce.err ||
		{ reason "alice's kafka-console-producer (node 2): $(last_error java-produce.err)"; return 1; }
	kafka_tool org.apache.kafka.tools.consumer.ConsoleConsumer --bootstrap-server "$b3" --topic "alice-java-$RUN_ID" \
		--consumer.config alice.properties --group "alice-java-$RUN_ID" --from-beginning \
		--max-messages $((KEYS * PER_KEY)) --timeout-ms 15000 --property print.key=true --property print.partition=true \
		> java.tsv 2> java-consume.err || { reason "alice's kafka-console-consumer --group (node 3): $(last_error java-consume.err)"; return 1; }
	verify java.tsv "alice's kafka-console-consumer" || return 1

	# bob (no ACLs) and a wrong password, with every client, all at once.
	sc_java_properties bob.properties SCRAM-SHA-512 bob bob-secret
	sc_java_properties wrong.properties SCRAM-SHA-512 alice wrong
	local who pass jobs=()
	head -n 1 records.tsv > one.tsv
	for who in bob wrong; do
		pass=bob-secret user=bob
		[[ $who == wrong ]] && pass=wrong user=alice
		sc_kcat "$user" "$pass" "$b2" SCRAM-SHA-512 -P -t "alice-kcat-$RUN_ID" -X acks=all \
			-X message.timeout.ms=10000 <<< "$who" > /dev/null 2> "kcat-$who.err" &
		jobs+=($!)
		sc_py confluent-kafka "$user" "$pass" "$b3" "alice-confluent-kafka-$RUN_ID" --group "alice-$who" --timeout 10 \
			> /dev/null 2> "confluent-$who.err" &
		jobs+=($!)
		sc_py kafka-python "$user" "$pass" "$b1" "alice-kafka-python-$RUN_ID" --group "alice-$who" --timeout 10 \
			> /dev/null 2> "kafka-python-$who.err" &
		jobs+=($!)
		sc_js "$user" "$pass" "$b2" "alice-kafkajs-$RUN_ID" --group "alice-$who" --timeout 10 \
			> /dev/null 2> "kafkajs-$who.err" &
		jobs+=($!)
		sc_java_produce "$who.properties" "$b3" "alice-java-$RUN_ID" one.tsv > /dev/null 2> "java-$who.err" &
		jobs+=($!)
	done
	# PLAINTEXT, and TLS without SASL, to a SASL_SSL port.
	timeout 20 kcat -L -b "$b1" -m 5 > plaintext.out 2> plaintext.err &
	jobs+=($!)
	timeout 20 kcat -L -b "$b1" -m 5 -X security.protocol=ssl -X "ssl.ca.location=$PWD/ca.pem" > tls.out 2> tls.err &
	jobs+=($!)
	wait "${jobs[@]}" # not the nodes, which are children too
	sc_refused "bob's kcat -P" kcat-bob.err authorization 'Topic authorization failed' || return 1
	sc_refused "bob's confluent-kafka" confluent-bob.err authorization 'TOPIC_AUTHORIZATION_FAILED' || return 1
	sc_refused "bob's kafka-python" kafka-python-bob.err authorization 'TopicAuthorizationFailedError' || return 1
	sc_refused "bob's kafkajs" kafkajs-bob.err authorization 'Not authorized to access topics' || return 1
	sc_refused "bob's kafka-console-producer" java-bob.err authorization 'TopicAuthorizationException' || return 1
	sc_refused "kcat -P with a wrong password" kcat-wrong.err authentication 'SASL authentication error' || return 1
	sc_refused "confluent-kafka with a wrong password" confluent-wrong.err authentication '_AUTHENTICATION' || return 1
	sc_refused "kafka-python with a wrong password" kafka-python-wrong.err authentication 'AuthenticationFailedError' || return 1
	sc_refused "kafkajs with a wrong password" kafkajs-wrong.err authentication 'SASL SCRAM SHA512 authentication failed' || return 1
	sc_refused "kafka-console-producer with a wrong password" java-wrong.err authentication 'SaslAuthenticationException' || return 1
	for who in plaintext tls; do
		! grep -q 'brokers:' "$who.out" ||
			{ reason "kcat -L over $who to a SASL_SSL port got metadata: $(tr '\n' ' ' < "$who.out" | cut -c1-200)"; return 1; }
	done

	# Node 1 dies; nodes 2 and 3 serve everything alice wrote.
	kill -KILL "$(< node1.pid)"
	for c in "${clients[@]}"; do
		rc=0
		sc_kcat alice alice-secret "$b2,$b3" SCRAM-SHA-512 -C -t "alice-$c-$RUN_ID" -o beginning -e -q \
			-f '%p\t%k\t%s\n' > "after-kill-$c.tsv" 2> "after-kill-$c.err" || rc=$?
		((rc == 0)) || { reason "after node 1's death, kcat -C of alice-$c through nodes 2 and 3: exit status $rc after $(wc -l < "after-kill-$c.tsv") records: $(last_error "after-kill-$c.err")"; return 1; }
		verify "after-kill-$c.tsv" "alice-$c after node 1's death" || return 1
	done
}

# ---- main ------------------------------------------------------------------

# run_check CLIENT LEFT: runs check_CLIENT in $WORK/CLIENT under the timeout, or
# under LEFT seconds (what is left of the run's budget) if that is less, and prints
# its PASS or FAIL line; returns its status.
run_check() {
	local c=$1 dir=$WORK/$1 rc why limit=$TIMEOUT
	[[ $c == kafka-producer-perf-test ]] && limit=$((TIMEOUT * 2))
	[[ " ${SECURED_CLUSTER_CHECKS[*]} " == *" $c "* ]] && limit=$SECURED_BUDGET
	if (($2 < 10)); then
		echo "FAIL $c: not run: the run's time budget of ${BUDGET}s (SAMSA_COMPAT_BUDGET) is spent"
		return 1
	fi
	((limit <= $2)) || limit=$2
	mkdir -p "$dir"
	# The check runs in a fresh copy of this script under `timeout`, which kills
	# the check's whole process group when the time is up.
	(cd "$dir" && timeout --kill-after=5 "$limit" bash "$COMPAT/run.sh" __check "$c") \
		> "$dir/check.log" 2>&1
	rc=$?
	if ((rc == 0)); then
		echo "PASS $c"
	else
		if [[ -s $dir/reason ]]; then
			why=$(head -n 1 "$dir/reason")
		elif ((rc == 124 || rc == 137)); then
			why="timed out after ${limit}s"
			local newest
			# shellcheck disable=SC2012 # our own file names
			newest=$(ls -t "$dir"/*.err 2> /dev/null | head -n 1)
			if [[ -n $newest ]]; then
				why+=" in ${newest##*/}"
				local last
				last=$(grep -v '^[[:space:]]*$' "$newest" | tail -n 1 | cut -c1-300)
				[[ -z $last ]] || why+=": $last"
			fi
		else
			why="check exited with status $rc: $(last_error "$dir/check.log")"
		fi
		echo "FAIL $c: $why"
	fi
	[[ -s $dir/note ]] && sed 's/^/    /' "$dir/note"
	return $rc
}

# run_checks PROBLEM BUDGET CHECK...: runs the checks, together within BUDGET seconds, and
# counts them in passed and failed; a check FAILs without running when the function PROBLEM
# prints why the servers it needs are not running.
run_checks() {
	local problem=$1 end=$((SECONDS + $2)) c why
	for c in "${@:3}"; do
		why=$("$problem")
		if [[ -n $why ]]; then
			echo "FAIL $c: $why"
			failed=$((failed + 1))
		elif run_check "$c" $((end - SECONDS)); then
			passed=$((passed + 1))
		else
			failed=$((failed + 1))
		fi
	done
}
broker_problem() {
	if [[ -n $BROKER_PROBLEM ]]; then
		echo "broker not running: $BROKER_PROBLEM"
	elif [[ -n $BROKER_PID ]] && ! kill -0 "$BROKER_PID" 2> /dev/null; then
		echo "broker not running: the broker exited during the run: $(tail -n 1 "$WORK/broker.log")"
	fi
}
cluster_problem() { [[ -z $CLUSTER_PROBLEM ]] || echo "cluster not running: $CLUSTER_PROBLEM"; }
dynamic_problem() { [[ -x $SAMSA_BIN ]] || echo "no samsa binary: $(tail -n 1 "$WORK/build.log" 2> /dev/null)"; }

# run_own_nodes_checks BUDGET CHECK...: runs, within BUDGET seconds, those of the checks that
# SAMSA_COMPAT_ONLY selects; they start and stop their own nodes from the samsa binary built here.
run_own_nodes_checks() {
	local selected=() c
	for c in "${@:2}"; do
		if [[ -z ${SAMSA_COMPAT_ONLY:-} || " $SAMSA_COMPAT_ONLY " == *" $c "* ]]; then selected+=("$c"); fi
	done
	((${#selected[@]} > 0)) || return 0
	SAMSA_BIN=$WORK/samsa
	[[ -x $SAMSA_BIN ]] || (cd "$ROOT" && go build -o "$SAMSA_BIN" ./cmd/samsa) > "$WORK/build.log" 2>&1
	export SAMSA_BIN
	run_checks dynamic_problem "$1" "${selected[@]}"
}

main() {
	WORK=$(mktemp -d "${TMPDIR:-/tmp}/samsa-compat.XXXXXX")
	trap cleanup EXIT
	trap 'exit 130' INT TERM
	RUN_ID=$(date +%s)-$$
	export RUN_ID

	if [[ ${SAMSA_COMPAT_SKIP_INSTALL:-} != 1 ]]; then
		SAMSA_COMPAT_INSTALL_LOG=$WORK/install.log bash "$COMPAT/install.sh" ||
			log "some installs failed; see the FAIL lines below"
	fi

	local selected=() c
	for c in "${CLIENTS[@]}"; do
		if [[ -z ${SAMSA_COMPAT_ONLY:-} || " $SAMSA_COMPAT_ONLY " == *" $c "* ]]; then selected+=("$c"); fi
	done

	BROKER_PROBLEM=
	if [[ -n ${SAMSA_COMPAT_BOOTSTRAP:-} ]]; then
		BOOTSTRAP=$SAMSA_COMPAT_BOOTSTRAP
		METRICS=${SAMSA_COMPAT_METRICS:-}
		log "using the running broker at $BOOTSTRAP"
	elif start_broker; then
		log "samsa broker pid $BROKER_PID on $BOOTSTRAP, data in $WORK/data"
	else
		log "$BROKER_PROBLEM"
	fi
	export BOOTSTRAP METRICS

	passed=0 failed=0
	run_checks broker_problem "$BUDGET" "${selected[@]}"

	# The 3-node section.
	local cluster_selected=()
	for c in "${CLUSTER_CHECKS[@]}"; do
		if [[ -z ${SAMSA_COMPAT_ONLY:-} || " $SAMSA_COMPAT_ONLY " == *" $c "* ]]; then cluster_selected+=("$c"); fi
	done
	if ((${#cluster_selected[@]} > 0)); then
		CLUSTER_PROBLEM=
		if start_cluster; then
			log "samsa 3-node cluster on $CLUSTER_BOOTSTRAP (controllers $CLUSTER_CONTROLLERS), in $CLUSTER_DIR"
		fi
		run_checks cluster_problem "$CLUSTER_BUDGET" "${cluster_selected[@]}"
		stop_cluster
	fi

	# The dynamic-quorum and security sections: each check starts and stops its own nodes.
	run_own_nodes_checks "$((CLUSTER_BUDGET + SECURITY_BUDGET))" "${DYNAMIC_CHECKS[@]}" "${SECURITY_CHECKS[@]}"
	# The secured 3-node section, with a budget of its own.
	run_own_nodes_checks "$SECURED_BUDGET" "${SECURED_CLUSTER_CHECKS[@]}"

	if [[ -n $BROKER_PID ]] && ! kill -0 "$BROKER_PID" 2> /dev/null; then
		log "the broker exited during the run; last log lines:"
		tail -n 20 "$WORK/broker.log" | sed 's/^/    /' >&2
		BROKER_PID=
	fi
	# Every client above talked to the broker without one request it could not read: a "bad
	# request" line means a client (or the broker's own client of its controller listener)
	# sent something Samsa does not serve, and the connection was closed under it.
	if [[ -z ${SAMSA_COMPAT_ONLY:-} && -s $WORK/broker.log ]]; then
		local bad
		bad=$(grep -m 1 'closing connection: bad request' "$WORK/broker.log" | cut -c1-300)
		if [[ -z $bad ]]; then
			echo "PASS broker-log-no-bad-requests"
			passed=$((passed + 1))
		else
			echo "FAIL broker-log-no-bad-requests: $(grep -c 'closing connection: bad request' "$WORK/broker.log") in the broker log, the first: $bad"
			failed=$((failed + 1))
		fi
	fi
	if ((failed > 0)); then
		KEEP_WORK=1
		local problems line
		problems=$(grep -iE 'level=(WARN|ERROR)|panic|error' "$WORK/broker.log" 2> /dev/null | tail -n 20)
		if [[ -n $problems ]]; then
			log "broker log warnings and errors (last 20):"
			while IFS= read -r line; do echo "    $line"; done <<< "$problems" >&2
		fi
	fi
	echo "$passed passed, $failed failed"
	((failed == 0))
}

if [[ ${1:-} == __check ]]; then
	# Internal: run one check in the current directory (see run_check).
	"check_$2"
	exit
fi
main "$@"
