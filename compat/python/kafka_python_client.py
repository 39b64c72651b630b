#!/usr/bin/env python3
"""Compat check with kafka-python: create a topic, produce keyed records, read them back.

Uses kafka-python's API version auto-detection (it sends ApiVersions). Without
--group it reads with assigned partitions, so no consumer group is involved.

With --group G it subscribes as a member of the classic consumer group G
(FindCoordinator, JoinGroup, SyncGroup, Heartbeat, Fetch), reads every record,
commits (OffsetCommit) and checks the committed offsets (OffsetFetch) against the
end offsets, then leaves (LeaveGroup). A second member of G started afterwards
must be assigned every partition at the committed offsets and read nothing.

--config NAME=VALUE passes a kafka-python setting to every client (security_protocol,
sasl_mechanism, sasl_plain_username, ssl_cafile, ssl_certfile, ...; ssl_maximum_version=TLSv1_2
limits the TLS version, see tls_context). With
--expect-auth-failure the client only opens a connection, and succeeds when the broker
refuses it: it prints the names of the errors seen (e.g. SaslAuthenticationFailedError), one a
line, on stdout.
"""

import logging
import re
import socket
import ssl
import sys
import time

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.conn import BrokerConnection

import common

CLIENT_ID = "compat-kafka-python"


def create_and_produce(args, servers):
    try:
        admin = KafkaAdminClient(bootstrap_servers=servers, client_id=CLIENT_ID, **args.settings,
                                 request_timeout_ms=int(args.timeout * 1000))
        admin.create_topics([NewTopic(args.topic, args.partitions, 1)],
                            timeout_ms=int(args.timeout * 1000))
        admin.close()
    except Exception as e:  # kafka-python raises many unrelated error types
        common.fail(f"create topic (CreateTopics): {e!r}")

    try:
        producer = KafkaProducer(bootstrap_servers=servers, client_id=CLIENT_ID, **args.settings,
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


def consume_assigned(args, servers):
    try:
        consumer = KafkaConsumer(bootstrap_servers=servers, client_id=CLIENT_ID, **args.settings,
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


def group_member(args, servers):
    try:
        return KafkaConsumer(args.topic, bootstrap_servers=servers, client_id=CLIENT_ID, **args.settings,
                             group_id=args.group, enable_auto_commit=False,
                             auto_offset_reset="earliest")
    except Exception as e:
        common.fail(f"group {args.group}: connect consumer (ApiVersions/Metadata): {e!r}")


def assigned(consumer):
    return sorted(tp.partition for tp in consumer.assignment())


def consume_group(args, servers):
    group = args.group
    want = args.keys * args.per_key
    tps = [TopicPartition(args.topic, p) for p in range(args.partitions)]

    consumer = group_member(args, servers)
    got = 0
    deadline = time.monotonic() + args.timeout
    while got < want and time.monotonic() < deadline:
        try:
            batches = consumer.poll(timeout_ms=500)
        except Exception as e:
            common.fail(f"group {group}: consume (FindCoordinator/JoinGroup/SyncGroup/OffsetFetch/Fetch): "
                        f"{e!r} after {got} records")
        for tp, records in sorted(batches.items(), key=lambda kv: kv[0].partition):
            for r in records:
                common.emit(tp.partition, r.key.decode(), r.value.decode())
                got += 1
    if got < want:
        parts = assigned(consumer)
        why = (f"assigned partitions {parts}" if parts else
               "never assigned a partition (JoinGroup/SyncGroup)")
        common.fail(f"group {group}: consumed {got} of {want} records in {args.timeout:g}s; {why}")
    if assigned(consumer) != list(range(args.partitions)):
        common.fail(f"group {group}: the only member is assigned partitions {assigned(consumer)}, "
                    f"want all {args.partitions}")

    try:
        consumer.commit()
    except Exception as e:
        common.fail(f"group {group}: commit (OffsetCommit): {e!r}")
    try:
        ends = consumer.end_offsets(tps)
        committed = {tp.partition: consumer.committed(tp) for tp in tps}
    except Exception as e:
        common.fail(f"group {group}: committed offsets (OffsetFetch/ListOffsets): {e!r}")
    want_offsets = {tp.partition: ends[tp] for tp in tps}
    if committed != want_offsets:
        common.fail(f"group {group}: committed offsets {committed} after reading everything, "
                    f"want the end offsets {want_offsets} (OffsetCommit/OffsetFetch)")
    try:
        consumer.close()  # LeaveGroup
    except Exception as e:
        common.fail(f"group {group}: close (LeaveGroup): {e!r}")

    # A new member of the group starts where the first one committed: at the end.
    second = group_member(args, servers)
    again = 0
    positions = None
    deadline = time.monotonic() + args.timeout
    while time.monotonic() < deadline:
        try:
            batches = second.poll(timeout_ms=500)
            again += sum(len(records) for records in batches.values())
            if positions is None and len(second.assignment()) == args.partitions:
                positions = {tp.partition: second.position(tp) for tp in tps}
                # One more poll: records it should not have would arrive now.
                deadline = min(deadline, time.monotonic() + 1)
        except Exception as e:
            common.fail(f"second member of group {group} (JoinGroup/SyncGroup/OffsetFetch/Fetch): {e!r}")
    parts = assigned(second)
    second.close()
    if positions is None:
        common.fail(f"second member of group {group}: assigned partitions {parts} within "
                    f"{args.timeout:g}s, want all {args.partitions} (JoinGroup/SyncGroup)")
    if again:
        common.fail(f"second member of group {group} read {again} records again, want none: "
                    f"it did not start at the committed offsets {want_offsets} (OffsetFetch)")
    if positions != want_offsets:
        common.fail(f"second member of group {group} is at offsets {positions}, want the "
                    f"committed offsets {want_offsets} (OffsetFetch)")


def setting(kv):
    """NAME=VALUE as a kafka-python keyword argument: true/false and integers converted."""
    name, _, value = kv.partition("=")
    if value in ("true", "false"):
        return name, value == "true"
    if value.isdigit():
        return name, int(value)
    return name, value


def tls_context(settings):
    """kafka-python has no setting for the TLS version: the pseudo-setting ssl_maximum_version
    (e.g. TLSv1_2) replaces the ssl_cafile/ssl_certfile/ssl_keyfile settings by an ssl_context
    built from them with that maximum version."""
    version = settings.pop("ssl_maximum_version", None)
    if version is None:
        return
    ctx = ssl.create_default_context(cafile=settings.pop("ssl_cafile", None))
    if "ssl_certfile" in settings:
        ctx.load_cert_chain(settings.pop("ssl_certfile"), settings.pop("ssl_keyfile", None))
    ctx.maximum_version = getattr(ssl.TLSVersion, version)
    settings["ssl_context"] = ctx


def own_args(ap):
    ap.add_argument("--config", action="append", default=[], metavar="NAME=VALUE",
                    help="a kafka-python setting for every client (security_protocol, sasl_*, ssl_*)")
    ap.add_argument("--expect-auth-failure", action="store_true",
                    help="only connect; succeed if the broker refuses the client")


class ErrorNames(logging.Handler):
    """Collects the names of the errors kafka-python logs (its connection logs a failed login
    and closes, without raising it to the caller)."""

    def __init__(self):
        super().__init__(logging.ERROR)
        self.names = []

    def emit(self, record):
        for name in re.findall(r"\b([A-Za-z]+Error)\b", record.getMessage()):
            if name not in self.names:
                self.names.append(name)


def expect_auth_failure(args, servers):
    """Opens one connection (ApiVersions, SASL, TLS as configured); it must be refused. Prints
    the names of the errors seen, one a line."""
    errors = ErrorNames()
    logging.getLogger("kafka").addHandler(errors)
    host, _, port = servers[0].rpartition(":")
    conn = BrokerConnection(host, int(port), socket.AF_UNSPEC, client_id=CLIENT_ID, **args.settings)
    try:
        connected = conn.connect_blocking(timeout=args.timeout)
    except Exception as e:
        errors.names.append(type(e).__name__)
        print(f"refused: {e!r}", file=sys.stderr)
        connected = False
    conn.close()
    if connected:
        common.fail("connected; want the login refused")
    print("\n".join(errors.names))
    print(f"refused: {errors.names}", file=sys.stderr)


def main():
    # kafka-python logs why a connection failed (TLS, SASL) without raising it: keep its
    # errors on stderr for the check's logs.
    logging.basicConfig(level=logging.ERROR, stream=sys.stderr)
    args = common.parse_args(__doc__.splitlines()[0], extra=own_args)
    args.settings = dict(setting(kv) for kv in args.config)
    tls_context(args.settings)
    servers = [args.bootstrap]
    if args.expect_auth_failure:
        expect_auth_failure(args, servers)
        return 0
    create_and_produce(args, servers)
    if args.group:
        consume_group(args, servers)
    else:
        consume_assigned(args, servers)
    return 0


if __name__ == "__main__":
    sys.exit(main())
