#!/usr/bin/env python3
"""Compat check with kafka-python: create a topic, produce keyed records, read them back.

Uses kafka-python's API version auto-detection (it sends ApiVersions) and reads
with assigned partitions, so no consumer group is involved.
"""

import sys
import time

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic

import common


def main():
    args = common.parse_args(__doc__.splitlines()[0])
    servers = [args.bootstrap]

    try:
        admin = KafkaAdminClient(bootstrap_servers=servers, client_id="compat-kafka-python",
                                 request_timeout_ms=int(args.timeout * 1000))
        admin.create_topics([NewTopic(args.topic, args.partitions, 1)],
                            timeout_ms=int(args.timeout * 1000))
        admin.close()
    except Exception as e:  # kafka-python raises many unrelated error types
        common.fail(f"create topic (CreateTopics): {e!r}")

    try:
        producer = KafkaProducer(bootstrap_servers=servers, client_id="compat-kafka-python",
                                 acks="all", linger_ms=5,
                                 key_serializer=str.encode, value_serializer=str.encode)
    except Exception as e:
        common.fail(f"connect producer (ApiVersions/Metadata): {e!r}")

    deadline = time.monotonic() + args.timeout
    while True:
        parts = producer.partitions_for(args.topic) or set()
        if len(parts) == args.partitions:
            break
        if time.monotonic() > deadline:
            common.fail(f"metadata shows partitions {sorted(parts)}, want {args.partitions}")
        time.sleep(0.1)

    futures = [producer.send(args.topic, key=k, value=v) for k, v in common.plan(args.keys, args.per_key)]
    producer.flush(timeout=args.timeout)
    for f in futures:
        try:
            f.get(timeout=args.timeout)
        except Exception as e:
            common.fail(f"produce (Produce): {e!r}")
    producer.close()

    try:
        consumer = KafkaConsumer(bootstrap_servers=servers, client_id="compat-kafka-python",
                                 group_id=None, enable_auto_commit=False,
                                 auto_offset_reset="earliest")
        tps = [TopicPartition(args.topic, p) for p in range(args.partitions)]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
    except Exception as e:
        common.fail(f"connect consumer: {e!r}")

    want = args.keys * args.per_key
    got = 0
    deadline = time.monotonic() + args.timeout
    while got < want and time.monotonic() < deadline:
        try:
            batches = consumer.poll(timeout_ms=500)
        except Exception as e:
            common.fail(f"consume (ListOffsets/Fetch): {e!r}")
        for tp, records in sorted(batches.items(), key=lambda kv: kv[0].partition):
            for r in records:
                common.emit(tp.partition, r.key.decode(), r.value.decode())
                got += 1
    consumer.close()
    if got < want:
        print(f"consumed {got} of {want} records before the timeout", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
