#!/usr/bin/env python3
"""Creates a topic with confluent-kafka's AdminClient and waits until its leaders are known.

Used by compat/run.sh for clients that cannot create topics themselves (kcat).
Usage: create_topic.py BOOTSTRAP TOPIC [PARTITIONS]
"""

import sys
import time

from confluent_kafka.admin import AdminClient, NewTopic


def main():
    if len(sys.argv) not in (3, 4):
        print(__doc__, file=sys.stderr)
        return 2
    bootstrap, topic = sys.argv[1], sys.argv[2]
    partitions = int(sys.argv[3]) if len(sys.argv) == 4 else 3
    admin = AdminClient({"bootstrap.servers": bootstrap, "client.id": "compat-create-topic"})
    fut = admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)],
                              request_timeout=20, operation_timeout=20)
    try:
        fut[topic].result(timeout=30)
    except Exception as e:
        print(f"error: create topic {topic} (CreateTopics): {e}", file=sys.stderr)
        return 1
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        t = admin.list_topics(topic=topic, timeout=5).topics.get(topic)
        if t is not None and t.error is None and len(t.partitions) == partitions and \
                all(p.leader >= 0 for p in t.partitions.values()):
            return 0
        time.sleep(0.1)
    print(f"error: topic {topic}: metadata never showed {partitions} partitions with leaders",
          file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
