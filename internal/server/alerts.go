package server

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"

	"slices"
	"strings"
	"time"

	"github.com/opsbook/opsbook/internal/runbook"
	"github.com/opsbook/opsbook/internal/store"
)

// FormatAlertmanager is the webhook trigger format that receives
// Prometheus Alertmanager's webhook payload.
const FormatAlertmanager = "alertmanager"

// AlertmanagerPayload is the body Alertmanager POSTs to a webhook
// receiver (webhook_config, payload version 4).
type AlertmanagerPayload struct {
	Version           string            `json:"version"`
	GroupKey          string            `json:"groupKey"`
	TruncatedAlerts   int               `json:"truncatedAlerts"`
	Status            string            `json:"status"` // firing | resolved
	Receiver          string            `json:"receiver"`
	GroupLabels       map[string]string `json:"groupLabels"`
	CommonLabels      map[string]string `json:"commonLabels"`
	CommonAnnotations map[string]string `json:"commonAnnotations"`
	ExternalURL       string            `json:"externalURL"`
	Alerts            []Alert           `json:"alerts"`
}

// Alert is one alert of an Alertmanager notification.
type Alert struct {
	Status       string            `json:"status"` // firing | resolved
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL"`
	Fingerprint  string            `json:"fingerprint"`
}

// AlertOutcome says what a notification did, alert by alert.
type AlertOutcome struct {
	Started  []string          `json:"started"`  // run ids
	Repeated []string          `json:"repeated"` // run ids still active for a repeated alert
	Resolved []string          `json:"resolved"` // run ids told their alert resolved
	Ignored  int               `json:"ignored"`  // alerts the trigger's match does not select
	Refused  map[string]string `json:"refused,omitempty"`
}

// fingerprint is Alertmanager's fingerprint of the alert, or a hash of its
// labels when an older sender omits it.
func (a Alert) fingerprint() string {
	if a.Fingerprint != "" {
		return a.Fingerprint
	}
	h := sha256.New()
	for _, k := range slices.Sorted(maps.Keys(a.Labels)) {
		fmt.Fprintf(h, "%s\x00%s\x00", k, a.Labels[k])
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

func (a Alert) name() string {
	if n := a.Labels["alertname"]; n != "" {
		return n
	}
	return "alert"
}

// checkAlertSpec checks the Alertmanager fields of a trigger spec.
func (s *Server) checkAlertSpec(spec TriggerSpec) error {
	switch spec.Format {
	case "":
		if len(spec.Match) > 0 || len(spec.AlertParams) > 0 {
			return BadRequest("match and alert_params need \"format\": %q", FormatAlertmanager)
		}
		return nil
	case FormatAlertmanager:
		if spec.Kind != store.TriggerWebhook {
			return BadRequest("format %q is for webhook triggers", FormatAlertmanager)
		}
	default:
		return BadRequest("format must be empty (opsbook's signed JSON) or %q, not %q", FormatAlertmanager, spec.Format)
	}
	if len(spec.Match) == 0 {
		return BadRequest("an alertmanager trigger needs match: the labels that select its alerts, e.g. {\"alertname\": \"PostgresReplicaLagging\"}")
	}
	e, _ := s.catalog.Get(spec.Runbook)
	for name, src := range spec.AlertParams {
		if e != nil && e.Doc != nil && !slices.ContainsFunc(e.Doc.Front.Params, func(p runbook.Param) bool { return p.Name == name }) {
			return BadRequest("alert_params: runbook %s has no parameter %s", spec.Runbook, name)
		}
		kind, key, ok := strings.Cut(src, ".")
		if !ok || key == "" || (kind != "labels" && kind != "annotations") {
			return BadRequest("alert_params.%s: %q must be labels.NAME or annotations.NAME", name, src)
		}
	}
	return nil
}

// VerifyAlertmanager checks the bearer token Alertmanager sends
// (http_config.authorization.credentials) against the trigger's secret.
func (s *Server) VerifyAlertmanager(t store.Trigger, header string) error {
	token, ok := strings.CutPrefix(header, "Bearer ")
	if !ok || token == "" {
		return fmt.Errorf("%w: send the trigger's secret as \"Authorization: Bearer <secret>\" (Alertmanager: http_config.authorization.credentials)", ErrBadSignature)
	}
	secret, err := s.keys.Open(t.Secret, TriggerSecretAAD(t.Name))
	if err != nil {
		return fmt.Errorf("trigger %s: unseal secret: %w", t.Name, err)
	}
	if !hmac.Equal([]byte(token), secret) {
		return fmt.Errorf("%w: wrong bearer token", ErrBadSignature)
	}
	return nil
}

// ReceiveAlerts acts on an Alertmanager notification for trigger t: each
// firing alert the trigger's match selects starts one run (parameters from
// the trigger and the alert's labels and annotations, validated as
// everywhere), unless a run it started is still active; each resolved
// alert is recorded on the run it started.
func (s *Server) ReceiveAlerts(ctx context.Context, t store.Trigger, p AlertmanagerPayload, remote string) (AlertOutcome, error) {
	out := AlertOutcome{Started: []string{}, Repeated: []string{}, Resolved: []string{}}
	now := s.now()
	for _, a := range p.Alerts {
		if !matches(t.Match, a.Labels) {
			out.Ignored++
			continue
		}
		fp := a.fingerprint()
		switch a.Status {
		case "resolved":
			runID, err := s.store.ResolveAlert(ctx, t.Name, fp, now)
			if err != nil {
				return out, err
			}
			if runID != "" {
				s.alertEvent(ctx, runID, runbook.EventAlertResolved, a, fp)
				out.Resolved = append(out.Resolved, runID)
			}
		default: // firing
			claimed, active, err := s.store.ClaimAlert(ctx, t.Name, fp, now)
			if err != nil {
				return out, err
			}
			if !claimed {
				if active != "" {
					out.Repeated = append(out.Repeated, active)
				}
				continue
			}
			params := maps.Clone(t.Params)
			if params == nil {
				params = map[string]string{}
			}
			for name, src := range t.AlertParams {
				kind, key, _ := strings.Cut(src, ".")
				src := a.Labels
				if kind == "annotations" {
					src = a.Annotations
				}
				if v, ok := src[key]; ok {
					params[name] = v
				}
			}
			run, err := s.FireTrigger(ctx, t, params, remote, map[string]string{"via": "alertmanager", "alert": a.name(), "fingerprint": fp})
			if err != nil {
				s.store.ReleaseAlert(context.WithoutCancel(ctx), t.Name, fp)
				if out.Refused == nil {
					out.Refused = map[string]string{}
				}
				out.Refused[fp] = err.Error()
				s.Audit(ctx, "trigger/"+t.Name, remote, "trigger.refused", "trigger/"+t.Name,
					map[string]string{"alert": a.name(), "fingerprint": fp, "reason": err.Error()})
				continue
			}
			if err := s.store.SetAlertRun(ctx, t.Name, fp, run.ID); err != nil {
				return out, err
			}
			s.alertEvent(ctx, run.ID, runbook.EventAlertFired, a, fp)
			out.Started = append(out.Started, run.ID)
		}
	}
	return out, nil
}

// alertEvent records an alert on the run it started or touched, for the
// run page and the postmortem's timeline.
func (s *Server) alertEvent(ctx context.Context, runID string, typ runbook.EventType, a Alert, fp string) {
	text := a.name()
	if sum := a.Annotations["summary"]; sum != "" {
		text += ": " + sum
	}
	labels, _ := json.Marshal(a.Labels)
	_, err := s.store.AppendEvents(context.WithoutCancel(ctx), runID, runbook.Event{Type: typ, Text: text,
		Data: map[string]string{"fingerprint": fp, "labels": string(labels), "source": a.GeneratorURL}})
	if err != nil {
		s.log.Warn("alert not recorded on its run", "run", runID, "err", err)
	}
}

func matches(want, labels map[string]string) bool {
	for k, v := range want {
		if labels[k] != v {
			return false
		}
	}
	return true
}
