#!/usr/bin/env python3
"""Compat check with confluent-kafka (librdkafka): create a topic, produce keyed records, read them back.

The producer runs with librdkafka's defaults (idempotence off, acks=all). The
consumer assigns every partition at the beginning and commits nothing; librdkafka
requires a group.id, but with assign() and explicit offsets no group is joined.
Reading ends when every record has arrived and every partition has reported its
end (enable.partition.eof: a Fetch answered without records at the high
watermark), as an application waiting for "caught up" would.
"""

import sys
import time

from confluent_kafka import (OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Producer,
                             TopicPartition)
from confluent_kafka.admin import AdminClient, NewTopic

import common


def main():
    args = common.parse_args(__doc__.splitlines()[0])
    base = {"bootstrap.servers": args.bootstrap, "client.id": "compat-confluent-kafka"}

    admin = AdminClient(base)
    futures = admin.create_topics([NewTopic(args.topic, num_partitions=args.partitions,
                                            replication_factor=1)],
                                  request_timeout=args.timeout, operation_timeout=args.timeout)
    try:
        futures[args.topic].result(timeout=args.timeout)
    except Exception as e:
        common.fail(f"create topic (CreateTopics): {e}")

    deadline = time.monotonic() + args.timeout
    while True:
        try:
            md = admin.list_topics(topic=args.topic, timeout=5)
            t = md.topics.get(args.topic)
            if t is not None and t.error is None and len(t.partitions) == args.partitions:
                break
            state = f"error {t.error}" if t is not None and t.error else \
                f"{len(t.partitions) if t else 0} partitions"
        except KafkaException as e:
            state = str(e)
        if time.monotonic() > deadline:
            common.fail(f"metadata for the new topic: {state}")
        time.sleep(0.1)

    errors = []

    def delivered(err, msg):
        if err is not None:
            errors.append(err)

    producer = Producer({**base, "linger.ms": 5, "acks": "all"})
    for key, value in common.plan(args.keys, args.per_key):
        producer.produce(args.topic, key=key, value=value, on_delivery=delivered)
        producer.poll(0)
    left = producer.flush(args.timeout)
    if errors:
        common.fail(f"produce (Produce): {errors[0]}")
    if left:
        common.fail(f"produce (Produce): {left} records not delivered within {args.timeout}s")

    consumer = Consumer({**base, "group.id": "compat-confluent-unused",
                         "enable.auto.commit": False, "auto.offset.reset": "earliest",
                         "enable.partition.eof": True})
    consumer.assign([TopicPartition(args.topic, p, OFFSET_BEGINNING) for p in range(args.partitions)])

    want = args.keys * args.per_key
    got = 0
    at_end = set()
    deadline = time.monotonic() + args.timeout
    while (got < want or len(at_end) < args.partitions) and time.monotonic() < deadline:
        msgs = consumer.consume(num_messages=500, timeout=0.5)
        for m in msgs:
            if m.error():
                if m.error().code() == KafkaError._PARTITION_EOF:
                    at_end.add(m.partition())
                    continue
                common.fail(f"consume (ListOffsets/Fetch): {m.error()}")
            at_end.discard(m.partition())
            common.emit(m.partition(), m.key().decode(), m.value().decode())
            got += 1
    consumer.close()
    if got < want:
        print(f"consumed {got} of {want} records before the timeout", file=sys.stderr)
    elif len(at_end) < args.partitions:
        missing = sorted(set(range(args.partitions)) - at_end)
        common.fail(f"consume (Fetch): read all {got} records, but partitions {missing} never "
                    f"reported their end (a Fetch without records at the high watermark) "
                    f"in {args.timeout}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
