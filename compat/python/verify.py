#!/usr/bin/env python3
"""Checks the records a compat client consumed back (standard library only).

Reads lines "PARTITION<TAB>KEY<TAB>VALUE" from stdin (a "Partition:" prefix on the
first field, as Kafka's console consumer prints it, is accepted) and checks them
against what every compat client produced: --keys keys named key-0..key-{N-1},
--per-key records each, with value "KEY:SEQ" where SEQ counts 0,1,2,... per key.

Checks: the total count, no duplicates, every key's values arrive in increasing
sequence order with no gaps, each value matches its key, and each key stayed in
one partition. Exits 0 and prints nothing when all hold, otherwise prints one
line saying what is wrong and exits 1.
"""

import argparse
import sys


def check(lines, keys, per_key):
    expected = keys * per_key
    records = []
    for n, line in enumerate(lines, 1):
        line = line.rstrip("\r\n")
        if not line:
            continue
        fields = line.split("\t")
        if len(fields) != 3:
            return f"line {n}: want 3 tab-separated fields, got {line!r}"
        part, key, value = fields
        if part.startswith("Partition:"):
            part = part[len("Partition:"):]
        records.append((part, key, value))

    if len(records) != expected:
        return f"consumed {len(records)} records, want {expected}"

    next_seq = {}
    partition_of = {}
    for part, key, value in records:
        vkey, sep, seq_text = value.rpartition(":")
        if not sep or vkey != key:
            return f"value {value!r} does not belong to key {key!r}"
        try:
            seq = int(seq_text)
        except ValueError:
            return f"value {value!r} has no sequence number"
        want = next_seq.get(key, 0)
        if seq != want:
            return f"key {key}: got sequence {seq}, want {want} (out of order, duplicate or lost)"
        next_seq[key] = seq + 1
        first = partition_of.setdefault(key, part)
        if first != part:
            return f"key {key} found in partitions {first} and {part}"

    want_keys = {f"key-{k}" for k in range(keys)}
    if set(next_seq) != want_keys:
        return f"keys {sorted(next_seq)} do not match {sorted(want_keys)}"
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--keys", type=int, default=10)
    ap.add_argument("--per-key", type=int, default=30)
    args = ap.parse_args()
    problem = check(sys.stdin, args.keys, args.per_key)
    if problem:
        print(problem)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
