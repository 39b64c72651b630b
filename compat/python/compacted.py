#!/usr/bin/env python3
"""Reads a compacted topic from the beginning with kafka-python and checks it.

The topic holds the compat plan's records (key-K, values key-K:0 .. key-K:PER_KEY-1, in
order), compacted, and one marker record "end-P" per partition written after them. The
reader assigns every partition, seeks to the beginning (no consumer group) and reads until
its position reaches the end offset of every partition (ListOffsets), across the gaps
compaction left. It checks that each key-K appears exactly once, with its latest value
key-K:PER_KEY-1, and each marker once; the note gives the records read and the offsets
they came from. Usage: compacted.py --bootstrap B --topic T [--partitions 3 --keys 10
--per-key 30 --timeout 20]
"""

import time

from kafka import KafkaConsumer, TopicPartition

import common


def main():
    args = common.parse_args("read a compacted topic with kafka-python")
    try:
        consumer = KafkaConsumer(bootstrap_servers=[args.bootstrap], client_id="compat-compacted",
                                 group_id=None, enable_auto_commit=False, auto_offset_reset="earliest")
        tps = [TopicPartition(args.topic, p) for p in range(args.partitions)]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        ends = consumer.end_offsets(tps)
    except Exception as e:  # kafka-python raises many unrelated error types
        common.fail(f"connect consumer (Metadata/ListOffsets): {e!r}")

    records = []
    deadline = time.monotonic() + args.timeout
    while any(consumer.position(tp) < ends[tp] for tp in tps):
        if time.monotonic() > deadline:
            left = {tp.partition: (consumer.position(tp), ends[tp]) for tp in tps}
            common.fail(f"read {len(records)} records; (position, end) per partition {left} after {args.timeout}s")
        try:
            batches = consumer.poll(timeout_ms=500)
        except Exception as e:
            common.fail(f"consume (Fetch): {e!r}")
        for tp, recs in batches.items():
            for r in recs:
                records.append((tp.partition, r.offset, r.key.decode() if r.key else None,
                                r.value.decode() if r.value is not None else None))
    consumer.close()

    seen = {}
    for partition, offset, key, value in records:
        if key in seen:
            common.fail(f"key {key} read twice after compaction: {seen[key]} and {(partition, offset, value)}")
        seen[key] = (partition, offset, value)
    want = {f"key-{k}": f"key-{k}:{args.per_key - 1}" for k in range(args.keys)}
    want.update({f"end-{p}": "end" for p in range(args.partitions)})
    problems = [f"{k}: {seen[k][2] if k in seen else 'missing'}, want {v}" for k, v in want.items()
                if seen.get(k, (0, 0, None))[2] != v]
    problems += [f"unexpected key {k}" for k in seen if k not in want]
    if problems:
        common.fail("after compaction: " + "; ".join(problems[:5]))
    common.note(f"kafka-python read {len(records)} of the {sum(ends.values())} records written: "
                f"the latest value of each of the {args.keys} keys and the {args.partitions} markers")


if __name__ == "__main__":
    main()
