#!/usr/bin/env bash
# Regenerates internal/config/kafka_broker_settings.txt from Apache Kafka's own ConfigDef.
# Needs mvn and a JDK 17+; fetches Kafka's broker jars (bench/java/pom.xml, Maven Central) into
# a temporary directory. Run from anywhere: bash internal/config/gen/generate.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$root/bench/java" && mvn -q -B dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$tmp/jars")
javac -d "$tmp/classes" -cp "$tmp/jars/*" "$here/KafkaBrokerSettings.java"
java -cp "$tmp/jars/*:$tmp/classes" KafkaBrokerSettings > "$root/internal/config/kafka_broker_settings.txt"
