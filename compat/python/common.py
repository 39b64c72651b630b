"""Shared pieces of the Python compat clients: arguments and the record plan.

Every compat client produces the same records: for seq in 0..per_key-1, for each
of `keys` keys, key "key-K" with value "key-K:SEQ". It then consumes the topic
from the beginning and prints "PARTITION<TAB>KEY<TAB>VALUE" lines on stdout for
verify.py. Diagnostics go to stderr; a fatal problem ends with "error: ..." as
the last stderr line and exit status 1. A stderr line "note: ..." is shown by
compat/run.sh under the check's PASS/FAIL line.

With --group G a client reads the topic as a member of consumer group G
instead of from assigned partitions, commits what it read, and then starts
one more member of G, which must find the committed offsets and read nothing.
"""

import argparse
import sys


def parse_args(description, extra=None):
    """Parses the common arguments; extra(parser), when given, adds a client's own."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--bootstrap", required=True, help="host:port of a broker")
    ap.add_argument("--topic", required=True)
    ap.add_argument("--partitions", type=int, default=3)
    ap.add_argument("--keys", type=int, default=10)
    ap.add_argument("--per-key", type=int, default=30)
    ap.add_argument("--timeout", type=float, default=30.0,
                    help="seconds to wait for each phase (create, produce, consume)")
    ap.add_argument("--group", help="consume as a member of this consumer group and commit")
    if extra is not None:
        extra(ap)
    return ap.parse_args()


def plan(keys, per_key):
    """Yields (key, value) as str in production order."""
    for seq in range(per_key):
        for k in range(keys):
            key = f"key-{k}"
            yield key, f"{key}:{seq}"


def emit(partition, key, value):
    sys.stdout.write(f"{partition}\t{key}\t{value}\n")


def note(message):
    print(f"note: {message}", file=sys.stderr)


def fail(message):
    sys.stdout.flush()
    print(f"error: {message}", file=sys.stderr)
    sys.exit(1)
