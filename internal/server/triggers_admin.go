package server

import (
	"errors"
	"net/http"

	"github.com/opsbook/opsbook/internal/auth"
	"github.com/opsbook/opsbook/internal/runs"
	"github.com/opsbook/opsbook/internal/store"
)

// TriggerSpec is what an administrator asks for when creating a trigger,
// through the API or the web form.
type TriggerSpec struct {
	Name        string            `json:"name" api:"required"`
	Kind        string            `json:"kind" api:"required"` // schedule | webhook
	Runbook     string            `json:"runbook" api:"required"`
	Environment string            `json:"environment" api:"required"`
	Params      map[string]string `json:"params,omitempty"`
	Schedule    string            `json:"schedule,omitempty"` // cron, 5 fields
	Timezone    string            `json:"timezone,omitempty"`
	CatchUp     bool              `json:"catch_up,omitempty"`
	ServiceUser string            `json:"service_user" api:"required"` // name of a service identity
	// Format "alertmanager" makes a webhook trigger a Prometheus
	// Alertmanager receiver (see alerts.go); Match and AlertParams apply.
	Format      string            `json:"format,omitempty"`
	Match       map[string]string `json:"match,omitempty"`
	AlertParams map[string]string `json:"alert_params,omitempty"`
}

// CreateTrigger checks a trigger, stores it and audits it. A webhook
// trigger's HMAC secret is returned, to be shown once: only its sealed form
// is stored.
func (s *Server) CreateTrigger(r *http.Request, spec TriggerSpec, createdBy string) (store.Trigger, string, error) {
	if err := auth.CheckName("trigger", spec.Name); err != nil {
		return store.Trigger{}, "", BadRequest("%v", err)
	}
	if _, ok := s.catalog.Get(spec.Runbook); !ok {
		return store.Trigger{}, "", BadRequest("runbook %q is not in the workspace", spec.Runbook)
	}
	if _, err := s.catalog.Workspace().Environment(spec.Environment); err != nil {
		return store.Trigger{}, "", BadRequest("%v", err)
	}
	ctx := r.Context()
	svc, err := s.store.GetUserByName(ctx, spec.ServiceUser)
	if errors.Is(err, store.ErrNotFound) || (err == nil && !svc.Service) {
		return store.Trigger{}, "", BadRequest("service user %q must name a service identity (a user created with \"service\": true whose team is granted RunbookRun)", spec.ServiceUser)
	}
	if err != nil {
		return store.Trigger{}, "", err
	}
	t := store.Trigger{Name: spec.Name, Kind: spec.Kind, Runbook: spec.Runbook, Environment: spec.Environment, Params: spec.Params,
		Schedule: spec.Schedule, Timezone: spec.Timezone, CatchUp: spec.CatchUp, ServiceUser: svc.ID, Enabled: true,
		CreatedBy: createdBy, CreatedAt: s.Now(), Format: spec.Format, Match: spec.Match, AlertParams: spec.AlertParams}
	if err := s.checkAlertSpec(spec); err != nil {
		return store.Trigger{}, "", err
	}
	var secret string
	switch spec.Kind {
	case store.TriggerSchedule:
		if _, err := runs.ParseSchedule(spec.Schedule, spec.Timezone); err != nil {
			return store.Trigger{}, "", BadRequest("%v", err)
		}
	case store.TriggerWebhook:
		if spec.Schedule != "" || spec.CatchUp {
			return store.Trigger{}, "", BadRequest("a webhook trigger has no schedule or catch-up")
		}
		secret = auth.NewToken()
		if t.Secret, err = s.keys.Seal([]byte(secret), TriggerSecretAAD(spec.Name)); err != nil {
			return store.Trigger{}, "", err
		}
	default:
		return store.Trigger{}, "", BadRequest("kind must be schedule or webhook, not %q", spec.Kind)
	}
	if err := s.store.CreateTrigger(ctx, &t); err != nil {
		return store.Trigger{}, "", err
	}
	if err := s.AuditRequest(r, "trigger.create", "trigger/"+t.Name, map[string]string{"kind": t.Kind, "runbook": t.Runbook, "environment": t.Environment, "service_user": svc.Name}); err != nil {
		return store.Trigger{}, "", err
	}
	return t, secret, nil
}

// DeleteTrigger removes a trigger and audits it.
func (s *Server) DeleteTrigger(r *http.Request, name string) error {
	if err := s.store.DeleteTrigger(r.Context(), name); err != nil {
		return err
	}
	return s.AuditRequest(r, "trigger.delete", "trigger/"+name, nil)
}
