package server

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/samsa-io/samsa/internal/config"
	"github.com/samsa-io/samsa/internal/metadata"
)

// InitialController is one initial voter of a dynamic quorum, as kafka-storage format
// --initial-controllers names it: id@host:port:directory-id (an IPv6 host in brackets).
type InitialController struct {
	ID          int32
	Host        string
	Port        int
	DirectoryID metadata.UUID
}

// Addr returns host:port.
func (c InitialController) Addr() string { return net.JoinHostPort(c.Host, strconv.Itoa(c.Port)) }

// String returns Kafka's text form.
func (c InitialController) String() string {
	host := c.Host
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	return fmt.Sprintf("%d@%s:%d:%s", c.ID, host, c.Port, c.DirectoryID)
}

// ParseInitialControllers parses --initial-controllers as Kafka's DynamicVoters does: a comma
// list (empty entries skipped) of id@host:port:directory-id, at least one, each node id once.
// The errors carry Kafka's messages.
func ParseInitialControllers(s string) ([]InitialController, error) {
	var out []InitialController
	seen := map[int32]bool{}
	for _, e := range strings.Split(strings.TrimSpace(s), ",") {
		if e == "" {
			continue
		}
		c, err := parseInitialController(e)
		if err != nil {
			return nil, fmt.Errorf("--initial-controllers: %q: %w", e, err)
		}
		if seen[c.ID] {
			return nil, fmt.Errorf("--initial-controllers: Node id %d was specified more than once.", c.ID)
		}
		seen[c.ID] = true
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, errors.New("--initial-controllers: No voters given.")
	}
	return out, nil
}

func parseInitialController(s string) (InitialController, error) {
	var c InitialController
	s = strings.TrimSpace(s)
	at := strings.Index(s, "@")
	switch {
	case at < 0:
		return c, errors.New("No @ found in dynamic voter string.")
	case at == 0:
		return c, errors.New("Invalid @ at beginning of dynamic voter string.")
	}
	id, err := strconv.ParseInt(s[:at], 10, 32)
	if err != nil {
		return c, errors.New("Failed to parse node id in dynamic voter string.")
	}
	if id < 0 {
		return c, fmt.Errorf("Invalid negative node id %d in dynamic voter string.", id)
	}
	c.ID = int32(id)
	s = s[at+1:]
	if s == "" {
		return c, errors.New("No hostname found after node id.")
	}
	if strings.HasPrefix(s, "[") {
		end := strings.Index(s, "]")
		if end < 0 {
			return c, errors.New("Hostname began with left bracket, but no right bracket was found.")
		}
		c.Host, s = s[1:end], s[end+1:]
	} else {
		colon := strings.Index(s, ":")
		if colon < 0 {
			return c, errors.New("No colon following hostname could be found.")
		}
		c.Host, s = s[:colon], s[colon:]
	}
	if !strings.HasPrefix(s, ":") {
		return c, errors.New("Port section must start with a colon.")
	}
	s = s[1:]
	colon := strings.Index(s, ":")
	if colon < 0 {
		return c, errors.New("No colon following port could be found.")
	}
	port, err := strconv.Atoi(s[:colon])
	if err != nil {
		return c, errors.New("Failed to parse port in dynamic voter string.")
	}
	if port < 0 || port > 65535 {
		return c, fmt.Errorf("Invalid port %d in dynamic voter string.", port)
	}
	c.Port = port
	if c.DirectoryID, err = metadata.ParseUUID(s[colon+1:]); err != nil {
		return c, errors.New("Failed to parse directory ID in dynamic voter string.")
	}
	return c, nil
}

// The bootstrap file of a dynamic quorum. Kafka's format writes the initial voter set into a
// bootstrap checkpoint of the metadata log; Samsa writes it into this file beside the Raft
// store, and the node bootstraps hashicorp/raft with it on its first start (when the Raft log
// is empty). Format (version 1), Java properties:
//
//	version=1
//	kraft.version=1
//	initial.controllers=1@host:9093:<directory id>,...   (empty: --no-initial-controllers)
const bootstrapFile = "bootstrap.quorum"

// metadataRaftDir is where the controller keeps the Raft store (and the bootstrap file).
func metadataRaftDir(cfg *config.Server) string {
	return filepath.Join(cfg.MetadataLogDir, "__cluster_metadata-0")
}

// bootstrapQuorum is the content of the bootstrap file.
type bootstrapQuorum struct {
	// Voters are the initial voters; empty for a node formatted with --no-initial-controllers.
	Voters []InitialController
}

// voter returns this node's entry among the initial voters.
func (b bootstrapQuorum) voter(id int32) (InitialController, bool) {
	for _, v := range b.Voters {
		if v.ID == id {
			return v, true
		}
	}
	return InitialController{}, false
}

// writeBootstrapQuorum writes the bootstrap file into dir (created if missing).
func writeBootstrapQuorum(dir string, b bootstrapQuorum) error {
	var list []string
	for _, v := range b.Voters {
		list = append(list, v.String())
	}
	var buf bytes.Buffer
	fmt.Fprintf(&buf, "# The initial voters of this node's dynamic metadata quorum (KIP-853), written by samsa storage\n")
	fmt.Fprintf(&buf, "# format and read on the first start, when the Raft log is empty.\n")
	fmt.Fprintf(&buf, "version=1\nkraft.version=1\ninitial.controllers=%s\n", strings.Join(list, ","))
	return writeFileSynced(dir, bootstrapFile, buf.Bytes())
}

// readBootstrapQuorum reads dir's bootstrap file; ok is false when there is none.
func readBootstrapQuorum(dir string) (b bootstrapQuorum, ok bool, err error) {
	props, ok, err := readPropertiesV1(dir, bootstrapFile)
	if !ok || err != nil {
		return b, false, err
	}
	if list := strings.TrimSpace(props["initial.controllers"]); list != "" {
		if b.Voters, err = ParseInitialControllers(list); err != nil {
			return b, false, fmt.Errorf("%s: %w", filepath.Join(dir, bootstrapFile), err)
		}
	}
	return b, true, nil
}
