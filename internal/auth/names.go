package auth

import (
	"fmt"
	"regexp"
	"strings"
	"sync"
)

// nameRule is the one rule for the names of users, teams and triggers,
// whichever way they are made (API, web form, OIDC sign-in): they appear in
// URLs, audit entries and grants, so they are short and need no escaping.
var nameRule = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@+-]{0,63}$`) })

// CheckName says what is wrong with a name of a user, team or trigger
// ("user", "team", …), or returns nil.
func CheckName(what, name string) error {
	if !nameRule().MatchString(name) {
		return fmt.Errorf("%s name %q: use 1 to 64 letters, digits, '.', '_', '@', '+' or '-', starting with a letter or digit", what, name)
	}
	return nil
}

// NameFrom turns free text (an OIDC preferred_username or email) into a
// name CheckName accepts: characters it does not allow become '-', and the
// result is cut to 64 bytes. It returns "" when nothing usable is left.
func NameFrom(s string) string {
	var b strings.Builder
	for _, r := range strings.TrimSpace(s) {
		switch {
		case r < 128 && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("._@+-", r)):
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
	}
	out := strings.TrimLeft(b.String(), "._@+-")
	if len(out) > 64 {
		out = out[:64]
	}
	return out
}
