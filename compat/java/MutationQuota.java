// MutationQuota: the Java admin client against a controller mutation quota (KIP-599), for
// compat/run.sh (run from source: java -cp "kafka-jars/*" MutationQuota.java).
//
// Arguments: bootstrap client-id topic.
// As client-id, whose controller_mutation_rate bucket is below zero, it creates topic with
// retryOnQuotaViolation(false) (as kafka-topics does), which must fail with
// ThrottlingQuotaExceededException carrying a throttle time, then with the admin client's
// default options, which retry THROTTLING_QUOTA_EXCEEDED after the throttle: created.
// Prints "OK ..." and exits 0, or prints "FAIL: ..." and exits 1.
import java.util.*;
import java.util.concurrent.ExecutionException;
import org.apache.kafka.clients.admin.*;
import org.apache.kafka.common.errors.ThrottlingQuotaExceededException;

public class MutationQuota {
    static void fail(String msg) {
        System.out.println("FAIL: " + msg);
        System.exit(1);
    }

    public static void main(String[] args) throws Exception {
        Properties p = new Properties();
        p.put("bootstrap.servers", args[0]);
        p.put("client.id", args[1]);
        List<NewTopic> topic = List.of(new NewTopic(args[2], 1, (short) 1));
        try (Admin admin = Admin.create(p)) {
            int throttle = 0;
            try {
                admin.createTopics(topic, new CreateTopicsOptions().retryOnQuotaViolation(false)).all().get();
                fail("creating " + args[2] + " was not refused");
            } catch (ExecutionException e) {
                if (!(e.getCause() instanceof ThrottlingQuotaExceededException)) {
                    fail("creating " + args[2] + " without retries: " + e.getCause());
                }
                throttle = ((ThrottlingQuotaExceededException) e.getCause()).throttleTimeMs();
                if (throttle <= 0) {
                    fail("THROTTLING_QUOTA_EXCEEDED without a throttle time");
                }
            }
            try {
                admin.createTopics(topic).all().get();
            } catch (ExecutionException e) {
                fail("creating " + args[2] + " with retries: " + e.getCause());
            }
            System.out.println("OK refused with THROTTLING_QUOTA_EXCEEDED (throttle " + throttle
                + " ms), then created by the admin client's retries");
        }
    }
}
