package server

import (
	"crypto/hmac"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/opsbook/opsbook/internal/notify"
	"github.com/opsbook/opsbook/internal/store"
)

// Webhook signing.
const (
	// WebhookWindow is how far a webhook's signed timestamp may be from now.
	WebhookWindow = 5 * time.Minute
	// SignatureHeader carries "t=<unix seconds>,v1=<hex HMAC-SHA256>" over
	// "<t>.<body>" with the trigger's secret.
	SignatureHeader = notify.SignatureHeader
)

// HooksPath is where webhook triggers are fired: POST HooksPath + name.
const HooksPath = "/api/v1/hooks/"

// TriggerSecretAAD binds a sealed webhook secret to its trigger.
func TriggerSecretAAD(name string) []byte { return []byte("trigger/" + name) }

// SignWebhook returns the signature header value for body at time t: the
// scheme of outgoing notifications too (notify.Sign), so one receiver
// library serves both directions.
func SignWebhook(secret string, t time.Time, body []byte) string { return notify.Sign(secret, t, body) }

// ErrBadSignature is a webhook whose signature does not check.
var ErrBadSignature = errors.New("webhook signature refused")

// replayGuard remembers signatures seen within the webhook window, so a
// captured request cannot be replayed even inside it.
type replayGuard struct {
	mu   sync.Mutex
	seen map[string]time.Time
}

func (g *replayGuard) firstUse(sig string, now time.Time) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.seen == nil {
		g.seen = map[string]time.Time{}
	}
	for k, at := range g.seen {
		if now.Sub(at) > 2*WebhookWindow {
			delete(g.seen, k)
		}
	}
	if _, ok := g.seen[sig]; ok {
		return false
	}
	g.seen[sig] = now
	return true
}

// VerifyWebhook checks a signature header against body with the trigger's
// (sealed) secret, the replay window and the replay guard.
func (s *Server) VerifyWebhook(t store.Trigger, header string, body []byte) error {
	var ts, sig string
	for _, part := range strings.Split(header, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			sig = v
		}
	}
	if ts == "" || sig == "" {
		return fmt.Errorf("%w: %s must be \"t=<unix seconds>,v1=<hex HMAC-SHA256 of t.body>\"", ErrBadSignature, SignatureHeader)
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: t=%q is not unix seconds", ErrBadSignature, ts)
	}
	now := s.now()
	if d := now.Sub(time.Unix(sec, 0)); d > WebhookWindow || d < -WebhookWindow {
		return fmt.Errorf("%w: timestamp is %s away from the server's clock (allowed: %s); sign each request when sending it", ErrBadSignature, d.Round(time.Second), WebhookWindow)
	}
	secret, err := s.keys.Open(t.Secret, TriggerSecretAAD(t.Name))
	if err != nil {
		return fmt.Errorf("trigger %s: unseal secret: %w", t.Name, err)
	}
	want := SignWebhook(string(secret), time.Unix(sec, 0), body)
	if !hmac.Equal([]byte(want), []byte("t="+ts+",v1="+strings.ToLower(sig))) {
		return fmt.Errorf("%w: HMAC does not match (wrong secret, or the body changed)", ErrBadSignature)
	}
	if !s.replays.firstUse(t.Name+"\x00"+sig, now) {
		return fmt.Errorf("%w: this signature was already used; sign each request afresh", ErrBadSignature)
	}
	return nil
}

// webhookStatus maps webhook errors: a bad signature is 401.
func webhookStatus(err error) *Error {
	if errors.Is(err, ErrBadSignature) {
		return &Error{Status: http.StatusUnauthorized, Code: "bad_signature", Message: err.Error()}
	}
	return nil
}
