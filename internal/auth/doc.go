// Package auth holds the security of client connections: the TLS configuration of a listener
// from PEM files (reloaded when the files change), the principal of a client certificate, and
// the server side of the SASL mechanisms PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 and OAUTHBEARER
// (signed JWTs checked against a JWKS, or Kafka's unsecured tokens), with Kafka's JAAS syntax
// for the users of PLAIN and the options of the unsecured validator. It does no I/O on
// connections: the broker feeds it the bytes of SaslAuthenticate requests and sends back what
// it answers. Its only network I/O is fetching a JWKS (jwks.go).
package auth
