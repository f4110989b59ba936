// Package notify tells people about runs and tasks: Slack-compatible
// webhooks, generic webhooks signed with HMAC-SHA256, and e-mail over SMTP.
//
// Delivery goes through an outbox in the store. A notable run event becomes
// a notice in the same transaction that records it (store.AppendEvents), so
// a crash can neither lose a notification nor invent one; task news becomes
// a notice under a dedupe key, so it exists once however many nodes notice
// it. A Dispatcher on every server node routes new notices to the channels
// of opsbook.yaml that want them (one delivery per notice and channel,
// enforced by the store), then claims due deliveries under a lease and sends
// them, retrying with capped exponential backoff. A delivered run notice is
// recorded on the run as a notification.sent event, so the postmortem's
// timeline shows who was told what, and when.
package notify

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/opsbook/opsbook/internal/lifecycle"
	"github.com/opsbook/opsbook/internal/lifecycle/gates"
	"github.com/opsbook/opsbook/internal/mask"
	"github.com/opsbook/opsbook/internal/runbook"
	"github.com/opsbook/opsbook/internal/store"
	"github.com/opsbook/opsbook/internal/workspace"
)

// Config configures a Dispatcher.
type Config struct {
	Store *store.Store
	// Workspace returns the current workspace: its channels and projects
	// (the server reloads opsbook.yaml while running).
	Workspace func() *workspace.Workspace
	// BaseURL is the server's public address, for links to run pages.
	BaseURL string
	// Node names this process in delivery leases (default: random).
	Node string
	// Getenv reads the server's environment for channel secrets (default os.Getenv).
	Getenv func(string) string
	Logger *slog.Logger
	// Client sends webhooks (default: 10 s timeout).
	Client *http.Client
	// Interval between rounds when nothing wakes the dispatcher (default 1 s).
	Interval time.Duration
	// Backoff is the first retry delay, doubled per attempt up to MaxBackoff
	// (defaults 5 s and 10 min); MaxAttempts attempts are made (default 12,
	// about an hour and a half) before a delivery is given up.
	Backoff, MaxBackoff time.Duration
	MaxAttempts         int
}

// Lease is how long a claimed delivery is this node's to send.
const Lease = time.Minute

// Dispatcher routes notices to channels and delivers them.
type Dispatcher struct {
	cfg  Config
	wake chan struct{}
	mu   sync.Mutex // one round at a time in this process
}

// New returns a Dispatcher; call Run to start it.
func New(cfg Config) *Dispatcher {
	if cfg.Node == "" {
		b := make([]byte, 6)
		rand.Read(b)
		cfg.Node = "node-" + hex.EncodeToString(b)
	}
	if cfg.Getenv == nil {
		cfg.Getenv = os.Getenv
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: 10 * time.Second}
	}
	if cfg.Interval <= 0 {
		cfg.Interval = time.Second
	}
	if cfg.Backoff <= 0 {
		cfg.Backoff = 5 * time.Second
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = 10 * time.Minute
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 12
	}
	return &Dispatcher{cfg: cfg, wake: make(chan struct{}, 1)}
}

// Wake makes the dispatcher run a round now (after a notable event).
func (d *Dispatcher) Wake() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// TaskScanInterval is how often Run looks for task news.
const TaskScanInterval = time.Minute

// Run delivers until ctx ends, and scans the tasks for news every
// TaskScanInterval.
func (d *Dispatcher) Run(ctx context.Context) {
	t := time.NewTicker(d.cfg.Interval)
	defer t.Stop()
	var scanned time.Time
	for {
		if time.Since(scanned) >= TaskScanInterval {
			scanned = time.Now()
			if ws := d.cfg.Workspace(); ws != nil && len(ws.Config.Notifications) > 0 {
				if _, err := ScanTasks(ctx, d.cfg.Store, ws, scanned); err != nil && ctx.Err() == nil {
					d.cfg.Logger.Warn("notifications: task scan", "err", err)
				}
			}
		}
		if due, err := d.cfg.Store.NotificationsDue(ctx); err != nil && ctx.Err() == nil {
			d.cfg.Logger.Warn("notifications", "err", err)
		} else if due {
			if _, err := d.Round(ctx); err != nil && ctx.Err() == nil {
				d.cfg.Logger.Warn("notifications", "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-d.wake:
		}
	}
}

// Round routes new notices and sends the deliveries that are due, and
// returns how many deliveries it attempted.
func (d *Dispatcher) Round(ctx context.Context) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	ws := d.cfg.Workspace()
	for {
		n, err := d.cfg.Store.RouteNotices(ctx, 100, func(n store.Notice) []string { return d.route(ctx, ws, n) })
		if err != nil {
			return 0, err
		}
		if n < 100 {
			break
		}
	}
	attempted := 0
	for {
		batch, err := d.cfg.Store.ClaimDeliveries(ctx, d.cfg.Node, Lease, 20)
		if err != nil {
			return attempted, err
		}
		for _, dl := range batch {
			d.deliver(ctx, ws, dl)
		}
		attempted += len(batch)
		if len(batch) < 20 {
			return attempted, nil
		}
	}
}

// route names the channels that want a notice.
func (d *Dispatcher) route(ctx context.Context, ws *workspace.Workspace, n store.Notice) []string {
	m, ok, err := d.compose(ctx, n)
	if err != nil {
		d.cfg.Logger.Warn("notification dropped: cannot read what it tells of", "notice", n.Dedupe, "err", err)
		return nil
	}
	if !ok {
		return nil
	}
	var out []string
	for _, c := range ws.Config.Notifications {
		if c.Wants(m.Kind, m.Project, m.Environment, m.Roles) {
			out = append(out, c.Name)
		}
	}
	return out
}

func (d *Dispatcher) projectOf(runbookPath string) string {
	if ws := d.cfg.Workspace(); ws != nil {
		if p, ok := ws.ProjectOf(runbookPath); ok {
			return p.Name
		}
	}
	return ""
}

// deliver sends one claimed delivery and records the outcome.
func (d *Dispatcher) deliver(ctx context.Context, ws *workspace.Workspace, dl store.Delivery) {
	ch, ok := channel(ws, dl.Channel)
	var err error
	var m Message
	switch {
	case !ok:
		// Removed from opsbook.yaml since it was routed: nobody to tell.
		err = fmt.Errorf("channel %q is no longer in opsbook.yaml", dl.Channel)
	default:
		var composed bool
		m, composed, err = d.compose(ctx, dl.Notice)
		if err == nil && !composed {
			err = errors.New("the event it tells of is gone")
		}
		if err == nil {
			err = d.send(ctx, ch, m)
		}
	}
	var retryAt time.Time
	if err != nil && ok && dl.Attempts+1 < d.cfg.MaxAttempts {
		retryAt = time.Now().Add(d.backoff(dl.Attempts))
	}
	if err != nil {
		// Error texts can hold a secret URL (net/http quotes it) or what a
		// receiver echoed: mask the channel's secrets before storing or logging.
		err = errors.New(d.secrets(ch).String(err.Error()))
		d.cfg.Logger.Warn("notification not delivered", "channel", dl.Channel, "notice", dl.Notice.Dedupe,
			"attempt", dl.Attempts+1, "retry_at", retryAt, "err", err)
	}
	if ferr := d.cfg.Store.FinishDelivery(ctx, dl.ID, d.cfg.Node, err, retryAt); ferr != nil {
		d.cfg.Logger.Warn("notification outcome not recorded", "delivery", dl.ID, "err", ferr)
		return
	}
	if err == nil && ch.Ticks != "" && m.RunID == "" && m.Task != "" && (m.Kind == workspace.NotifyReviewRequired || m.Kind == workspace.NotifyReviewComplete) {
		if terr := tick(ctx, d.cfg.Store, ws, m.Task, ch, m); terr != nil {
			d.cfg.Logger.Warn("notification sent but the checklist item not ticked", "task", m.Task, "item", ch.Ticks, "err", terr)
		}
	}
	if err == nil && m.RunID != "" {
		_, aerr := d.cfg.Store.AppendEvents(ctx, m.RunID, runbook.Event{Type: runbook.EventNotified, Text: m.Subject,
			Data: map[string]string{"channel": dl.Channel, "kind": m.Kind, "about": strconv.FormatInt(dl.Notice.Seq, 10)}})
		if aerr != nil {
			d.cfg.Logger.Warn("notification sent but not recorded on the run", "run", m.RunID, "err", aerr)
		}
	}
}

func (d *Dispatcher) backoff(attempts int) time.Duration {
	b := d.cfg.Backoff
	for i := 0; i < attempts && b < d.cfg.MaxBackoff; i++ {
		b *= 2
	}
	return min(b, d.cfg.MaxBackoff)
}

func channel(ws *workspace.Workspace, name string) (workspace.Channel, bool) {
	for _, c := range ws.Config.Notifications {
		if c.Name == name {
			return c, true
		}
	}
	return workspace.Channel{}, false
}

// send formats m for the channel's kind and sends it.
func (d *Dispatcher) send(ctx context.Context, c workspace.Channel, m Message) error {
	switch c.Kind {
	case workspace.ChannelSlack:
		return d.sendSlack(ctx, c, m)
	case workspace.ChannelWebhook:
		return d.sendWebhook(ctx, c, m)
	case workspace.ChannelEmail:
		return d.sendEmail(ctx, c, m)
	}
	return fmt.Errorf("channel %s: unknown type %q", c.Name, c.Kind)
}

// value reads a channel secret from the environment variable or file that
// opsbook.yaml names; what says which, for the error.
func (d *Dispatcher) value(env, file, what string) (string, error) {
	switch {
	case env != "":
		v := d.cfg.Getenv(env)
		if v == "" {
			return "", fmt.Errorf("%s: environment variable %s is empty or unset on this server", what, env)
		}
		return v, nil
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("%s: %w", what, err)
		}
		return strings.TrimSpace(string(b)), nil
	}
	return "", nil
}

// secrets returns a masker of the channel's secret values.
func (d *Dispatcher) secrets(c workspace.Channel) *mask.Masker {
	m := mask.New()
	for _, pair := range [][2]string{{c.URLEnv, c.URLFile}, {c.SecretEnv, c.SecretFile}, {c.SMTP.PasswordEnv, c.SMTP.PasswordFile}} {
		if v, err := d.value(pair[0], pair[1], ""); err == nil && v != "" {
			m.Add(v)
		}
	}
	return m
}

// tick records the channel's checklist item (ticks:) as done, once: the
// people the channel reaches were told of the planned operation before it
// runs. The server did it, so the tick goes into the store as the server's
// own (verified: it counts in a protected environment) and, for workspaces
// read without the server, into the task's lifecycle record.
func tick(ctx context.Context, st *store.Store, ws *workspace.Workspace, task string, ch workspace.Channel, m Message) error {
	t, err := gates.Load(ws, task)
	if err != nil {
		return err
	}
	note := fmt.Sprintf("notification delivered to %s: %s", ch.Name, m.Subject)
	ticks, err := st.ListTaskTicks(ctx, t.Name)
	if err != nil {
		return err
	}
	if !slices.ContainsFunc(ticks, func(tk store.TaskTick) bool { return tk.Item == ch.Ticks && tk.Ticked }) {
		if err := st.SetTaskTick(ctx, store.TaskTick{Task: t.Name, Item: ch.Ticks, Ticked: true, Actor: "opsbook", Note: note}); err != nil {
			return err
		}
	}
	if _, done := lifecycle.Ticks(t.Records)[ch.Ticks]; done {
		return nil
	}
	return t.Append(lifecycle.Record{Time: time.Now(), Type: lifecycle.Check, Item: ch.Ticks, Actor: "opsbook", Note: note})
}
