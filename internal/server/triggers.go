package server

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
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

// VerifyWebhook checks a signature header against body with the trigger's
// (sealed) secret and the replay window, and records the delivery in the
// store: the MAC is compared and remembered in canonical form (decoded
// hex), so changing the letter case of the hex is the same signature,
// and a replay is refused after a restart and on every node.
func (s *Server) VerifyWebhook(ctx context.Context, t store.Trigger, header string, body []byte) error {
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
	signedAt := time.Unix(sec, 0)
	if d := now.Sub(signedAt); d > WebhookWindow || d < -WebhookWindow {
		return fmt.Errorf("%w: timestamp is %s away from the server's clock (allowed: %s); sign each request when sending it", ErrBadSignature, d.Round(time.Second), WebhookWindow)
	}
	got, err := hex.DecodeString(sig)
	if err != nil {
		return fmt.Errorf("%w: v1 is not hex", ErrBadSignature)
	}
	secret, err := s.keys.Open(t.Secret, TriggerSecretAAD(t.Name))
	if err != nil {
		return fmt.Errorf("trigger %s: unseal secret: %w", t.Name, err)
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(ts))
	mac.Write([]byte{'.'})
	mac.Write(body)
	want := mac.Sum(nil)
	if !hmac.Equal(want, got) {
		return fmt.Errorf("%w: HMAC does not match (wrong secret, or the body changed)", ErrBadSignature)
	}
	// Remembered until the timestamp leaves the window, after which the
	// check above refuses the request anyway.
	first, err := s.store.FirstDelivery(ctx, t.Name, hex.EncodeToString(want), signedAt.Add(WebhookWindow+time.Second), now)
	if err != nil {
		return err
	}
	if !first {
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
