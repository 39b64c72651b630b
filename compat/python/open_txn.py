#!/usr/bin/env python3
"""Leaves a transaction open, for the kafka-transactions check of compat/run.sh.

Usage: open_txn.py BOOTSTRAP TOPIC TRANSACTIONAL_ID SECONDS

A confluent-kafka (librdkafka) transactional producer initializes, begins a transaction,
writes one record to partition 0 of TOPIC and flushes it, prints "OPEN <offset>" (the
record's offset: the transaction's first offset on the partition), then holds the
transaction open for SECONDS without ending it and exits.
"""

import sys
import time

from confluent_kafka import Producer


def main():
    bootstrap, topic, txn_id, seconds = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
    p = Producer({"bootstrap.servers": bootstrap, "transactional.id": txn_id,
                  "transaction.timeout.ms": 120000})
    p.init_transactions(30)
    p.begin_transaction()
    offsets = []

    def delivered(err, msg):
        if err is not None:
            print(f"error: delivery failed: {err}", file=sys.stderr)
        else:
            offsets.append(msg.offset())

    p.produce(topic, value=b"open", partition=0, on_delivery=delivered)
    if p.flush(30) != 0 or not offsets:
        print("error: the transactional record was not delivered", file=sys.stderr)
        sys.exit(1)
    print(f"OPEN {offsets[0]}", flush=True)
    time.sleep(seconds)


if __name__ == "__main__":
    main()
