package broker

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestAPIAuthorizationTable: every API the broker serves says how it is authorized, so an API
// cannot be added without its check.
func TestAPIAuthorizationTable(t *testing.T) {
	for _, a := range servedAPIs() {
		if _, ok := apiAuthorization[a.key]; !ok {
			t.Errorf("API %s (%d) is served and has no entry in apiAuthorization", kmsg.NameForKey(a.key), a.key)
		}
	}
}
