package server

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

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
	props, ok, err := readPropertiesV1(dir, MetaPropertiesFile)
	if !ok || err != nil {
		return mp, false, err
	}
	name := filepath.Join(dir, MetaPropertiesFile)
	id, err := strconv.ParseInt(props["node.id"], 10, 32)
	if err != nil {
		return mp, false, fmt.Errorf("%s: node.id %q: %w", name, props["node.id"], err)
	}
	mp = MetaProperties{NodeID: int32(id), ClusterID: props["cluster.id"], DirectoryID: props["directory.id"]}
	if mp.ClusterID == "" {
		return mp, false, fmt.Errorf("%s: no cluster.id", name)
	}
	return mp, true, nil
}

// readPropertiesV1 reads dir/name, a properties file whose version must be 1; ok is false
// when there is none.
func readPropertiesV1(dir, name string) (props map[string]string, ok bool, err error) {
	f, err := os.Open(filepath.Join(dir, name))
	if errors.Is(err, os.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	defer f.Close()
	if props, err = config.ParseProperties(f); err != nil {
		return nil, false, fmt.Errorf("%s: %w", f.Name(), err)
	}
	if v := props["version"]; v != "1" {
		return nil, false, fmt.Errorf("%s: version %q is not supported (want 1)", f.Name(), v)
	}
	return props, true, nil
}

// writeMetaProperties writes dir's meta.properties atomically, creating dir.
func writeMetaProperties(dir string, mp MetaProperties) error {
	var b bytes.Buffer
	fmt.Fprintf(&b, "#\n#%s\n", time.Now().UTC().Format(time.UnixDate))
	fmt.Fprintf(&b, "node.id=%d\ndirectory.id=%s\nversion=1\ncluster.id=%s\n", mp.NodeID, mp.DirectoryID, mp.ClusterID)
	return writeFileSynced(dir, MetaPropertiesFile, b.Bytes())
}

// writeFileSynced writes dir/name atomically (temporary file, fsync, rename, directory
// fsync), creating dir.
func writeFileSynced(dir, name string, data []byte) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	tmp := filepath.Join(dir, name+".tmp")
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, name))
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("writing %s in %s: %w", name, dir, err)
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
func RandomUUID() string { return metadata.RandomUUID().String() }

// Format formats every data directory of cfg for clusterID (FormatWith with no quorum
// options) and returns the directories it formatted.
func Format(cfg *config.Server, clusterID string, ignoreFormatted bool) ([]string, error) {
	done, err := FormatWith(cfg, FormatOptions{ClusterID: clusterID, IgnoreFormatted: ignoreFormatted})
	var dirs []string
	for _, d := range done {
		dirs = append(dirs, d.Dir)
	}
	return dirs, err
}

// FormatOptions are the options of `samsa storage format`, as kafka-storage format has them.
type FormatOptions struct {
	ClusterID string
	// IgnoreFormatted leaves directories already formatted for the same cluster and node as
	// they are, instead of failing.
	IgnoreFormatted bool
	// Standalone makes this controller the only initial voter of a dynamic quorum
	// (--standalone), at its controller listener.
	Standalone bool
	// InitialControllers are the initial voters of a dynamic quorum (--initial-controllers,
	// id@host:port:directory-id,...); this node's metadata directory gets the directory id
	// the list gives it.
	InitialControllers string
	// NoInitialControllers formats a node that joins a dynamic quorum later, as an observer
	// (--no-initial-controllers).
	NoInitialControllers bool
	// AddScram are SCRAM credentials to bootstrap (--add-scram, ParseAddScram), written into
	// the metadata directory and committed by the new cluster's first active controller.
	AddScram []string
}

// FormattedDir is one directory Format wrote.
type FormattedDir struct {
	Dir         string
	DirectoryID metadata.UUID
	// Kind is Kafka's description: "data directory", "metadata directory", "dynamic metadata
	// directory" or "dynamic metadata voter directory".
	Kind string
}

// FormatWith formats every data directory of cfg, as `kafka-storage.sh format` does:
// meta.properties with node.id, cluster.id and a directory.id in each (fresh, except the
// metadata directory of an initial voter, which gets the id its --initial-controllers entry
// gives). A node of a dynamic quorum (controller.quorum.bootstrap.servers) is formatted with
// one of Standalone, InitialControllers or NoInitialControllers (a controller must give one,
// as Kafka requires); the initial voters are written beside the Raft store (bootstrap file)
// for the first start. A directory already formatted for the same cluster and node is left as
// it is when IgnoreFormatted, else it is an error; one formatted for another cluster or node is
// always an error.
func FormatWith(cfg *config.Server, opts FormatOptions) ([]FormattedDir, error) {
	if err := ValidateClusterID(opts.ClusterID); err != nil {
		return nil, err
	}
	boot, dynamic, err := bootstrapFromOptions(cfg, opts)
	if err != nil {
		return nil, err
	}
	var scram []metadata.UserScramCredential
	for _, a := range opts.AddScram {
		c, err := ParseAddScram(a)
		if err != nil {
			return nil, err
		}
		scram = append(scram, c)
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
		if mp.ClusterID != opts.ClusterID || mp.NodeID != cfg.NodeID {
			return nil, fmt.Errorf("%s is already formatted for cluster %s, node %d", dir, mp.ClusterID, mp.NodeID)
		}
		if !opts.IgnoreFormatted {
			return nil, fmt.Errorf("%s is already formatted (use --ignore-formatted to leave formatted directories as they are)", dir)
		}
	}
	var done []FormattedDir
	for _, dir := range todo {
		d := FormattedDir{Dir: dir, DirectoryID: metadata.RandomUUID(), Kind: "data directory"}
		if filepath.Clean(dir) == filepath.Clean(cfg.MetadataLogDir) {
			d.Kind = "metadata directory"
			if dynamic {
				d.Kind = "dynamic metadata directory"
				if v, ok := boot.voter(cfg.NodeID); ok {
					d.Kind, d.DirectoryID = "dynamic metadata voter directory", v.DirectoryID
				}
				if err := writeBootstrapQuorum(metadataRaftDir(cfg), boot); err != nil {
					return nil, err
				}
			}
			if len(scram) > 0 {
				if err := writeBootstrapScram(dir, scram); err != nil {
					return nil, err
				}
			}
		}
		if err := writeMetaProperties(dir, MetaProperties{NodeID: cfg.NodeID, ClusterID: opts.ClusterID, DirectoryID: d.DirectoryID.String()}); err != nil {
			return nil, err
		}
		done = append(done, d)
	}
	return done, nil
}

// bootstrapFromOptions checks the dynamic-quorum options against the configuration and
// returns the initial voters they give; dynamic is false for a static quorum or a single node.
func bootstrapFromOptions(cfg *config.Server, opts FormatOptions) (b bootstrapQuorum, dynamic bool, err error) {
	given := 0
	for _, set := range []bool{opts.Standalone, opts.InitialControllers != "", opts.NoInitialControllers} {
		if set {
			given++
		}
	}
	switch {
	case given > 1:
		return b, false, errors.New("give only one of --standalone, --initial-controllers and --no-initial-controllers")
	case given == 1 && !cfg.DynamicQuorum():
		return b, false, errors.New("--standalone, --initial-controllers and --no-initial-controllers format a node of a dynamic " +
			"quorum: set controller.quorum.bootstrap.servers (controllers' host:port) instead of controller.quorum.voters")
	case opts.Standalone && !cfg.Controller:
		return b, false, errors.New("You can only use --standalone on a controller.")
	case given == 0 && cfg.DynamicQuorum() && cfg.Controller && !cfg.SingleNode():
		return b, false, errors.New("Because controller.quorum.voters is not set on this controller, you must specify one of the " +
			"following: --standalone, --initial-controllers, or --no-initial-controllers.")
	case given == 0:
		return b, false, nil
	}
	switch {
	case opts.Standalone:
		host, port, err := cfg.AdvertisedControllerAddr()
		if err != nil {
			return b, false, fmt.Errorf("--standalone: %w", err)
		}
		b.Voters = []InitialController{{ID: cfg.NodeID, Host: host, Port: port, DirectoryID: metadata.RandomUUID()}}
	case opts.InitialControllers != "":
		if b.Voters, err = ParseInitialControllers(opts.InitialControllers); err != nil {
			return b, false, err
		}
	}
	return b, true, nil
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
