package config

import (
	"fmt"
	"net"
	"strconv"
	"strings"
)

// Voter is one member of the metadata quorum named by controller.quorum.voters: its node id
// and the host:port of its controller listener.
type Voter struct {
	ID   int32
	Host string
	Port int
}

// Addr returns host:port.
func (v Voter) Addr() string { return net.JoinHostPort(v.Host, strconv.Itoa(v.Port)) }

// parseVoters parses controller.quorum.voters: comma-separated id@host:port, as Kafka writes
// it (an IPv6 host in brackets). Ids must be unique and non-negative.
func parseVoters(v string) ([]Voter, error) {
	var out []Voter
	seen := map[int32]bool{}
	for _, e := range splitList(v) {
		idStr, addr, ok := strings.Cut(e, "@")
		if !ok {
			return nil, fmt.Errorf("controller.quorum.voters: %q is not id@host:port", e)
		}
		id, err := strconv.ParseInt(idStr, 10, 32)
		if err != nil || id < 0 {
			return nil, fmt.Errorf("controller.quorum.voters: %q: the id must be a non-negative integer", e)
		}
		host, portStr, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, fmt.Errorf("controller.quorum.voters: %q: %v", e, err)
		}
		port, err := strconv.Atoi(portStr)
		if err != nil || port <= 0 || port > 65535 {
			return nil, fmt.Errorf("controller.quorum.voters: %q: bad port", e)
		}
		if seen[int32(id)] {
			return nil, fmt.Errorf("controller.quorum.voters: node id %d is given twice", id)
		}
		seen[int32(id)] = true
		out = append(out, Voter{ID: int32(id), Host: host, Port: port})
	}
	return out, nil
}

// loadRoles reads process.roles. The quorum settings are checked with them by loadQuorum, as
// Kafka's KafkaConfig does: a controller of a static quorum must be one of the voters; a
// broker-only node needs the voters or the bootstrap servers to find the quorum; a combined
// node with neither forms its own quorum.
func (s *Server) loadRoles() error {
	roles, _ := s.Value("process.roles")
	for _, r := range splitList(roles) {
		switch r {
		case "broker":
			s.Broker = true
		case "controller":
			s.Controller = true
		}
	}
	if !s.Broker && !s.Controller {
		return fmt.Errorf("process.roles=%s: give broker, controller or both", roles)
	}
	return nil
}

// loadQuorum reads controller.quorum.voters (a static quorum) or
// controller.quorum.bootstrap.servers (a dynamic one, KIP-853) once the roles and listeners
// are known.
func (s *Server) loadQuorum() error {
	roles, _ := s.Value("process.roles")
	voters, _ := s.Value("controller.quorum.voters")
	var err error
	if s.Voters, err = parseVoters(voters); err != nil {
		return err
	}
	if s.BootstrapServers, err = parseBootstrapServers(s.Explicit["controller.quorum.bootstrap.servers"]); err != nil {
		return err
	}
	if len(s.BootstrapServers) > 0 && len(s.Voters) > 0 {
		return fmt.Errorf("controller.quorum.bootstrap.servers and controller.quorum.voters are both set: give one")
	}
	if len(s.Voters) == 0 {
		if len(s.BootstrapServers) == 0 && (!s.Broker || !s.Controller) {
			return fmt.Errorf("controller.quorum.voters: required when process.roles is not broker,controller and controller.quorum.bootstrap.servers is not set (a single node with neither forms its own quorum)")
		}
		return nil
	}
	mine := false
	for _, v := range s.Voters {
		mine = mine || v.ID == s.NodeID
	}
	if s.Controller && !mine {
		return fmt.Errorf("controller.quorum.voters: this node (node.id=%d) has the controller role but is not one of the voters %s", s.NodeID, voters)
	}
	if !s.Controller && mine {
		return fmt.Errorf("controller.quorum.voters: node.id=%d is a voter, but process.roles=%s has no controller role", s.NodeID, roles)
	}
	return nil
}

// parseBootstrapServers parses controller.quorum.bootstrap.servers: comma-separated host:port.
func parseBootstrapServers(v string) ([]string, error) {
	out := splitList(v)
	for _, a := range out {
		_, port, err := net.SplitHostPort(a)
		if n, perr := strconv.Atoi(port); err != nil || perr != nil || n <= 0 || n > 65535 {
			return nil, fmt.Errorf("controller.quorum.bootstrap.servers: %q is not host:port", a)
		}
	}
	return out, nil
}

// SingleNode reports whether this node may form a quorum alone, formatting its own storage on
// first start: no voters, and no bootstrap servers or only its own controller listener
// (Kafka's single-node server.properties). A node formatted for a dynamic quorum is not
// formatted again, whatever this says.
func (s *Server) SingleNode() bool {
	return len(s.Voters) == 0 && (len(s.BootstrapServers) == 0 || s.bootstrapIsSelf(s.BootstrapServers))
}

// DynamicQuorum reports whether the quorum is found through controller.quorum.bootstrap.servers
// (KIP-853) rather than named by controller.quorum.voters.
func (s *Server) DynamicQuorum() bool { return len(s.Voters) == 0 && len(s.BootstrapServers) > 0 }

// bootstrapIsSelf reports whether every controller.quorum.bootstrap.servers address is this
// node's own controller listener (same port; a local or unspecified host).
func (s *Server) bootstrapIsSelf(servers []string) bool {
	if !s.Controller || !s.Broker {
		return false
	}
	cl, ok := s.ControllerListenerAddr()
	if !ok {
		return false
	}
	for _, b := range servers {
		host, port, err := net.SplitHostPort(b)
		if err != nil || port != strconv.Itoa(cl.Port) {
			return false
		}
		if host != cl.Host && host != "localhost" && host != "127.0.0.1" && host != "::1" && cl.Host != "" {
			return false
		}
	}
	return true
}
