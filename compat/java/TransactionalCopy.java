// TransactionalCopy: the Java client's consume-transform-produce with offsets in the
// transaction, for compat/run.sh (run from source: java -cp "kafka-jars/*" TransactionalCopy.java).
//
// Arguments: bootstrap in-topic out-topic group transactional-id group-protocol.
// It produces 100 records to in-topic, reads them as a member of group (read_committed), then
// with a transactional producer (initTransactions) copies half of them to out-topic with
// sendOffsetsToTransaction(offsets, consumer.groupMetadata()), flushes them and aborts,
// checks the group has no committed offsets, copies all of them with their offsets and
// commits, checks the committed offsets are the end of every partition of in-topic, and
// reads out-topic with read_committed (the 100 committed copies only) and read_uncommitted
// (the aborted ones too).
// Prints "OK ..." and exits 0, or prints "FAIL: ..." and exits 1.
import java.time.Duration;
import java.util.*;
import org.apache.kafka.clients.admin.*;
import org.apache.kafka.clients.consumer.*;
import org.apache.kafka.clients.producer.*;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.*;

public class TransactionalCopy {
    static final int RECORDS = 100;

    static void fail(String msg) {
        System.out.println("FAIL: " + msg);
        System.exit(1);
    }

    static Properties props(String bootstrap) {
        Properties p = new Properties();
        p.put("bootstrap.servers", bootstrap);
        return p;
    }

    static KafkaConsumer<String, String> consumer(String bootstrap, String group, String protocol, String isolation) {
        Properties p = props(bootstrap);
        if (group != null) {
            p.put("group.id", group);
            p.put("group.protocol", protocol);
        }
        p.put("enable.auto.commit", "false");
        p.put("auto.offset.reset", "earliest");
        p.put("isolation.level", isolation);
        return new KafkaConsumer<>(p, new StringDeserializer(), new StringDeserializer());
    }

    // readAll reads topic from the start (no group) for a few seconds after the last record.
    static List<String> readAll(String bootstrap, String topic, String isolation, int atLeast) {
        List<String> got = new ArrayList<>();
        try (KafkaConsumer<String, String> c = consumer(bootstrap, null, null, isolation)) {
            List<TopicPartition> tps = new ArrayList<>();
            c.partitionsFor(topic).forEach(pi -> tps.add(new TopicPartition(topic, pi.partition())));
            c.assign(tps);
            c.seekToBeginning(tps);
            long deadline = System.currentTimeMillis() + 20000;
            long quietUntil = Long.MAX_VALUE;
            while (System.currentTimeMillis() < Math.min(deadline, quietUntil)) {
                for (ConsumerRecord<String, String> r : c.poll(Duration.ofMillis(200))) {
                    got.add(r.value());
                }
                if (got.size() >= atLeast && quietUntil == Long.MAX_VALUE) {
                    quietUntil = System.currentTimeMillis() + 2000; // then any extra record
                }
            }
        }
        return got;
    }

    static Map<TopicPartition, Long> committed(Admin admin, String group) throws Exception {
        Map<TopicPartition, Long> out = new HashMap<>();
        ListConsumerGroupOffsetsOptions opts = new ListConsumerGroupOffsetsOptions().requireStable(true);
        admin.listConsumerGroupOffsets(group, opts).partitionsToOffsetAndMetadata().get()
            .forEach((tp, om) -> { if (om != null) out.put(tp, om.offset()); });
        return out;
    }

    public static void main(String[] args) throws Exception {
        String bootstrap = args[0], in = args[1], out = args[2], group = args[3], txnId = args[4], protocol = args[5];

        try (KafkaProducer<String, String> p = new KafkaProducer<>(props(bootstrap), new StringSerializer(), new StringSerializer())) {
            for (int i = 0; i < RECORDS; i++) {
                p.send(new ProducerRecord<>(in, "k" + (i % 10), "v" + i));
            }
            p.flush();
        }

        KafkaConsumer<String, String> c = consumer(bootstrap, group, protocol, "read_committed");
        c.subscribe(List.of(in));
        List<ConsumerRecord<String, String>> consumed = new ArrayList<>();
        long deadline = System.currentTimeMillis() + 30000;
        while (consumed.size() < RECORDS && System.currentTimeMillis() < deadline) {
            c.poll(Duration.ofMillis(200)).forEach(consumed::add);
        }
        if (consumed.size() != RECORDS) fail("the group consumer read " + consumed.size() + " of " + RECORDS + " records");

        Properties pp = props(bootstrap);
        pp.put("transactional.id", txnId);
        KafkaProducer<String, String> tp = new KafkaProducer<>(pp, new StringSerializer(), new StringSerializer());
        tp.initTransactions();

        // An aborted transaction with half of the records and their offsets.
        tp.beginTransaction();
        Map<TopicPartition, OffsetAndMetadata> half = new HashMap<>();
        for (ConsumerRecord<String, String> r : consumed.subList(0, RECORDS / 2)) {
            tp.send(new ProducerRecord<>(out, r.key(), "aborted-" + r.value()));
            half.put(new TopicPartition(r.topic(), r.partition()), new OffsetAndMetadata(r.offset() + 1));
        }
        tp.sendOffsetsToTransaction(half, c.groupMetadata());
        tp.flush(); // abortTransaction drops unsent records: these must reach the log first
        tp.abortTransaction();

        Admin admin = Admin.create(props(bootstrap));
        Map<TopicPartition, Long> after = committed(admin, group);
        if (!after.isEmpty()) fail("committed offsets after the aborted transaction: " + after);

        // A committed transaction with every record and the offsets after them.
        tp.beginTransaction();
        Map<TopicPartition, OffsetAndMetadata> all = new HashMap<>();
        for (ConsumerRecord<String, String> r : consumed) {
            tp.send(new ProducerRecord<>(out, r.key(), r.value()));
            all.put(new TopicPartition(r.topic(), r.partition()), new OffsetAndMetadata(r.offset() + 1));
        }
        tp.sendOffsetsToTransaction(all, c.groupMetadata());
        tp.commitTransaction();
        tp.close();

        Map<TopicPartition, Long> want = new HashMap<>();
        all.forEach((t, om) -> want.put(t, om.offset()));
        deadline = System.currentTimeMillis() + 20000;
        Map<TopicPartition, Long> got = Map.of();
        while (System.currentTimeMillis() < deadline) {
            try {
                got = committed(admin, group);
            } catch (Exception e) {
                got = Map.of(); // UNSTABLE_OFFSET_COMMIT until the marker: retried
            }
            if (got.equals(want)) break;
            Thread.sleep(100);
        }
        if (!got.equals(want)) fail("committed offsets " + got + ", want " + want);
        // The consumer sees the committed offsets too.
        Map<TopicPartition, OffsetAndMetadata> seen = c.committed(want.keySet());
        for (TopicPartition t : want.keySet()) {
            if (seen.get(t) == null || seen.get(t).offset() != want.get(t)) fail("consumer.committed " + seen + ", want " + want);
        }
        c.close();
        admin.close();

        List<String> rc = readAll(bootstrap, out, "read_committed", RECORDS);
        long aborted = rc.stream().filter(v -> v.startsWith("aborted-")).count();
        if (rc.size() != RECORDS || aborted != 0) fail("read_committed read " + rc.size() + " records (" + aborted + " aborted), want the " + RECORDS + " committed");
        Set<String> distinct = new HashSet<>(rc);
        if (distinct.size() != RECORDS) fail("read_committed read " + distinct.size() + " distinct values, want " + RECORDS);
        List<String> ru = readAll(bootstrap, out, "read_uncommitted", RECORDS + RECORDS / 2);
        if (ru.size() != RECORDS + RECORDS / 2) fail("read_uncommitted read " + ru.size() + " records, want " + (RECORDS + RECORDS / 2));
        System.out.println("OK " + RECORDS + " records copied in a committed transaction with the " + protocol
            + " group's offsets (" + want.size() + " partitions), " + RECORDS / 2 + " in an aborted one: read_committed "
            + rc.size() + ", read_uncommitted " + ru.size());
    }
}
