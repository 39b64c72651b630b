package broker

import "github.com/samsa-io/samsa/internal/quota"

// SetQuotaSource makes the broker read client quotas from s (tests; until the quota store
// is merged, the broker has no quotas otherwise).
func (b *Broker) SetQuotaSource(s quota.Source) { b.quotas.setSource(s) }
