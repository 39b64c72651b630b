package server

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/samsa-io/samsa/internal/config"
	"github.com/samsa-io/samsa/internal/metadata"
)

// MetaPropertiesFile is the name of the file that marks a formatted data directory, in
// Kafka's format (version 1): node.id, cluster.id and directory.id.
const MetaPropertiesFile = "meta.properties"

// MetaProperties is the content of one directory's meta.properties.
type MetaProperties struct {
	NodeID      int32
	ClusterID   string
	DirectoryID string
}

// storageDirs returns the node's data directories: every log dir, then the metadata dir when
// it is not one of them.
func storageDirs(cfg *config.Server) []string {
	dirs := append([]string(nil), cfg.LogDirs...)
	meta := filepath.Clean(cfg.MetadataLogDir)
	for _, d := range cfg.LogDirs {
		if filepath.Clean(d) == meta {
			return dirs
		}
	}
	return append(dirs, cfg.MetadataLogDir)
}

// ReadMetaProperties reads dir's meta.properties; ok is false when there is none.
func ReadMetaProperties(dir string) (mp MetaProperties, ok bool, err error) {
	f, err := os.Open(filepath.Join(dir, MetaPropertiesFile))
	if errors.Is(err, os.ErrNotExist) {
		return mp, false, nil
	}
	if err != nil {
		return mp, false, err
	}
	defer f.Close()
	props, err := config.ParseProperties(f)
	if err != nil {
		return mp, false, fmt.Errorf("%s: %w", f.Name(), err)
	}
	if v := props["version"]; v != "1" {
		return mp, false, fmt.Errorf("%s: version %q is not supported (want 1)", f.Name(), v)
	}
	id, err := strconv.ParseInt(props["node.id"], 10, 32)
	if err != nil {
		return mp, false, fmt.Errorf("%s: node.id %q: %w", f.Name(), props["node.id"], err)
	}
	mp = MetaProperties{NodeID: int32(id), ClusterID: props["cluster.id"], DirectoryID: props["directory.id"]}
	if mp.ClusterID == "" {
		return mp, false, fmt.Errorf("%s: no cluster.id", f.Name())
	}
	return mp, true, nil
}

// writeMetaProperties writes dir's meta.properties atomically (temporary file, fsync, rename,
// directory fsync), creating dir.
func writeMetaProperties(dir string, mp MetaProperties) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "#\n#%s\n", time.Now().UTC().Format(time.UnixDate))
	fmt.Fprintf(&b, "node.id=%d\ndirectory.id=%s\nversion=1\ncluster.id=%s\n", mp.NodeID, mp.DirectoryID, mp.ClusterID)
	tmp := filepath.Join(dir, MetaPropertiesFile+".tmp")
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	_, err = f.Write(b.Bytes())
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, MetaPropertiesFile))
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("writing %s in %s: %w", MetaPropertiesFile, dir, err)
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// ValidateClusterID checks a cluster id as Kafka's storage tool does: a UUID in Kafka's text
// form (22 characters of URL-safe base64, as `samsa storage random-uuid` prints).
func ValidateClusterID(id string) error {
	if _, err := metadata.ParseUUID(id); err != nil {
		return fmt.Errorf("cluster id %q is not a Kafka UUID (22 characters of URL-safe base64; `samsa storage random-uuid` makes one)", id)
	}
	return nil
}

// RandomUUID returns a new random UUID in Kafka's text form.
func RandomUUID() string { return metadata.UUID(uuid.New()).String() }

// Format formats every data directory of cfg for clusterID, as `kafka-storage.sh format`
// does: meta.properties with node.id, cluster.id and a fresh directory.id in each. A
// directory already formatted for the same cluster and node is left as it is when
// ignoreFormatted, else it is an error; one formatted for another cluster or node is always
// an error. It returns the directories it formatted.
func Format(cfg *config.Server, clusterID string, ignoreFormatted bool) ([]string, error) {
	if err := ValidateClusterID(clusterID); err != nil {
		return nil, err
	}
	var todo []string
	for _, dir := range storageDirs(cfg) {
		mp, ok, err := ReadMetaProperties(dir)
		if err != nil {
			return nil, err
		}
		if !ok {
			todo = append(todo, dir)
			continue
		}
		if mp.ClusterID != clusterID || mp.NodeID != cfg.NodeID {
			return nil, fmt.Errorf("%s is already formatted for cluster %s, node %d", dir, mp.ClusterID, mp.NodeID)
		}
		if !ignoreFormatted {
			return nil, fmt.Errorf("%s is already formatted (use --ignore-formatted to leave formatted directories as they are)", dir)
		}
	}
	for _, dir := range todo {
		if err := writeMetaProperties(dir, MetaProperties{NodeID: cfg.NodeID, ClusterID: clusterID, DirectoryID: RandomUUID()}); err != nil {
			return nil, err
		}
	}
	return todo, nil
}

// checkStorage reads every data directory's meta.properties before start. It returns the
// cluster id they were formatted with, or "" when none is formatted and the node may format
// itself (a single node with no voters; formatSelf then writes them once the quorum's id is
// known). A node in a multi-node quorum must be formatted first, as Kafka requires.
func checkStorage(cfg *config.Server) (clusterID string, err error) {
	var missing []string
	for _, dir := range storageDirs(cfg) {
		mp, ok, err := ReadMetaProperties(dir)
		if err != nil {
			return "", err
		}
		if !ok {
			missing = append(missing, dir)
			continue
		}
		if mp.NodeID != cfg.NodeID {
			return "", fmt.Errorf("%s was formatted for node.id=%d, but this node is node.id=%d", dir, mp.NodeID, cfg.NodeID)
		}
		if clusterID != "" && mp.ClusterID != clusterID {
			return "", fmt.Errorf("the data directories were formatted for different clusters (%s and %s)", clusterID, mp.ClusterID)
		}
		clusterID = mp.ClusterID
	}
	if len(missing) > 0 && !cfg.SingleNode() {
		return "", fmt.Errorf("no %s in %s: format the storage of every node of a cluster first, with the same cluster id: samsa storage format --cluster-id <id> --config <file> (samsa storage random-uuid makes an id)", MetaPropertiesFile, missing[0])
	}
	return clusterID, nil
}

// formatSelf writes meta.properties, with the quorum's cluster id, into the directories of a
// single node that has none.
func formatSelf(cfg *config.Server, clusterID string) error {
	for _, dir := range storageDirs(cfg) {
		if _, ok, err := ReadMetaProperties(dir); err != nil || ok {
			continue
		}
		if err := writeMetaProperties(dir, MetaProperties{NodeID: cfg.NodeID, ClusterID: clusterID, DirectoryID: RandomUUID()}); err != nil {
			return err
		}
	}
	return nil
}
