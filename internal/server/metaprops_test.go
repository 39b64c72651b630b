package server

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/samsa-io/samsa/internal/config"
)

func loadCfg(t *testing.T, props map[string]string) *config.Server {
	t.Helper()
	cfg, err := config.LoadServer(props)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestFormatAndCheckStorage: format writes meta.properties in every data directory (log dir
// and a separate metadata dir); a second format refuses unless --ignore-formatted; a node of a
// multi-node quorum refuses to start unformatted; a directory formatted for another node, or
// two directories formatted for different clusters, are refused; a single node needs no
// format.
func TestFormatAndCheckStorage(t *testing.T) {
	base := t.TempDir()
	props := map[string]string{
		"log.dirs":                 filepath.Join(base, "logs"),
		"metadata.log.dir":         filepath.Join(base, "meta"),
		"controller.quorum.voters": "1@localhost:9093,2@localhost:9193",
	}
	cfg := loadCfg(t, props)
	if _, err := checkStorage(cfg); err == nil || !strings.Contains(err.Error(), "samsa storage format") {
		t.Fatalf("unformatted quorum node: %v, want a format hint", err)
	}
	id := RandomUUID()
	if _, err := Format(cfg, "not-a-uuid", false); err == nil {
		t.Fatal("formatted with an invalid cluster id")
	}
	dirs, err := Format(cfg, id, false)
	if err != nil || len(dirs) != 2 {
		t.Fatalf("Format: %v %v", dirs, err)
	}
	if got, err := checkStorage(cfg); err != nil || got != id {
		t.Fatalf("checkStorage after format: %q %v", got, err)
	}
	if _, err := Format(cfg, id, false); err == nil {
		t.Fatal("formatted twice without --ignore-formatted")
	}
	if dirs, err := Format(cfg, id, true); err != nil || len(dirs) != 0 {
		t.Fatalf("--ignore-formatted: %v %v", dirs, err)
	}
	if _, err := Format(cfg, RandomUUID(), true); err == nil {
		t.Fatal("reformatted for another cluster")
	}

	other := map[string]string{}
	for k, v := range props {
		other[k] = v
	}
	other["node.id"] = "2"
	if _, err := checkStorage(loadCfg(t, other)); err == nil || !strings.Contains(err.Error(), "node.id=1") {
		t.Fatalf("another node's directories: %v", err)
	}

	if err := writeMetaProperties(filepath.Join(base, "meta"), MetaProperties{NodeID: 1, ClusterID: RandomUUID(), DirectoryID: RandomUUID()}); err != nil {
		t.Fatal(err)
	}
	if _, err := checkStorage(cfg); err == nil || !strings.Contains(err.Error(), "different clusters") {
		t.Fatalf("directories of two clusters: %v", err)
	}

	single := loadCfg(t, map[string]string{"log.dirs": filepath.Join(base, "single")})
	if got, err := checkStorage(single); err != nil || got != "" {
		t.Fatalf("unformatted single node: %q %v", got, err)
	}
}

// TestSingleNodeFormatsItself: a single node with no voters writes meta.properties with the
// quorum's cluster id on its first start, and starts again on it.
func TestSingleNodeFormatsItself(t *testing.T) {
	dir := t.TempDir()
	s, err := startNode(t, map[string]string{"log.dirs": dir})
	if err != nil {
		t.Fatal(err)
	}
	id := s.Image().ClusterID
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	mp, ok, err := ReadMetaProperties(dir)
	if err != nil || !ok || mp.ClusterID != id || mp.NodeID != 1 {
		t.Fatalf("meta.properties %+v %v %v, want cluster %s node 1", mp, ok, err, id)
	}
	s, err = startNode(t, map[string]string{"log.dirs": dir})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Image().ClusterID != id {
		t.Fatalf("cluster id changed on restart: %s -> %s", id, s.Image().ClusterID)
	}
}
