#!/usr/bin/env python3
"""A user of a secured cluster (SASL_SSL with SCRAM or PLAIN) with kafka-python or confluent-kafka.

Used by compat/run.sh's cluster-secured check. Two commands:

  create  makes topics (replication factor 3, min.insync.replicas=2) with confluent-kafka's
          AdminClient as the given user, and waits until the metadata shows their partitions.
  use     with --client kafka-python or confluent-kafka: produces the common record plan
          (common.plan) with acks=all to an existing topic, then reads it back as the only
          member of consumer group --group, commits, and prints the records
          ("PARTITION<TAB>KEY<TAB>VALUE") for verify.py.

Neither creates a topic on its own: the user may lack CREATE. A refusal (authorization or
authentication) ends the program at once with "error: " and the client's own error, so
the caller can check which error a client reports.
"""

import argparse
import logging
import os
import sys
import time

from confluent_kafka import Consumer, KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic
from kafka import KafkaConsumer, KafkaProducer

import common
import confluent_client


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("command", choices=["create", "use"])
    ap.add_argument("--client", choices=["kafka-python", "confluent-kafka"], default="confluent-kafka")
    ap.add_argument("--bootstrap", required=True, help="host:port,... of SASL_SSL listeners")
    ap.add_argument("--topic", required=True, action="append", help="repeatable for create")
    ap.add_argument("--group")
    ap.add_argument("--partitions", type=int, default=3)
    ap.add_argument("--keys", type=int, default=10)
    ap.add_argument("--per-key", type=int, default=30)
    ap.add_argument("--timeout", type=float, default=20.0, help="seconds per phase")
    ap.add_argument("--mechanism", default="SCRAM-SHA-512")
    ap.add_argument("--user", required=True)
    ap.add_argument("--password", required=True)
    ap.add_argument("--ca", required=True, help="PEM file of the CA of the brokers' certificates")
    return ap.parse_args()


# ---- confluent-kafka (librdkafka) ----

def confluent_base(args):
    def on_error(err):
        # Refusals are final: an authentication failure, or an authorization failure of the
        # cluster, a topic or a group. Transport errors are retried by librdkafka.
        if err.code() in (KafkaError._AUTHENTICATION, KafkaError.TOPIC_AUTHORIZATION_FAILED,
                          KafkaError.GROUP_AUTHORIZATION_FAILED,
                          KafkaError.CLUSTER_AUTHORIZATION_FAILED) or err.fatal():
            # A callback cannot end the program with an exception (librdkafka calls it).
            print(f"error: {err.name()}: {err.str()}", file=sys.stderr, flush=True)
            os._exit(1)
        print(f"librdkafka error: {err.name()}: {err.str()}", file=sys.stderr)

    return {"bootstrap.servers": args.bootstrap, "security.protocol": "SASL_SSL",
            "sasl.mechanisms": args.mechanism, "sasl.username": args.user,
            "sasl.password": args.password, "ssl.ca.location": args.ca, "error_cb": on_error}


def confluent_create(args):
    admin = AdminClient(confluent_base(args))
    topics = [NewTopic(t, num_partitions=args.partitions, replication_factor=3,
                       config={"min.insync.replicas": "2"}) for t in args.topic]
    for topic, f in admin.create_topics(topics, request_timeout=args.timeout,
                                        operation_timeout=args.timeout).items():
        try:
            f.result(timeout=args.timeout)
        except Exception as e:
            common.fail(f"create topic {topic} (CreateTopics): {e}")
    deadline = time.monotonic() + args.timeout
    for topic in args.topic:
        while True:
            md = admin.list_topics(topic=topic, timeout=5)
            t = md.topics.get(topic)
            if t is not None and t.error is None and len(t.partitions) == args.partitions:
                break
            if time.monotonic() > deadline:
                common.fail(f"metadata for the new topic {topic}: {t.error if t else 'missing'}")
            time.sleep(0.1)


def confluent_use(args):
    topic = args.topic[0]
    base = confluent_base(args)
    confluent_client.produce(argparse.Namespace(**{**vars(args), "topic": topic}), base)

    consumer = Consumer({**base, "group.id": args.group, "auto.offset.reset": "earliest",
                         "enable.auto.commit": False})
    consumer.subscribe([topic])
    want, got = args.keys * args.per_key, 0
    deadline = time.monotonic() + args.timeout
    while got < want and time.monotonic() < deadline:
        msg = consumer.poll(0.5)
        if msg is None:
            continue
        if msg.error():
            common.fail(f"group {args.group}: consume: {msg.error().name()}: {msg.error().str()}")
        common.emit(msg.partition(), msg.key().decode(), msg.value().decode())
        got += 1
    if got < want:
        common.fail(f"group {args.group}: consumed {got} of {want} records in {args.timeout:g}s")
    try:
        consumer.commit(asynchronous=False)
    except KafkaException as e:
        common.fail(f"group {args.group}: commit (OffsetCommit): {e}")
    consumer.close()


# ---- kafka-python ----

class RefusalLogHandler(logging.Handler):
    """Ends the program at a failed SASL authentication, which kafka-python reports only in its
    log (its API then waits for metadata until the timeout)."""

    def emit(self, record):
        message = record.getMessage()
        if "SaslAuthenticationFailedError" in message:
            print(f"error: {message}", file=sys.stderr, flush=True)
            os._exit(1)


def kafka_python_config(args):
    return {"bootstrap_servers": args.bootstrap.split(","), "security_protocol": "SASL_SSL",
            "sasl_mechanism": args.mechanism, "sasl_plain_username": args.user,
            "sasl_plain_password": args.password, "ssl_cafile": args.ca,
            "request_timeout_ms": int(args.timeout * 1000)}


def kafka_python_use(args):
    topic = args.topic[0]
    cfg = kafka_python_config(args)
    logging.getLogger("kafka").addHandler(RefusalLogHandler(logging.ERROR))
    producer = None
    try:
        producer = KafkaProducer(**cfg, acks="all", linger_ms=5, max_block_ms=int(args.timeout * 1000),
                                 key_serializer=str.encode, value_serializer=str.encode)
        records = list(common.plan(args.keys, args.per_key))
        # The first record alone: a refused one fails at once (each send waits for metadata).
        producer.send(topic, key=records[0][0], value=records[0][1]).get(timeout=args.timeout)
        futures = [producer.send(topic, key=k, value=v) for k, v in records[1:]]
        producer.flush(timeout=args.timeout)
        for f in futures:
            f.get(timeout=args.timeout)
        producer.close()
    except Exception as e:  # kafka-python raises many unrelated error types
        if producer is not None:
            producer.close(timeout=0)  # else its exit waits for the unsent records
        common.fail(f"produce (Produce): {e!r}")

    want, got = args.keys * args.per_key, 0
    try:
        consumer = KafkaConsumer(topic, **cfg, group_id=args.group, enable_auto_commit=False,
                                 auto_offset_reset="earliest")
        deadline = time.monotonic() + args.timeout
        while got < want and time.monotonic() < deadline:
            batches = consumer.poll(timeout_ms=500)
            for tp, records in sorted(batches.items(), key=lambda kv: kv[0].partition):
                for r in records:
                    common.emit(tp.partition, r.key.decode(), r.value.decode())
                    got += 1
        if got < want:
            common.fail(f"group {args.group}: consumed {got} of {want} records in {args.timeout:g}s")
        consumer.commit()
        consumer.close()
    except Exception as e:
        common.fail(f"group {args.group}: consume (FindCoordinator/JoinGroup/SyncGroup/Fetch/OffsetCommit): "
                    f"{e!r} after {got} records")


def main():
    args = parse_args()
    if args.command == "create":
        confluent_create(args)
    elif args.client == "confluent-kafka":
        confluent_use(args)
    else:
        kafka_python_use(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
