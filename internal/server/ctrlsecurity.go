package server

import (
	"crypto/tls"
	"fmt"
	"log/slog"

	"github.com/samsa-io/samsa/internal/auth"
	"github.com/samsa-io/samsa/internal/config"
)

// controllerTLS returns the TLS configurations of an SSL controller listener (mutual TLS,
// config.checkControllerSecurity) or a SASL_SSL one: the server side, for the Raft and Kafka
// connections it accepts, and the client side, for the Raft connections and the controller
// client this node dials, which present the listener's key store. Nil and nil for PLAINTEXT
// and SASL_PLAINTEXT. A broker-only
// node, whose Raft transport listens on a port of its own, uses the same settings
// (listener.name.<controller listener>.ssl.*).
func controllerTLS(cfg *config.Server, logger *slog.Logger) (server, client *tls.Config, err error) {
	if !config.ProtocolTLS(cfg.ControllerProtocol) {
		return nil, nil, nil
	}
	s := auth.ListenerTLSSettings(cfg, cfg.ControllerListener)
	src, err := auth.NewTLSSource(s, logger)
	if err != nil {
		return nil, nil, fmt.Errorf("controller listener: %w", err)
	}
	verifyHost := cfg.ListenerValue(cfg.ControllerListener, "ssl.endpoint.identification.algorithm") != ""
	if client, err = auth.ListenerClientTLS(s, verifyHost); err != nil {
		return nil, nil, fmt.Errorf("controller listener %s: %w", cfg.ControllerListener, err)
	}
	return src.ServerConfig(), client, nil
}
