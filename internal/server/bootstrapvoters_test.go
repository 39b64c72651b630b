package server

import (
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/samsa-io/samsa/internal/metadata"
)

func TestParseInitialControllers(t *testing.T) {
	dirA, dirB := "K90IZ-0DRNazJ49kCZ1EMQ", "aUARLskQTCW4qCZDtS_cwA"
	a, _ := metadata.ParseUUID(dirA)
	b, _ := metadata.ParseUUID(dirB)
	got, err := ParseInitialControllers(" 0@localhost:8020:" + dirA + ",,1@[::1]:8030:" + dirB + " ")
	want := []InitialController{{0, "localhost", 8020, a}, {1, "::1", 8030, b}}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v %v, want %v", got, err, want)
	}
	if s := got[1].String(); s != "1@[::1]:8030:"+dirB {
		t.Errorf("String() = %s", s)
	}
	// Kafka's DynamicVoter/DynamicVoters messages.
	for _, tc := range []struct{ in, want string }{
		{"", "No voters given."},
		{"0localhost:8020:" + dirA, "No @ found in dynamic voter string."},
		{"@localhost:8020:" + dirA, "Invalid @ at beginning of dynamic voter string."},
		{"x@localhost:8020:" + dirA, "Failed to parse node id in dynamic voter string."},
		{"-1@localhost:8020:" + dirA, "Invalid negative node id -1 in dynamic voter string."},
		{"0@", "No hostname found after node id."},
		{"0@[::1:8020:" + dirA, "Hostname began with left bracket, but no right bracket was found."},
		{"0@localhost", "No colon following hostname could be found."},
		{"0@[::1]8020:" + dirA, "Port section must start with a colon."},
		{"0@localhost:8020", "No colon following port could be found."},
		{"0@localhost:x:" + dirA, "Failed to parse port in dynamic voter string."},
		{"0@localhost:70000:" + dirA, "Invalid port 70000 in dynamic voter string."},
		{"0@localhost:8020:nope", "Failed to parse directory ID in dynamic voter string."},
		{"0@a:1:" + dirA + ",0@b:2:" + dirB, "Node id 0 was specified more than once."},
	} {
		if _, err := ParseInitialControllers(tc.in); err == nil || !strings.HasSuffix(err.Error(), tc.want) {
			t.Errorf("%q: %v, want %q", tc.in, err, tc.want)
		}
	}
}

// TestFormatDynamicQuorum: the options of a dynamic quorum are checked as kafka-storage format
// checks them; --standalone and --initial-controllers write the initial voters beside the
// Raft store and give the metadata directory the voter's directory id;
// --no-initial-controllers writes none; planQuorum reads them back.
func TestFormatDynamicQuorum(t *testing.T) {
	dynamic := func(extra map[string]string) map[string]string {
		p := map[string]string{
			"log.dirs":                            t.TempDir(),
			"listeners":                           "PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093",
			"controller.quorum.bootstrap.servers": "127.0.0.1:9093,127.0.0.1:9193",
		}
		for k, v := range extra {
			p[k] = v
		}
		return p
	}
	id := RandomUUID()
	const dir2 = "aUARLskQTCW4qCZDtS_cwA"
	for _, tc := range []struct {
		name  string
		props map[string]string
		opts  FormatOptions
		err   string
	}{
		{"no option on a controller", dynamic(nil), FormatOptions{},
			"Because controller.quorum.voters is not set on this controller, you must specify one of the following: --standalone, --initial-controllers, or --no-initial-controllers."},
		{"two options", dynamic(nil), FormatOptions{Standalone: true, NoInitialControllers: true}, "give only one of"},
		{"standalone on a broker", dynamic(map[string]string{"process.roles": "broker", "listeners": "PLAINTEXT://127.0.0.1:9092"}),
			FormatOptions{Standalone: true}, "You can only use --standalone on a controller."},
		{"options with static voters", map[string]string{"log.dirs": t.TempDir(), "controller.quorum.voters": "1@localhost:9093"},
			FormatOptions{Standalone: true}, "set controller.quorum.bootstrap.servers"},
		{"standalone on port 0", dynamic(map[string]string{"listeners": "PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:0"}),
			FormatOptions{Standalone: true}, "port 0"},
		{"bad initial controllers", dynamic(nil), FormatOptions{InitialControllers: "1@h:1"}, "No colon following port"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.opts.ClusterID = id
			if _, err := FormatWith(loadCfg(t, tc.props), tc.opts); err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("err %v, want %q", err, tc.err)
			}
		})
	}

	// A broker of a dynamic quorum needs no option; a node with bootstrap servers naming
	// only itself (Kafka's single-node server.properties) neither.
	broker := loadCfg(t, dynamic(map[string]string{"process.roles": "broker", "listeners": "PLAINTEXT://127.0.0.1:9092"}))
	if _, err := FormatWith(broker, FormatOptions{ClusterID: id}); err != nil {
		t.Fatalf("broker: %v", err)
	}
	self := loadCfg(t, dynamic(map[string]string{"controller.quorum.bootstrap.servers": "localhost:9093"}))
	if _, err := FormatWith(self, FormatOptions{ClusterID: id}); err != nil {
		t.Fatalf("single node: %v", err)
	}
	if p, err := planQuorum(self); err != nil || !p.single || p.dynamic {
		t.Fatalf("single node formatted without options: %+v %v, want a static single node", p, err)
	}

	standalone := loadCfg(t, dynamic(nil))
	done, err := FormatWith(standalone, FormatOptions{ClusterID: id, Standalone: true})
	if err != nil || len(done) != 1 || done[0].Kind != "dynamic metadata voter directory" {
		t.Fatalf("--standalone: %+v %v", done, err)
	}
	mp, _, _ := ReadMetaProperties(standalone.MetadataLogDir)
	p, err := planQuorum(standalone)
	if err != nil || !p.dynamic || p.observer || len(p.voters) != 1 || p.voters[0].Addr != "127.0.0.1:9093" ||
		p.voters[0].DirectoryID.String() != mp.DirectoryID || mp.DirectoryID != done[0].DirectoryID.String() {
		t.Fatalf("--standalone: plan %+v %v, meta.properties %+v", p, err, mp)
	}

	initial := loadCfg(t, dynamic(map[string]string{"node.id": "2"}))
	list := "1@127.0.0.1:9093:K90IZ-0DRNazJ49kCZ1EMQ,2@127.0.0.1:9193:" + dir2
	if _, err := FormatWith(initial, FormatOptions{ClusterID: id, InitialControllers: list}); err != nil {
		t.Fatal(err)
	}
	mp, _, _ = ReadMetaProperties(initial.MetadataLogDir)
	if p, err := planQuorum(initial); err != nil || mp.DirectoryID != dir2 || len(p.voters) != 2 || p.observer {
		t.Fatalf("--initial-controllers: meta.properties %+v, plan %+v %v", mp, p, err)
	}

	observer := loadCfg(t, dynamic(map[string]string{"node.id": "3", "metadata.log.dir": filepath.Join(t.TempDir(), "meta")}))
	done, err = FormatWith(observer, FormatOptions{ClusterID: id, NoInitialControllers: true})
	if err != nil || len(done) != 2 || done[1].Kind != "dynamic metadata directory" || done[0].Kind != "data directory" {
		t.Fatalf("--no-initial-controllers: %+v %v", done, err)
	}
	if p, err := planQuorum(observer); err != nil || !p.dynamic || !p.observer || len(p.voters) != 0 {
		t.Fatalf("--no-initial-controllers: plan %+v %v", p, err)
	}

	unformatted := loadCfg(t, dynamic(nil))
	if _, err := planQuorum(unformatted); err == nil || !strings.Contains(err.Error(), "--no-initial-controllers") {
		t.Fatalf("a dynamic controller not formatted for it: %v", err)
	}
}
