#!/usr/bin/env python3
"""Compat check with confluent-kafka (librdkafka): create a topic, produce keyed records, read them back.

The producer runs with librdkafka's defaults (idempotence off, acks=all). Without
--group the consumer assigns every partition at the beginning and commits
nothing; librdkafka requires a group.id, but with assign() and explicit offsets no
group is joined. Reading ends when every record has arrived and every partition
has reported its end (enable.partition.eof: a Fetch answered without records at
the high watermark), as an application waiting for "caught up" would.

With --group G the topic is read by --members consumers subscribed as members of
the consumer group G: a classic group (FindCoordinator, JoinGroup, SyncGroup,
Heartbeat, Fetch), or with --group-protocol consumer a KIP-848 group
(ConsumerGroupHeartbeat; the broker assigns the partitions), or with a list such as
--group-protocol consumer,classic one protocol per member: a mixed group, where the
classic members join the KIP-848 group (Kafka 4.x) and the group goes back to a
classic group when the last KIP-848 member leaves. With one member the
records are produced first; with several, the members first wait until the group
has shared out the partitions (each member some, none twice), then the records
are produced, and each member must read some of them, only from its own
partitions, with no rebalance on the way. The members commit (OffsetCommit), the
committed offsets must equal the end offsets (OffsetFetch), and they leave
the group. A new member of G started afterwards must read nothing and report
the end of every partition.
"""

import sys
import time

from confluent_kafka import (OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Producer,
                             TopicPartition)
from confluent_kafka.admin import AdminClient, NewTopic

import common


def create_topic(args, base):
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


def produce(args, base):
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


def consume_assigned(args, base):
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


def protocols(args):
    return args.group_protocol.split(",")


def group_member(args, base, name, protocol, eof=False):
    c = Consumer({**base, "client.id": f"compat-confluent-kafka-{name}", "group.id": args.group,
                  "group.protocol": protocol,
                  "enable.auto.commit": False, "auto.offset.reset": "earliest",
                  "enable.partition.eof": eof})
    c.subscribe([args.topic])
    return c


def assigned(consumer):
    return frozenset(tp.partition for tp in consumer.assignment())


def joining(args):
    """The requests by which a member gets its partitions, for error reports."""
    ps = set(protocols(args))
    if ps == {"consumer"}:
        return "ConsumerGroupHeartbeat"
    if ps == {"classic"}:
        return "JoinGroup/SyncGroup"
    return "a mixed group: ConsumerGroupHeartbeat and JoinGroup/SyncGroup"


def poll(consumer, who, got, timeout=0.2):
    """One consume() call: emits the records; returns the partition of each record and
    the partitions that reported their end."""
    parts, ends = [], []
    try:
        msgs = consumer.consume(num_messages=500, timeout=timeout)
    except KafkaException as e:
        common.fail(f"{who}: consume: {e} after {got} records")
    for m in msgs:
        if m.error():
            if m.error().code() == KafkaError._PARTITION_EOF:
                ends.append(m.partition())
                continue
            if m.error().code() == KafkaError.REBALANCE_IN_PROGRESS:
                # librdkafka reports a JoinGroup answered REBALANCE_IN_PROGRESS and rejoins by
                # itself: Kafka (and Samsa) answer a waiting JoinGroup so when a KIP-848 member
                # upgrades the classic group the classic member was joining.
                common.note(f"{who}: {m.error().str()} (librdkafka rejoins)")
                continue
            common.fail(f"{who}: consume (group membership/OffsetFetch/Fetch): {m.error()} "
                        f"after {got} records")
        common.emit(m.partition(), m.key().decode(), m.value().decode())
        parts.append(m.partition())
    return parts, ends


def show(parts):
    return ", ".join(str(p) for p in sorted(parts)) or "none"


def consume_group(args, base):
    group, n, everything = args.group, args.members, frozenset(range(args.partitions))
    want = args.keys * args.per_key
    protos = [protocols(args)[i % len(protocols(args))] for i in range(n)]
    names = [f"member {i + 1} ({protos[i]})" if len(set(protos)) > 1 else f"member {i + 1}" for i in range(n)]
    members = [group_member(args, base, f"m{i + 1}", protos[i]) for i in range(n)]
    got = [0] * n

    def assignments():
        return [assigned(c) for c in members]

    def shared_out(parts):
        return all(parts) and sum(len(p) for p in parts) == len(everything) and \
            frozenset().union(*parts) == everything

    if n > 1:
        # Wait until the group has settled with every member owning some partitions.
        deadline = time.monotonic() + args.timeout
        while not shared_out(assignments()):
            if time.monotonic() > deadline:
                owned = "; ".join(f"{w}: {show(p)}" for w, p in zip(names, assignments()))
                common.fail(f"group {group}: {n} members did not share out the {len(everything)} "
                            f"partitions within {args.timeout:g}s ({joining(args)}): {owned}")
            for i, c in enumerate(members):
                got[i] += len(poll(c, f"group {group} {names[i]}", got[i], timeout=0.1)[0])
        if any(got):
            common.fail(f"group {group}: members read {sum(got)} records before any was produced")
        produce(args, base)

    settled = assignments() if n > 1 else None
    deadline = time.monotonic() + args.timeout
    while sum(got) < want and time.monotonic() < deadline:
        for i, c in enumerate(members):
            parts, _ = poll(c, f"group {group} {names[i]}", got[i])
            got[i] += len(parts)
            if settled is not None:
                now = assignments()
                if now != settled:
                    common.fail(f"group {group}: unexpected rebalance after {sum(got)} records: "
                                f"{names[i]} moved from partitions {show(settled[i])} to {show(now[i])}")
                stray = set(parts) - settled[i]
                if stray:
                    common.fail(f"group {group}: {names[i]} read from partitions {show(stray)}, "
                                f"which are not assigned to it")
    if sum(got) < want:
        owned = "; ".join(f"{w}: partitions {show(p)}" for w, p in zip(names, assignments()))
        common.fail(f"group {group}: consumed {sum(got)} of {want} records in {args.timeout:g}s "
                    f"({owned})")
    if n == 1 and assigned(members[0]) != everything:
        common.fail(f"group {group}: the only member is assigned partitions "
                    f"{show(assigned(members[0]))}, want all {args.partitions}")
    if n > 1:
        idle = [w for w, g in zip(names, got) if g == 0]
        if idle:
            common.fail(f"group {group}: {', '.join(idle)} read no records "
                        f"(partitions {show(settled[names.index(idle[0])])} hold none of the keys?)")
        common.note("; ".join(f"{w}: partitions {show(p)}, {g} records"
                              for w, p, g in zip(names, settled, got)))

    # Commit what every member read, then compare the committed offsets with the ends.
    want_offsets, committed = {}, {}
    for i, c in enumerate(members):
        who = f"group {group} {names[i]}"
        try:
            c.commit(asynchronous=False)
        except KafkaException as e:
            common.fail(f"{who}: commit (OffsetCommit): {e}")
        tps = [TopicPartition(args.topic, p) for p in sorted(assigned(c))]
        try:
            for tp in c.committed(tps, timeout=args.timeout):
                committed[tp.partition] = tp.offset
            for tp in tps:
                want_offsets[tp.partition] = c.get_watermark_offsets(tp, timeout=args.timeout)[1]
        except KafkaException as e:
            common.fail(f"{who}: committed offsets (OffsetFetch/ListOffsets): {e}")
    if committed != want_offsets:
        common.fail(f"group {group}: committed offsets {committed} after reading everything, "
                    f"want the end offsets {want_offsets} (OffsetCommit/OffsetFetch)")
    for i, c in enumerate(members):
        try:
            c.close()  # leaves the group
        except KafkaException as e:
            common.fail(f"group {group} {names[i]}: close (leaving the group): {e}")

    # A new member of the group starts where the others committed: at the end.
    who = f"group {group}: a new member started after the commit"
    late = group_member(args, base, "late", protos[-1], eof=True)
    again, at_end = 0, set()
    deadline = time.monotonic() + args.timeout
    while len(at_end) < args.partitions and time.monotonic() < deadline:
        parts, ends = poll(late, who, again, timeout=0.5)
        again += len(parts)
        at_end = (at_end - set(parts)) | set(ends)
    parts = assigned(late)
    late.close()
    if again:
        common.fail(f"{who} read {again} records again, want none: it did not start at the "
                    f"committed offsets {want_offsets} (OffsetFetch)")
    if len(at_end) < args.partitions:
        common.fail(f"{who} is assigned partitions {show(parts)}; partitions "
                    f"{show(everything - at_end)} did not report their end within {args.timeout:g}s")


def own_args(ap):
    ap.add_argument("--members", type=int, default=1, help="with --group: consumers in the group")
    ap.add_argument("--group-protocol", default="classic",
                    help="with --group: librdkafka's group.protocol (consumer: KIP-848), or a "
                         "comma-separated list, one per member in turn (a mixed group)")
    ap.add_argument("--config", action="append", default=[], metavar="KEY=VALUE",
                    help="a librdkafka setting for every client (security.protocol, sasl.*, ssl.*)")


def main():
    args = common.parse_args(__doc__.splitlines()[0], extra=own_args)
    base = {"bootstrap.servers": args.bootstrap, "client.id": "compat-confluent-kafka"}
    for kv in args.config:
        k, _, v = kv.partition("=")
        base[k] = v
    create_topic(args, base)
    if args.group:
        if args.members == 1:
            produce(args, base)
        consume_group(args, base)
    else:
        produce(args, base)
        consume_assigned(args, base)
    return 0


if __name__ == "__main__":
    sys.exit(main())
