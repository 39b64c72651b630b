// Reassign: the Java admin client's alterPartitionReassignments and
// listPartitionReassignments (KIP-455), for compat/run.sh (run from source:
// java -cp "kafka-jars/*" Reassign.java).
//
// Arguments: bootstrap topic partition replicas (comma-separated broker ids).
// It asks for topic-partition to move to the replicas (which kafka-reassign-partitions
// --execute cannot do when one of them is not running: it checks the ids against
// describeCluster), then lists the reassignments in progress and prints the partition's
// replicas, adding and removing replicas.
// Prints "OK replicas=[..] adding=[..] removing=[..]" and exits 0, or "FAIL: ..." and exits 1.
import java.util.*;
import org.apache.kafka.clients.admin.*;
import org.apache.kafka.common.TopicPartition;

public class Reassign {
    public static void main(String[] args) throws Exception {
        Properties p = new Properties();
        p.put("bootstrap.servers", args[0]);
        TopicPartition tp = new TopicPartition(args[1], Integer.parseInt(args[2]));
        List<Integer> replicas = new ArrayList<>();
        for (String id : args[3].split(",")) {
            replicas.add(Integer.parseInt(id.trim()));
        }
        try (Admin admin = Admin.create(p)) {
            admin.alterPartitionReassignments(Map.of(tp, Optional.of(new NewPartitionReassignment(replicas)))).all().get();
            PartitionReassignment r = admin.listPartitionReassignments(Set.of(tp)).reassignments().get().get(tp);
            if (r == null) {
                System.out.println("FAIL: " + tp + " is not listed as being reassigned");
                System.exit(1);
            }
            System.out.println("OK replicas=" + r.replicas() + " adding=" + r.addingReplicas() + " removing=" + r.removingReplicas());
        } catch (Exception e) {
            System.out.println("FAIL: " + e);
            System.exit(1);
        }
    }
}
