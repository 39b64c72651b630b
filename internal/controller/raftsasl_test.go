package controller

import (
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/internal/acl"
	"github.com/samsa-io/samsa/internal/config"
	"github.com/samsa-io/samsa/internal/metadata"
)

// TestRaftSASL dials a SASL controller listener's Raft side over TCP with logins of every
// kind: the node's own (a super user) is handed to Raft with its cluster id; a wrong password
// fails SASL_AUTHENTICATION_FAILED, a principal without CLUSTER_ACTION is refused
// CLUSTER_AUTHORIZATION_FAILED, a mechanism the listener does not enable is refused, a
// dialler without SASL is closed; without an authorizer any authenticated principal is
// admitted.
func TestRaftSASL(t *testing.T) {
	users := map[string]string{"controller": "controller-secret", "mallory": "mallory-secret"}
	authz := &acl.Authorizer{SuperUsers: acl.ParseSuperUsers("User:controller")}
	login := func(mech, user, pass string) *RaftSASL {
		return &RaftSASL{Mechanism: mech, Username: user, Password: pass}
	}
	for _, tc := range []struct {
		name       string
		authorizer *acl.Authorizer
		listener   bool      // the listener runs SASL
		dialler    *RaftSASL // nil: no SASL
		wantErr    string    // "" admitted
	}{
		{"the nodes' login", authz, true, login(config.MechanismPlain, "controller", "controller-secret"), ""},
		{"wrong password", authz, true, login(config.MechanismPlain, "controller", "nope"), "SASL_AUTHENTICATION_FAILED"},
		{"unknown user", authz, true, login(config.MechanismPlain, "eve", "eve-secret"), "SASL_AUTHENTICATION_FAILED"},
		{"no CLUSTER_ACTION", authz, true, login(config.MechanismPlain, "mallory", "mallory-secret"), "CLUSTER_AUTHORIZATION_FAILED"},
		{"mechanism not enabled", authz, true, login(config.MechanismScramSHA512, "controller", "controller-secret"), "UNSUPPORTED_SASL_MECHANISM"},
		{"no authorizer", nil, true, login(config.MechanismPlain, "mallory", "mallory-secret"), ""},
		{"dialler without SASL", authz, true, nil, "closed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var srvSASL *RaftSASL
			if tc.listener {
				srvSASL = &RaftSASL{Mechanisms: []string{config.MechanismPlain, config.MechanismScramSHA256}, PlainUsers: users, Authorizer: tc.authorizer}
			}
			logger := slog.New(slog.NewTextHandler(io.Discard, nil))
			image := func() *metadata.Image { return &metadata.Image{} }
			srv, err := newMuxListener("127.0.0.1:0", "", "cluster-a", nil, nil, srvSASL, image, logger)
			if err != nil {
				t.Fatal(err)
			}
			defer srv.Close()
			cli, err := newMuxListener("127.0.0.1:0", "", "cluster-a", nil, nil, tc.dialler, image, logger)
			if err != nil {
				t.Fatal(err)
			}
			defer cli.Close()

			accepted := make(chan struct{})
			go func() {
				if c, err := srv.Accept(); err == nil {
					c.Close()
					close(accepted)
				}
			}()
			c, err := cli.Dial(raft.ServerAddress(srv.ln.Addr().String()), 5*time.Second)
			if err == nil && tc.wantErr != "" {
				// Without SASL on one side the dial itself succeeds: the listener closes the
				// connection once it reads what it did not expect.
				c.SetReadDeadline(time.Now().Add(5 * time.Second))
				_, rerr := c.Read(make([]byte, 1))
				c.Close()
				if rerr == nil || strings.Contains(rerr.Error(), "timeout") {
					t.Fatalf("dial admitted (read: %v), want %s", rerr, tc.wantErr)
				}
				err = rerr
				if tc.wantErr == "closed" {
					return
				}
			}
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("dial: %v", err)
			case tc.wantErr == "":
				defer c.Close()
				select {
				case <-accepted:
				case <-time.After(10 * time.Second):
					t.Fatal("the listener did not hand the connection to Raft")
				}
			case !strings.Contains(err.Error(), tc.wantErr):
				t.Fatalf("dial: %v, want %s", err, tc.wantErr)
			}
			if tc.wantErr != "" {
				select {
				case <-accepted:
					t.Fatal("a refused connection reached Raft")
				default:
				}
			}
		})
	}
}

// FuzzRaftSASLAccept feeds arbitrary bytes to the accepting side of a Raft connection's SASL
// exchange: it must end (with an error or a principal) without panicking, whatever it reads.
func FuzzRaftSASLAccept(f *testing.F) {
	fmtr := kmsg.NewRequestFormatter(kmsg.FormatterClientID(raftSASLClientID))
	hs := kmsg.NewPtrSASLHandshakeRequest()
	hs.Version, hs.Mechanism = 1, config.MechanismPlain
	auth := kmsg.NewPtrSASLAuthenticateRequest()
	auth.Version, auth.SASLAuthBytes = 1, []byte("\x00controller\x00controller-secret")
	good := fmtr.AppendRequest(fmtr.AppendRequest(nil, hs, 1), auth, 2)
	f.Add(good)
	f.Add(good[:len(good)-3])
	f.Add([]byte{0, 0, 0, 4, 0, 17, 0, 1})
	a := newRaftSASLAcceptor(&RaftSASL{Mechanisms: []string{config.MechanismPlain, config.MechanismScramSHA256},
		PlainUsers: map[string]string{"controller": "controller-secret"},
		Authorizer: &acl.Authorizer{SuperUsers: acl.ParseSuperUsers("User:controller")}},
		func() *metadata.Image { return &metadata.Image{} })
	f.Fuzz(func(t *testing.T, in []byte) {
		server, client := net.Pipe()
		defer server.Close()
		go func() {
			client.Write(in)
			client.Close()
		}()
		go io.Copy(io.Discard, client) // the answers
		a.authenticate(server)
	})
}
