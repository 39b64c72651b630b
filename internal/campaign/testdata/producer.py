"""The campaign's librdkafka producer (confluent-kafka): idempotent, acks=all.

Usage: producer.py BOOTSTRAP TOPIC PARTITIONS PRODUCER_ID INTERVAL_S

Sends PRODUCER_ID-SEQ (seq 0, 1, ...) to partition seq % PARTITIONS every INTERVAL_S seconds
until stdin closes, then flushes (at most 30 s) and exits. Every acknowledged record is printed
on stdout as one JSON line {"p": partition, "o": offset, "v": value, "t": unix seconds of the
acknowledgement, "s": the record's create time in unix ms}; failed deliveries are counted on stderr.
"""
import json
import sys
import threading
import time

from confluent_kafka import Producer


def main():
    bootstrap, topic, partitions, pid, interval = sys.argv[1:6]
    partitions, interval = int(partitions), float(interval)
    p = Producer({
        "bootstrap.servers": bootstrap,
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 5,
        "message.timeout.ms": 600000,
        "topic.metadata.refresh.interval.ms": 1000,
    })
    failed = [0]

    def delivered(err, msg):
        if err is not None:
            failed[0] += 1
            print(f"delivery failed: {err}", file=sys.stderr, flush=True)
            return
        print(json.dumps({"p": msg.partition(), "o": msg.offset(), "v": msg.value().decode(),
                          "t": time.time(), "s": msg.timestamp()[1]}), flush=True)

    stop = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
    seq = 0
    while not stop.is_set():
        value = f"{pid}-{seq}"
        while True:
            try:
                p.produce(topic, value.encode(), partition=seq % partitions, on_delivery=delivered)
                break
            except BufferError:
                p.poll(0.1)
        seq += 1
        p.poll(interval)
    left = p.flush(30)
    print(f"sent {seq}, failed {failed[0]}, unflushed {left}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
