package workspace

import (
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"

	"github.com/opsbook/opsbook/internal/runbook"
	"go.yaml.in/yaml/v3"
)

// Channel kinds.
const (
	ChannelSlack   = "slack"   // Slack (or Mattermost, Rocket.Chat…) incoming webhook
	ChannelWebhook = "webhook" // generic JSON POST signed with HMAC-SHA256
	ChannelEmail   = "email"   // SMTP
)

// Notification kinds a channel can filter on (Channel.Events).
const (
	NotifyWaiting        = "waiting"          // a gate, a guided failure or a manual step waits for someone
	NotifySucceeded      = "succeeded"        // a run succeeded
	NotifyFailed         = "failed"           // a run failed
	NotifyRolledBack     = "rolled_back"      // a run ended rolled back
	NotifyCancelled      = "cancelled"        // a run was cancelled
	NotifyInterrupted    = "interrupted"      // a run was found interrupted
	NotifyGuardBreached  = "guard_breached"   // a metric guard breached
	NotifyReviewRequired = "review_requested" // a task's current snapshot needs reviews
	NotifyReviewComplete = "review_complete"  // a task's current snapshot has all its reviews
	NotifyOverdue        = "overdue"          // a finished task is overdue for the archive
)

// NotifyKinds lists every notification kind, in the order docs show them.
var NotifyKinds = []string{NotifyWaiting, NotifySucceeded, NotifyFailed, NotifyRolledBack, NotifyCancelled,
	NotifyInterrupted, NotifyGuardBreached, NotifyReviewRequired, NotifyReviewComplete, NotifyOverdue}

// Channel is where notifications go. Secrets (a Slack webhook URL, an HMAC
// key, an SMTP password) are never written in opsbook.yaml: the channel
// names the environment variable or file of the server that holds them.
type Channel struct {
	Name string `json:"name"`
	Kind string `json:"type"`
	// URL of a generic webhook (not secret); URLEnv/URLFile name where a
	// secret URL is (Slack's is a credential).
	URL     string `json:"url,omitempty"`
	URLEnv  string `json:"url_env,omitempty"`
	URLFile string `json:"url_file,omitempty"`
	// SecretEnv/SecretFile hold a webhook's HMAC-SHA256 key.
	SecretEnv  string `json:"secret_env,omitempty"`
	SecretFile string `json:"secret_file,omitempty"`
	// E-mail.
	To   []string `json:"to,omitempty"`
	From string   `json:"from,omitempty"`
	SMTP SMTP     `json:"smtp,omitzero"`
	// Filters: empty means all.
	Projects     []string `json:"projects,omitempty"`
	Environments []string `json:"environments,omitempty"`
	Events       []string `json:"events,omitempty"`
	// Teams limits "waiting" notifications to gates that ask one of these
	// teams to decide (a gate with roles=); other kinds pass.
	Teams []string `json:"teams,omitempty"`
	// Muted channels get nothing (kept in the file, switched off).
	Muted bool `json:"muted,omitempty"`
	// Ticks names a pre-execution checklist item (e.g. teams-notified)
	// that a delivered review notice of a task ticks in its record.
	Ticks string      `json:"ticks,omitempty"`
	Pos   runbook.Pos `json:"-"`
}

// SMTP is how an e-mail channel reaches its mail server.
type SMTP struct {
	Host string `json:"host"`
	Port int    `json:"port"`
	// TLS is "starttls" (the default: the connection must upgrade before
	// anything is sent), "tls" (implicit TLS, port 465) or "none" (a local
	// relay on loopback only).
	TLS          string `json:"tls"`
	User         string `json:"user,omitempty"`
	PasswordEnv  string `json:"password_env,omitempty"`
	PasswordFile string `json:"password_file,omitempty"`
	// CAFile trusts a private certificate authority besides the system's.
	CAFile string `json:"ca_file,omitempty"`
}

// Wants reports whether the channel takes a notification of kind about a
// run of project in environment; roles are the teams a waiting gate asks
// (empty when it asks anyone).
func (c Channel) Wants(kind, project, environment string, roles []string) bool {
	if c.Muted {
		return false
	}
	if len(c.Events) > 0 && !slices.Contains(c.Events, kind) {
		return false
	}
	if len(c.Projects) > 0 && project != "" && !slices.Contains(c.Projects, project) {
		return false
	}
	if len(c.Environments) > 0 && environment != "" && !slices.Contains(c.Environments, environment) {
		return false
	}
	if kind == NotifyWaiting && len(c.Teams) > 0 && len(roles) > 0 {
		for _, r := range roles {
			if slices.Contains(c.Teams, r) {
				return true
			}
		}
		return false
	}
	return true
}

var channelKeys = []string{"name", "type", "url", "url_env", "url_file", "secret_env", "secret_file", "to", "from", "smtp",
	"projects", "environments", "events", "teams", "muted", "ticks"}

var smtpKeys = []string{"host", "port", "tls", "user", "password_env", "password_file", "ca_file"}

var emailRe = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[^@\s<>]+@[^@\s<>]+$`) })

func (d *decoder) channel(n *yaml.Node) Channel {
	c := Channel{Pos: pos(n)}
	d.fields(n, "notification channel", channelKeys, func(key string, k, v *yaml.Node) {
		switch key {
		case "name":
			c.Name = d.str(v, "channel name")
		case "type":
			c.Kind = d.str(v, "type")
			if !slices.Contains([]string{ChannelSlack, ChannelWebhook, ChannelEmail}, c.Kind) {
				d.errorf(v, "config-channel", "type must be slack, webhook or email, not %q", c.Kind)
			}
		case "url":
			c.URL = d.str(v, "url")
			if u, err := url.Parse(c.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				d.errorf(v, "config-channel", "url %q must be an http:// or https:// address", c.URL)
			}
		case "url_env":
			c.URLEnv = d.envName(v, "url_env")
		case "url_file":
			c.URLFile = d.str(v, "url_file")
		case "secret_env":
			c.SecretEnv = d.envName(v, "secret_env")
		case "secret_file":
			c.SecretFile = d.str(v, "secret_file")
		case "to":
			c.To = d.strings(v, "to")
			for i, addr := range c.To {
				if !emailRe().MatchString(addr) && i < len(v.Content) {
					d.errorf(v.Content[i], "config-channel", "to: %q is not an e-mail address", addr)
				}
			}
		case "from":
			c.From = d.str(v, "from")
			if !emailRe().MatchString(c.From) {
				d.errorf(v, "config-channel", "from: %q is not an e-mail address", c.From)
			}
		case "smtp":
			c.SMTP = d.smtp(v)
		case "projects":
			c.Projects = d.strings(v, "projects")
		case "environments":
			c.Environments = d.strings(v, "environments")
		case "events":
			c.Events = d.strings(v, "events")
			for i, e := range c.Events {
				if !slices.Contains(NotifyKinds, e) && i < len(v.Content) {
					msg := fmt.Sprintf("events: unknown kind %q", e)
					if s := suggest(e, NotifyKinds); s != "" {
						msg += fmt.Sprintf("; did you mean %q?", s)
					} else {
						msg += "; known kinds are " + strings.Join(NotifyKinds, ", ")
					}
					d.errorf(v.Content[i], "config-channel", "%s", msg)
				}
			}
		case "teams":
			c.Teams = d.strings(v, "teams")
		case "muted":
			c.Muted = d.boolean(v, "muted")
		case "ticks":
			c.Ticks = d.str(v, "ticks")
			if c.Ticks != "" && !nameRe().MatchString(c.Ticks) {
				d.errorf(v, "config-channel", "ticks %q must be a checklist item id such as teams-notified", c.Ticks)
			}
		}
	})
	d.entryName(n, "notification channel", c.Name)
	switch c.Kind {
	case "":
		d.errorf(n, "config-missing", "notification channel %q without a type; add type: slack, webhook or email", c.Name)
	case ChannelSlack:
		if c.URLEnv == "" && c.URLFile == "" {
			d.errorf(n, "config-channel", "slack channel %q needs url_env or url_file: a Slack webhook URL is a credential and is not written in opsbook.yaml", c.Name)
		}
		if c.URL != "" {
			d.errorf(n, "config-channel", "slack channel %q: move the webhook URL out of opsbook.yaml into url_env or url_file", c.Name)
		}
	case ChannelWebhook:
		if c.URL == "" && c.URLEnv == "" && c.URLFile == "" {
			d.errorf(n, "config-channel", "webhook channel %q needs url, url_env or url_file", c.Name)
		}
		if c.SecretEnv == "" && c.SecretFile == "" {
			d.errorf(n, "config-channel", "webhook channel %q needs secret_env or secret_file: its messages are signed with HMAC-SHA256 so the receiver can trust them", c.Name)
		}
	case ChannelEmail:
		if len(c.To) == 0 || c.From == "" || c.SMTP.Host == "" {
			d.errorf(n, "config-channel", "email channel %q needs to, from and smtp.host", c.Name)
		}
	}
	return c
}

func (d *decoder) smtp(v *yaml.Node) SMTP {
	s := SMTP{TLS: "starttls"}
	d.fields(v, "smtp", smtpKeys, func(key string, k, v *yaml.Node) {
		switch key {
		case "host":
			s.Host = d.str(v, "smtp.host")
		case "port":
			s.Port = d.integer(v, "smtp.port", 1, 65535)
		case "tls":
			s.TLS = d.str(v, "smtp.tls")
			if !slices.Contains([]string{"starttls", "tls", "none"}, s.TLS) {
				d.errorf(v, "config-channel", "smtp.tls must be starttls, tls or none, not %q", s.TLS)
			}
		case "user":
			s.User = d.str(v, "smtp.user")
		case "password_env":
			s.PasswordEnv = d.envName(v, "smtp.password_env")
		case "password_file":
			s.PasswordFile = d.str(v, "smtp.password_file")
		case "ca_file":
			s.CAFile = d.str(v, "smtp.ca_file")
		}
	})
	if s.Port == 0 {
		s.Port = 587
		if s.TLS == "tls" {
			s.Port = 465
		}
	}
	return s
}

// envVarRe is what an environment variable of the server may be called.
var envVarRe = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`) })

// envName decodes the name of an environment variable of the server.
func (d *decoder) envName(v *yaml.Node, what string) string {
	s := d.str(v, what)
	if s != "" && !envVarRe().MatchString(s) {
		d.errorf(v, "config-channel", "%s %q is not an environment variable name", what, s)
	}
	return s
}
