#!/usr/bin/env python3
"""Compat check of transactions with confluent-kafka (librdkafka): a consume-transform-produce
step with its offsets in the transaction, a committed and an aborted transaction.

1. The input topic (--topic + "-in") gets --records plain records.
2. A consumer of group --group reads them all (no commit of its own); a transactional
   producer (transactional.id --txn-id) copies each to the output topic (--topic + "-out")
   as "copy:<value>" and sends the consumer's positions with send_offsets_to_transaction
   (TxnOffsetCommit through the group coordinator), then commits (EndTxn, WriteTxnMarkers).
3. A second transaction produces --records "aborted:<n>" records and aborts.
4. A read_committed consumer of the output topic must read exactly the copies (none of the
   aborted records), a read_uncommitted one the copies and the aborted records (so they
   were written, and hidden by their ABORT markers), and the group's committed offsets
   must equal the input's end offsets.

Prints nothing on stdout; "note: ..." lines on stderr; exits 1 with "error: ..." on failure.
"""

import time

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

import common


def extra(ap):
    ap.add_argument("--records", type=int, default=100)
    ap.add_argument("--txn-id", required=True)


def create(admin, topic, partitions, timeout):
    fs = admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)],
                             request_timeout=timeout, operation_timeout=timeout)
    try:
        fs[topic].result(timeout=timeout)
    except Exception as e:
        common.fail(f"create topic {topic} (CreateTopics): {e}")


def read_all(base, topic, partitions, isolation, want, timeout):
    """Reads topic from the start with assign() until every partition reports its end."""
    c = Consumer({**base, "group.id": "compat-txn-reader", "enable.auto.commit": False,
                  "isolation.level": isolation, "enable.partition.eof": True})
    c.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    values, eof = [], set()
    deadline = time.monotonic() + timeout
    while len(eof) < partitions or len(values) < want:
        if time.monotonic() > deadline:
            common.fail(f"{isolation} read of {topic}: {len(values)} records, {len(eof)} partitions at their end "
                        f"after {timeout}s (want {want})")
        m = c.poll(0.5)
        if m is None:
            continue
        if m.error():
            if m.error().code() == -191:  # _PARTITION_EOF
                eof.add(m.partition())
                continue
            common.fail(f"{isolation} read of {topic}: {m.error()}")
        values.append(m.value().decode())
    c.close()
    return values


def main():
    args = common.parse_args(__doc__, extra)
    base = {"bootstrap.servers": args.bootstrap}
    src, dst = args.topic + "-in", args.topic + "-out"
    admin = AdminClient(base)
    create(admin, src, args.partitions, args.timeout)
    create(admin, dst, args.partitions, args.timeout)

    p = Producer(base)
    for i in range(args.records):
        p.produce(src, key=f"k{i}", value=f"v{i}")
    if p.flush(args.timeout) != 0:
        common.fail("producing the input records did not finish")

    consumer = Consumer({**base, "group.id": args.group, "enable.auto.commit": False,
                         "auto.offset.reset": "earliest", "isolation.level": "read_committed"})
    consumer.subscribe([src])
    tp = Producer({**base, "transactional.id": args.txn_id, "transaction.timeout.ms": 60000})
    try:
        tp.init_transactions(args.timeout)
        tp.begin_transaction()
        read = 0
        deadline = time.monotonic() + args.timeout
        while read < args.records:
            if time.monotonic() > deadline:
                common.fail(f"the group consumer read {read} of {args.records} input records in {args.timeout}s")
            m = consumer.poll(0.5)
            if m is None:
                continue
            if m.error():
                common.fail(f"group consumer: {m.error()}")
            tp.produce(dst, key=m.key(), value=b"copy:" + m.value())
            read += 1
        positions = consumer.position(consumer.assignment())
        tp.send_offsets_to_transaction(positions, consumer.consumer_group_metadata(), args.timeout)
        tp.commit_transaction(args.timeout)
        common.note(f"transaction 1: {read} records copied and the group's offsets sent, committed")

        tp.begin_transaction()
        for i in range(args.records):
            tp.produce(dst, key=f"a{i}", value=f"aborted:{i}")
        tp.flush(args.timeout)
        tp.abort_transaction(args.timeout)
        common.note(f"transaction 2: {args.records} records, aborted")
    except KafkaException as e:
        common.fail(f"transactional producer: {e}")
    consumer.close()

    committed = read_all(base, dst, args.partitions, "read_committed", args.records, args.timeout)
    want = sorted(f"copy:v{i}" for i in range(args.records))
    if sorted(committed) != want:
        aborted = [v for v in committed if v.startswith("aborted:")]
        common.fail(f"read_committed read {len(committed)} records ({len(aborted)} aborted ones), "
                    f"want exactly the {args.records} copies")
    everything = read_all(base, dst, args.partitions, "read_uncommitted", 2 * args.records, args.timeout)
    if len(everything) != 2 * args.records:
        common.fail(f"read_uncommitted read {len(everything)} records, want {2 * args.records}")

    c = Consumer({**base, "group.id": args.group, "enable.auto.commit": False})
    parts = [TopicPartition(src, p) for p in range(args.partitions)]
    got = {t.partition: t.offset for t in c.committed(parts, timeout=args.timeout)}
    ends = {p: c.get_watermark_offsets(TopicPartition(src, p), timeout=args.timeout)[1] for p in range(args.partitions)}
    c.close()
    if got != ends:
        common.fail(f"group {args.group} committed {got}, want the input's end offsets {ends}")
    common.note(f"read_committed: the {args.records} copies only; read_uncommitted: {len(everything)}; "
                f"committed offsets = end offsets {ends}")


if __name__ == "__main__":
    main()
