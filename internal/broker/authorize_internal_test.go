package broker

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestAPIAuthorizationTable: every API the broker serves says how it is authorized, so an API
// cannot be added without its check; the ones served to super users only, their resources not
// checked yet, are listed.
func TestAPIAuthorizationTable(t *testing.T) {
	var notChecked []string
	for _, a := range servedAPIs() {
		check, ok := apiAuthorization[a.key]
		if !ok {
			t.Errorf("API %s (%d) is served and has no entry in apiAuthorization", kmsg.NameForKey(a.key), a.key)
			continue
		}
		if check == checkSuperUserOnly {
			notChecked = append(notChecked, kmsg.NameForKey(a.key))
		}
	}
	t.Logf("served to super users only (resources not checked yet): %v", notChecked)
}
