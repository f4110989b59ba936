package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/opsbook/opsbook/internal/workspace"
)

// Header names of a webhook delivery.
const (
	// SignatureHeader carries "t=<unix seconds>,v1=<hex HMAC-SHA256>" over
	// "<t>.<body>": the scheme opsbook verifies on its own webhook triggers.
	SignatureHeader = "X-Opsbook-Signature"
	// DeliveryHeader is the message ID, the same on every retry of it.
	DeliveryHeader = "X-Opsbook-Delivery"
)

// Sign returns the signature header value for body at time t.
func Sign(secret string, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(ts))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac.Sum(nil))
}

func (d *Dispatcher) sendWebhook(ctx context.Context, c workspace.Channel, m Message) error {
	url := c.URL
	if u, err := d.value(c.URLEnv, c.URLFile, "url"); err != nil {
		return err
	} else if u != "" {
		url = u
	}
	secret, err := d.value(c.SecretEnv, c.SecretFile, "secret")
	if err != nil {
		return err
	}
	if secret == "" {
		return fmt.Errorf("webhook channel %s has no signing secret", c.Name)
	}
	body, err := json.Marshal(m)
	if err != nil {
		return err
	}
	return d.post(ctx, url, body, map[string]string{
		SignatureHeader: Sign(secret, time.Now(), body),
		DeliveryHeader:  m.ID,
	})
}

func (d *Dispatcher) sendSlack(ctx context.Context, c workspace.Channel, m Message) error {
	url, err := d.value(c.URLEnv, c.URLFile, "url")
	if err != nil {
		return err
	}
	text := "*" + slackEscape(m.Subject) + "*\n" + slackEscape(m.Text)
	if m.Link != "" {
		text += "\n<" + m.Link + "|Open in opsbook>"
	}
	body, err := json.Marshal(map[string]string{"text": text})
	if err != nil {
		return err
	}
	return d.post(ctx, url, body, nil)
}

// slackEscape escapes the three characters Slack's mrkdwn gives meaning
// to, so a runbook title cannot forge a link or a mention.
func slackEscape(s string) string {
	var b bytes.Buffer
	for _, r := range s {
		switch r {
		case '&':
			b.WriteString("&amp;")
		case '<':
			b.WriteString("&lt;")
		case '>':
			b.WriteString("&gt;")
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// post sends a JSON body; any status but 2xx is an error (and retried).
func (d *Dispatcher) post(ctx context.Context, url string, body []byte, headers map[string]string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "opsbook-notify")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := d.cfg.Client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	reply, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("receiver answered %s: %s", resp.Status, bytes.TrimSpace(reply))
	}
	return nil
}
