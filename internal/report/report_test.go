package report

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opsbook/opsbook/internal/markdown"
	"github.com/opsbook/opsbook/internal/runbook"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// sampleRunbook is a 12-step runbook in lang with estimates on every step.
func sampleRunbook(t testing.TB, lang string) *runbook.Document {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "---\nkind: runbook\ntitle: PostgreSQL 12 to 15 upgrade\nsystem: postgres\noperation: upgrade\nlang: %s\nestimate: 1h\n---\n\n# PostgreSQL 12 to 15 upgrade\n\n## Steps\n\n", lang)
	titles := []string{"Announce the maintenance", "Stop application writes", "Check replication lag", "Take a base backup",
		"Verify the backup restores", "Run pg_upgrade --check", "Go/No-Go for the upgrade", "Run pg_upgrade",
		"Start PostgreSQL 15", "Analyze all databases", "Resume application writes", "Watch error rates"}
	for i, title := range titles {
		fmt.Fprintf(&b, "### %s\n\n", title)
		if i == 6 {
			b.WriteString("```gate {id=go-upgrade approvers=2 estimate=5m}\nBackup verified and pg_upgrade --check clean.\n```\n\n")
			continue
		}
		fmt.Fprintf(&b, "```sh {id=s%02d estimate=%dm}\ntrue\n```\n\n```sh {verify}\ntrue\n```\n\n", i+1, i%4+2)
	}
	doc, diags := markdown.Parse("ops/active/2025-03-01-postgres-upgrade-v12-to-v15/2025-03-01-postgres-upgrade-v12-to-v15-runbook.md", []byte(b.String()))
	if runbook.HasErrors(diags) {
		t.Fatalf("sample runbook: %v", diags)
	}
	return doc
}

// sampleEvents is a run of sampleRunbook: a retry, a skipped step, a
// two-person gate, an anomaly, a guard breach answered with continue, and
// an emergency override.
func sampleEvents() []runbook.Event {
	t0 := time.Date(2025, 3, 1, 22, 0, 0, 0, time.UTC)
	at := t0
	var evs []runbook.Event
	add := func(d time.Duration, ev runbook.Event) {
		at = at.Add(d)
		ev.Time, ev.RunID, ev.Seq = at, "r-01JNPQ7Z8K", int64(len(evs)+1)
		evs = append(evs, ev)
	}
	add(0, runbook.Event{Type: runbook.EventRunStarted, Actor: "ann@example.com", Text: "PostgreSQL 12 to 15 upgrade",
		Data: map[string]string{"env": "production", "snapshot": "sha256:" + strings.Repeat("ab", 32), "user": "ann@example.com", "emergency": "primary disk 96% full, upgrade frees 40 GB"}})
	ok := func(id string, took time.Duration) {
		add(time.Second, runbook.Event{Type: runbook.EventStepStarted, Step: id, Host: "local", Attempt: 1})
		add(took, runbook.Event{Type: runbook.EventStepVerified, Step: id, Host: "local", Data: map[string]string{"kind": "verify", "result": "pass"}})
		add(time.Second, runbook.Event{Type: runbook.EventStepFinished, Step: id, Host: "local", Data: map[string]string{"status": "succeeded", "exit_code": "0"}})
	}
	ok("s01", 90*time.Second)
	ok("s02", 2*time.Minute)
	// s03 fails once, then passes.
	add(time.Second, runbook.Event{Type: runbook.EventStepStarted, Step: "s03", Host: "local", Attempt: 1})
	add(time.Minute, runbook.Event{Type: runbook.EventStepVerified, Step: "s03", Host: "local", Text: "lag 42 MB > 16 MB", Data: map[string]string{"kind": "verify", "result": "fail"}})
	add(time.Second, runbook.Event{Type: runbook.EventStepRetry, Step: "s03", Attempt: 2, Text: "verification failed", Data: map[string]string{"backoff": "30s"}})
	add(30*time.Second, runbook.Event{Type: runbook.EventStepStarted, Step: "s03", Host: "local", Attempt: 2})
	add(time.Minute, runbook.Event{Type: runbook.EventStepVerified, Step: "s03", Host: "local", Data: map[string]string{"kind": "verify", "result": "pass"}})
	add(time.Second, runbook.Event{Type: runbook.EventStepFinished, Step: "s03", Host: "local", Data: map[string]string{"status": "succeeded", "exit_code": "0"}})
	ok("s04", 6*time.Minute)
	add(10*time.Second, runbook.Event{Type: runbook.EventAnomaly, Actor: "bob@example.com", Text: "backup throughput halved while the nightly batch ran"})
	ok("s05", 4*time.Minute)
	add(time.Second, runbook.Event{Type: runbook.EventStepSkipped, Step: "s06", Actor: "ann@example.com", Text: "--check ran in the rehearsal an hour ago"})
	add(time.Second, runbook.Event{Type: runbook.EventGateWaiting, Step: "go-upgrade", Text: "Backup verified", Data: map[string]string{"approvers": "2"}})
	add(2*time.Minute, runbook.Event{Type: runbook.EventGateDecided, Step: "go-upgrade", Actor: "bob@example.com", Text: "restore verified on stg-db2", Data: map[string]string{"decision": "go"}})
	add(time.Minute, runbook.Event{Type: runbook.EventGateDecided, Step: "go-upgrade", Actor: "carol@example.com", Text: "check output clean", Data: map[string]string{"decision": "go"}})
	add(0, runbook.Event{Type: runbook.EventStepFinished, Step: "go-upgrade", Data: map[string]string{"status": "succeeded"}})
	ok("s08", 11*time.Minute)
	ok("s09", time.Minute)
	add(5*time.Second, runbook.Event{Type: runbook.EventGuardBreached, Data: map[string]string{"guard": "error_rate", "value": "0.07", "threshold": "0.05", "action": "pause"}})
	add(time.Second, runbook.Event{Type: runbook.EventAskWaiting, Text: "guard error_rate breached: continue, abort or roll back?", Data: map[string]string{"options": "continue,abort,rollback", "guard": "error_rate"}})
	add(time.Minute, runbook.Event{Type: runbook.EventAskAnswered, Actor: "ann@example.com", Text: "connection pool warming up", Data: map[string]string{"choice": "continue"}})
	ok("s10", 3*time.Minute)
	ok("s11", 2*time.Minute)
	ok("s12", 5*time.Minute)
	add(time.Second, runbook.Event{Type: runbook.EventRunFinished, Data: map[string]string{"status": "succeeded"}})
	return evs
}

func sampleInput(t testing.TB, lang string, filled bool) Input {
	in := Input{Task: "2025-03-01-postgres-upgrade-v12-to-v15", Lang: lang, Runbook: sampleRunbook(t, lang)}
	ticked := time.Date(2025, 3, 1, 20, 15, 0, 0, time.UTC)
	for _, id := range []string{"prerequisites", "change-approved", "teams-notified", "window-confirmed", "backups-done", "rollback-ready"} {
		it := Item{ID: id, Text: strings.ReplaceAll(id, "-", " ")}
		if filled {
			it.Ticked, it.By, it.At = true, "ann@example.com", ticked
			ticked = ticked.Add(5 * time.Minute)
		}
		in.Items = append(in.Items, it)
	}
	in.Approved = []Approval{{By: "bob@example.com", At: time.Date(2025, 2, 28, 10, 0, 0, 0, time.UTC)}, {By: "carol@example.com", At: time.Date(2025, 2, 28, 11, 30, 0, 0, time.UTC)}}
	if filled {
		evs := sampleEvents()
		in.Events = evs
		in.Run = &runbook.Run{ID: "r-01JNPQ7Z8K", Runbook: in.Runbook.Path, Environment: "production", Status: runbook.RunSucceeded,
			CreatedBy: "ann@example.com", StartedAt: evs[0].Time, FinishedAt: evs[len(evs)-1].Time, Emergency: "primary disk 96% full, upgrade frees 40 GB"}
	}
	return in
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (go test -update rewrites it); got:\n%s", name, got)
	}
}

func TestGolden(t *testing.T) {
	tests := []struct {
		name   string
		lang   string
		filled bool
		write  func(*bytes.Buffer, Input) error
	}{
		{"checklist-blank.en.md", "en", false, func(b *bytes.Buffer, in Input) error { return WriteChecklistMarkdown(b, in) }},
		{"checklist-filled.en.md", "en", true, func(b *bytes.Buffer, in Input) error { return WriteChecklistMarkdown(b, in) }},
		{"checklist-filled.zh.md", "zh", true, func(b *bytes.Buffer, in Input) error { return WriteChecklistMarkdown(b, in) }},
		{"checklist-filled.en.html", "en", true, func(b *bytes.Buffer, in Input) error { return WriteChecklistHTML(b, in) }},
		{"postmortem.en.md", "en", true, func(b *bytes.Buffer, in Input) error { return WritePostmortem(b, in) }},
		{"postmortem.zh.md", "zh", true, func(b *bytes.Buffer, in Input) error { return WritePostmortem(b, in) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := tt.write(&buf, sampleInput(t, tt.lang, tt.filled)); err != nil {
				t.Fatal(err)
			}
			golden(t, tt.name, buf.Bytes())
		})
	}
}

func TestFilledRows(t *testing.T) {
	in := sampleInput(t, "en", true)
	rows := in.Rows()
	if len(rows) != 12 {
		t.Fatalf("%d rows", len(rows))
	}
	tests := []struct {
		n                                   int
		start, duration, result, verif, dec string
	}{
		{1, "22:00:01", "1m31s", "succeeded", "pass", ""},
		{3, "22:03:35", "2m32s", "succeeded (attempts: 2)", "pass (1 failed before)", ""},
		{6, "", "", "skipped: --check ran in the rehearsal an hour ago", "", ""},
		{7, "22:16:23", "3m", "succeeded", "", "Go — bob@example.com; Go — carol@example.com"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.n), func(t *testing.T) {
			r := rows[tt.n-1]
			if r.Start != tt.start || r.Duration != tt.duration || r.Result != tt.result || r.Verification != tt.verif || r.Decision != tt.dec {
				t.Errorf("row %d = start %q duration %q result %q verification %q decision %q", tt.n, r.Start, r.Duration, r.Result, r.Verification, r.Decision)
			}
		})
	}
}

func TestPostmortemDeviations(t *testing.T) {
	v, err := Postmortem(sampleInput(t, "en", true))
	if err != nil {
		t.Fatal(err)
	}
	joined := strings.Join(v.Deviations, "\n")
	for _, want := range []string{"**Emergency override**", "Step `s06` skipped by ann@example.com", "Step `s03` was retried 1 time(s)",
		"a verify check failed: lag 42 MB > 16 MB", "Guard error_rate breached (0.07, threshold 0.05): pause"} {
		if !strings.Contains(joined, want) {
			t.Errorf("deviations lack %q:\n%s", want, joined)
		}
	}
	if _, err := Postmortem(sampleInput(t, "en", false)); err == nil {
		t.Error("a postmortem without a run was accepted")
	}
}

func TestFormatDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{0: "0s", 45 * time.Second: "45s", 5 * time.Minute: "5m",
		125 * time.Second: "2m05s", 90 * time.Minute: "1h30m", 2 * time.Hour: "2h", time.Hour + 5*time.Second: "1h00m05s"} {
		if got := formatDuration(d); got != want {
			t.Errorf("formatDuration(%v) = %q, want %q", d, got, want)
		}
	}
	if signedDuration(-90*time.Second) != "−1m30s" || signedDuration(0) != "±0s" || signedDuration(time.Minute) != "+1m" {
		t.Error("signedDuration")
	}
}

// TestFanoutHostRows: a step over several hosts gets a sub-row per host in
// the checklist (a host never started says so) and its hosts in the
// postmortem's timeline.
func TestFanoutHostRows(t *testing.T) {
	doc, diags := markdown.Parse("deploy.md", []byte("---\nkind: runbook\ntitle: Deploy\ntargets:\n  web: {role: web}\n---\n\n# Deploy\n\n## Steps\n\n### Roll out\n\n```sh {id=roll target=web parallel=2 batch=2}\ntrue\n```\n\n```sh {verify}\ntrue\n```\n"))
	if runbook.HasErrors(diags) {
		t.Fatal(diags)
	}
	t0 := time.Date(2025, 3, 1, 22, 0, 0, 0, time.UTC)
	var evs []runbook.Event
	add := func(sec int, ev runbook.Event) {
		ev.Time, ev.RunID, ev.Seq = t0.Add(time.Duration(sec)*time.Second), "r-1", int64(len(evs)+1)
		evs = append(evs, ev)
	}
	add(0, runbook.Event{Type: runbook.EventRunStarted, Data: map[string]string{"env": "staging"}})
	add(1, runbook.Event{Type: runbook.EventStepStarted, Step: "roll", Attempt: 1, Data: map[string]string{"hosts": "web1,web2,web3", "parallel": "2", "batch": "2", "max_failures": "0"}})
	add(1, runbook.Event{Type: runbook.EventStepStarted, Step: "roll", Host: "web1", Attempt: 1, Data: map[string]string{"batch": "1"}})
	add(1, runbook.Event{Type: runbook.EventStepStarted, Step: "roll", Host: "web2", Attempt: 1, Data: map[string]string{"batch": "1"}})
	add(3, runbook.Event{Type: runbook.EventStepVerified, Step: "roll", Host: "web1", Data: map[string]string{"kind": "verify", "result": "pass"}})
	add(3, runbook.Event{Type: runbook.EventStepFinished, Step: "roll", Host: "web1", Data: map[string]string{"status": "succeeded", "exit_code": "0"}})
	add(4, runbook.Event{Type: runbook.EventStepFinished, Step: "roll", Host: "web2", Text: "could not connect: ssh web2: connection refused\nmore", Data: map[string]string{"status": "failed", "exit_code": "-1"}})
	add(4, runbook.Event{Type: runbook.EventStepFinished, Step: "roll", Text: "1 of 3 hosts failed", Data: map[string]string{"status": "failed", "exit_code": "-1"}})
	add(4, runbook.Event{Type: runbook.EventRunFinished, Data: map[string]string{"status": "failed"}})
	in := Input{Task: "deploy", Lang: "en", Runbook: doc, Run: &runbook.Run{ID: "r-1", Environment: "staging"}, Events: evs}
	var b bytes.Buffer
	if err := WriteChecklistMarkdown(&b, in); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"| | ↳ web1 (batch 1) | | 22:00:01 | 22:00:03 | 2s | ✓ succeeded | verify pass | | |",
		"| | ↳ web2 (batch 1) | | 22:00:01 | 22:00:04 | 3s | ✗ failed: could not connect: ssh web2: connection refused … |  | | |",
		"| | ↳ web3 | |  |  |  | – not started |  | | |",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("checklist lacks %q:\n%s", want, b.String())
		}
	}
	b.Reset()
	if err := WritePostmortem(&b, in); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Step `roll` started on 3 host(s): web1,web2,web3 (parallel 2, batch 2, max_failures 0)", "`roll` @web2 finished: failed"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("postmortem lacks %q", want)
		}
	}
}
