// Package quota owns client quotas: the entities a quota applies to (user, client id, ip, each
// named or the default), Kafka's rules for which configured quota applies to a connection,
// the rate sensors that measure a client's use, and the throttle time a client over its quota
// is given (Kafka's ClientQuotaManager / ClientRequestQuotaManager), plus the broker's
// connection limits.
//
// The quota values themselves live in the metadata log (ClientQuotaRecord) and reach this
// package through a Source; this package does no I/O.
package quota
