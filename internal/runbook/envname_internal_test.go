package runbook

import (
	"regexp"
	"strings"
	"testing"
)

// The loop must accept exactly what the rule's regular expression does:
// a name one allows and the other refuses would either let a hostile name
// reach a shell or refuse a good one.
var envNameRule = regexp.MustCompile(`^[A-Z][A-Z0-9_]{0,127}$`)

func FuzzEnvNameAllowed(f *testing.F) {
	for _, s := range []string{"", "A", "a", "_A", "A_", "DB_HOST", "1A", "AÉ", "A-B", "A B", "A\n",
		strings.Repeat("A", 128), strings.Repeat("A", 129), "Z9_", "[", "@", "`"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		if got, want := envNameAllowed(name), envNameRule.MatchString(name); got != want {
			t.Fatalf("envNameAllowed(%q) = %v, the rule says %v", name, got, want)
		}
	})
}
