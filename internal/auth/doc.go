// Package auth holds the security of client connections: the TLS configuration of a listener
// from PEM files (reloaded when the files change), the principal of a client certificate, and
// the server side of the SASL mechanisms PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512, with Kafka's
// JAAS syntax for the users of PLAIN. It does no I/O on connections: the broker feeds it the
// bytes of SaslAuthenticate requests and sends back what it answers.
package auth
