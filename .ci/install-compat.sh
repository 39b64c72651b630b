#!/usr/bin/env bash
# Installs the external clients of the compatibility suite (kcat, kafka-python,
# confluent-kafka, kafkajs, the Apache Kafka CLI jars). Idempotent and quiet; see
# compat/install.sh. compat/run.sh calls it itself, so CI only needs this to
# install ahead of time.
exec bash "$(dirname "${BASH_SOURCE[0]}")/../compat/install.sh" "$@"
