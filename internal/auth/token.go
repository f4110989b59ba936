package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"strings"
)

// APIKeyPrefix starts every API key, so leaked keys are easy to recognise
// in logs and by secret scanners.
const APIKeyPrefix = "obk_"

// NewToken returns 256 random bits, base64url-encoded: session ids, CSRF
// tokens, webhook secrets.
func NewToken() string {
	b := make([]byte, 32)
	// crypto/rand.Read never returns an error on supported platforms (Go 1.24+).
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// NewAPIKey returns a new API key, "obk_" followed by 256 random bits.
func NewAPIKey() string { return APIKeyPrefix + NewToken() }

// IsAPIKey reports whether s looks like an API key.
func IsAPIKey(s string) bool {
	return strings.HasPrefix(s, APIKeyPrefix) && len(s) > len(APIKeyPrefix)+20
}

// HashToken is how session ids and API keys are stored: SHA-256, hex. The
// tokens carry 256 random bits, so a fast hash is enough; a stolen database
// does not yield usable credentials.
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}
