package workspace

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opsbook/opsbook/internal/runbook"
)

const fullConfig = `name: payments
lang: zh
projects:
  - name: payments-db
    runbooks: [ops/runbooks/postgres-*.md, "ops/active/**/*-runbook.md"]
    tags: [db]
environments:
  - name: dev
  - name: staging
    variables:
      PGDATABASE: payments
    hosts:
      - name: bastion
        address: bastion.staging.example.com
      - name: db1
        address: 10.0.1.10
        port: 2222
        user: ops
        tags: {role: db, primary: "true"}
        bastion: bastion
    known_hosts: ops/known_hosts
  - name: production
    protected: true
    prometheus: http://prometheus.prod:9090
    windows:
      - days: [tue-thu]
        start: "22:00"
        end: "02:00"
        tz: Asia/Shanghai
    freezes:
      - from: 2025-12-20
        to: 2026-01-04
        reason: year-end
`

func TestParseConfig(t *testing.T) {
	cfg, err := ParseConfig("opsbook.yaml", []byte(fullConfig), "/x/y")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Name != "payments" || cfg.Lang != "zh" {
		t.Errorf("name/lang = %q/%q", cfg.Name, cfg.Lang)
	}
	if len(cfg.Projects) != 1 || len(cfg.Projects[0].Runbooks) != 2 {
		t.Fatalf("projects = %+v", cfg.Projects)
	}
	if len(cfg.Environments) != 3 {
		t.Fatalf("environments = %+v", cfg.Environments)
	}
	dev, staging, prod := cfg.Environments[0], cfg.Environments[1], cfg.Environments[2]
	if dev.Protected || dev.Reviewers != 0 || dev.Rehearsal {
		t.Errorf("dev gates = %+v", dev)
	}
	if prod.Prometheus != "http://prometheus.prod:9090" || dev.Prometheus != "" {
		t.Errorf("prometheus = %q / %q", prod.Prometheus, dev.Prometheus)
	}
	if !prod.Protected || prod.Reviewers != 2 || !prod.Rehearsal {
		t.Errorf("production defaults: protected=%v reviewers=%d rehearsal=%v, want true 2 true", prod.Protected, prod.Reviewers, prod.Rehearsal)
	}
	db1, ok := staging.Host("db1")
	if !ok || db1.Port != 2222 || db1.User != "ops" || db1.Tags["role"] != "db" || db1.Bastion != "bastion" {
		t.Errorf("db1 = %+v", db1)
	}
	if staging.KnownHosts != "ops/known_hosts" || staging.Variables["PGDATABASE"] != "payments" {
		t.Errorf("staging = %+v", staging)
	}
	w := prod.Windows[0]
	if got := w.String(); got != "Tue,Wed,Thu 22:00-02:00 Asia/Shanghai" {
		t.Errorf("window = %s", got)
	}
	if f := prod.Freezes[0]; f.From.Format(time.DateOnly) != "2025-12-20" || f.Reason != "year-end" {
		t.Errorf("freeze = %+v", f)
	}
}

func TestParseConfigDefaults(t *testing.T) {
	cfg, err := ParseConfig("opsbook.yaml", nil, "/srv/acme-ops")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Name != "acme-ops" || cfg.Lang != "en" {
		t.Errorf("defaults = %+v", cfg)
	}
}

func TestParseConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string // each must appear among the diagnostics
	}{
		{"unknown top key", "name: x\nenviroments: []\n",
			[]string{`opsbook.yaml:2:1: error: opsbook.yaml: unknown key "enviroments"; did you mean "environments"?`}},
		{"unknown env key", "environments:\n  - name: prod\n    protcted: true\n",
			[]string{`opsbook.yaml:3:5: error: environment: unknown key "protcted"; did you mean "protected"?`}},
		{"unknown key far from all", "zzzzzzzzzz: 1\n",
			[]string{`unknown key "zzzzzzzzzz"; known keys are name, lang, projects, environments`}},
		{"duplicate env", "environments:\n  - name: prod\n  - name: prod\n",
			[]string{`opsbook.yaml:3:5: error: environment "prod" is declared twice`}},
		{"duplicate project", "projects:\n  - name: db\n  - name: db\n",
			[]string{`opsbook.yaml:3:5: error: project "db" is declared twice; merge the two entries`}},
		{"bad project name", "projects:\n  - name: my db\n",
			[]string{`opsbook.yaml:2:5: error: project name "my db" may only use letters, digits`}},
		{"bad tz", "environments:\n  - name: prod\n    windows:\n      - {days: [mon], start: \"09:00\", end: \"17:00\", tz: Mars/Olympus}\n",
			[]string{`opsbook.yaml:4:57: error: unknown time zone "Mars/Olympus"`}},
		{"bad clock", "environments:\n  - name: prod\n    windows:\n      - days: [mon]\n        start: \"25:00\"\n        end: 9:00\n",
			[]string{`opsbook.yaml:5:16: error: start: "25:00" is not HH:MM`, `opsbook.yaml:6:14: error: end: "9:00" is not HH:MM`}},
		{"bad day", "environments:\n  - name: prod\n    windows:\n      - {days: [funday], start: \"09:00\", end: \"10:00\"}\n",
			[]string{`"funday" is not a day`}},
		{"window missing parts", "environments:\n  - name: prod\n    windows:\n      - days: [mon]\n",
			[]string{`opsbook.yaml:4:9: error: a window needs days, start and end`}},
		{"bad lang", "lang: fr\n", []string{`opsbook.yaml:1:7: error: lang must be en or zh, not "fr"`}},
		{"bad bool", "environments:\n  - name: prod\n    protected: yes please\n",
			[]string{`opsbook.yaml:3:16: error: protected must be true or false`}},
		{"bad prometheus URL", "environments:\n  - name: prod\n    prometheus: prometheus:9090\n",
			[]string{`opsbook.yaml:3:17: error: prometheus "prometheus:9090" is not an http(s) URL`}},
		{"bad reviewers", "environments:\n  - name: prod\n    reviewers: many\n",
			[]string{`opsbook.yaml:3:16: error: reviewers must be a whole number from 0 to 10`}},
		{"env without name", "environments:\n  - protected: true\n",
			[]string{`opsbook.yaml:2:5: error: environment without a name`}},
		{"host without address", "environments:\n  - name: prod\n    hosts:\n      - name: db1\n",
			[]string{`opsbook.yaml:4:9: error: host "db1" has no address`}},
		{"unknown bastion", "environments:\n  - name: prod\n    hosts:\n      - {name: db1, address: 10.0.0.1, bastion: jump}\n",
			[]string{`bastion "jump" is not a host of environment "prod"`}},
		// Fault: a host with a bastion and no name used to panic lint, runs
		// and serve (the bastion check looked the nameless host up by name).
		{"bastion on a host without a name", "environments:\n  - name: prod\n    hosts:\n      - {bastion: x}\n",
			[]string{`opsbook.yaml:4:9: error: host without a name`, `opsbook.yaml:4:9: error: host "" has no address`}},
		{"bastion naming a nameless host", "environments:\n  - name: prod\n    hosts:\n      - {address: a}\n      - {name: b, address: c, bastion: \"\"}\n      - {name: d, address: e, bastion: x}\n",
			[]string{`opsbook.yaml:4:9: error: host without a name`, `opsbook.yaml:6:9: error: host "d": bastion "x" is not a host`}},
		{"duplicate host", "environments:\n  - name: prod\n    hosts:\n      - {name: a, address: x}\n      - {name: a, address: y}\n",
			[]string{`opsbook.yaml:5:9: error: host "a" is declared twice`}},
		{"bad port", "environments:\n  - name: prod\n    hosts:\n      - {name: a, address: x, port: 70000}\n",
			[]string{`port must be a whole number from 1 to 65535`}},
		{"bad variable", "environments:\n  - name: prod\n    variables:\n      1BAD: x\n      OPSBOOK_ENV: y\n",
			[]string{`opsbook.yaml:4:7: error: variable name "1BAD": use upper-case letters`, `opsbook.yaml:5:7: error: variable name OPSBOOK_ENV is reserved`}},
		{"freeze reversed", "environments:\n  - name: prod\n    freezes:\n      - {from: 2026-01-04, to: 2025-12-20}\n",
			[]string{`freeze ends (2025-12-20) before it starts (2026-01-04)`}},
		{"freeze bad date", "environments:\n  - name: prod\n    freezes:\n      - {from: christmas, to: 2025-12-20}\n",
			[]string{`from: "christmas" is not a date`}},
		{"known_hosts outside", "environments:\n  - name: prod\n    known_hosts: /etc/ssh/ssh_known_hosts\n",
			[]string{`must be a path inside the workspace`}},
		{"bad glob", "projects:\n  - name: p\n    runbooks: [\"ops/[x\"]\n",
			[]string{`opsbook.yaml:3:16: error: runbooks glob "ops/[x"`}},
		{"syntax", "name: x\n  lang: en\n", []string{`opsbook.yaml:2:1: error: YAML syntax error`}},
		{"not a mapping", "- a\n- b\n", []string{`opsbook.yaml:1:1: error: opsbook.yaml must be a mapping`}},
		{"environments not a list", "environments: prod\n", []string{`opsbook.yaml:1:15: error: environments must be a list`}},
		{"server not a URL", "server: opsbook.example.com\n", []string{`opsbook.yaml:1:9: error: server "opsbook.example.com" must be the server's address`}},
		{"server with a password", "server: https://a:b@ops.example.com\n", []string{`must be the server's address`}},
		// The name and key go into git's allowed-signers file: nothing may smuggle options or lines in.
		{"signer name with options", "signers:\n  - name: 'bob@example.com,* cert-authority'\n    key: ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEX4j0JbVmFG3T8bGQ2zq8kYpWJvHc7PjG1t6kZz1m9x\n",
			[]string{`opsbook.yaml:2:11: error: signer name "bob@example.com,* cert-authority"`}},
		{"signer key not a key", "signers:\n  - name: bob@example.com\n    key: hunter2\n", []string{`opsbook.yaml:3:10: error: signer key: "hunter2" is not an SSH public key`}},
		{"signer key two lines", "signers:\n  - name: bob@example.com\n    key: \"ssh-ed25519 AAAA\\nssh-rsa AAAA\"\n", []string{`signer key: one line only`}},
		{"signer key of another type", "signers:\n  - name: bob@example.com\n    key: ssh-rsa AAAAC3NzaC1lZDI1NTE5AAAAIEX4j0JbVmFG3T8bGQ2zq8kYpWJvHc7PjG1t6kZz1m9x\n", []string{`the key's blob is not a ssh-rsa key`}},
		{"signer without key", "signers:\n  - name: bob@example.com\n", []string{`signer bob@example.com without a key`}},
		{"signer twice", "signers:\n  - {name: bob@example.com, key: ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEX4j0JbVmFG3T8bGQ2zq8kYpWJvHc7PjG1t6kZz1m9x}\n  - {name: bob@example.com, key: ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEX4j0JbVmFG3T8bGQ2zq8kYpWJvHc7PjG1t6kZz1m9x}\n",
			[]string{`signer "bob@example.com" is declared twice`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseConfig("opsbook.yaml", []byte(tt.yaml), "/w")
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("err = %v, want a *ConfigError", err)
			}
			for _, want := range tt.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("diagnostics:\n%s\nwant one containing:\n%s", err, want)
				}
			}
		})
	}
}

// TestConfigRefusesHostileVariableNames: a variable in opsbook.yaml
// reaches every step's environment, so every name that changes how a
// shell or the loader runs code (fault: BASH_ENV, LD_PRELOAD, PATH, …) and
// every name outside the allow-list is an error at its line and column.
func TestConfigRefusesHostileVariableNames(t *testing.T) {
	for _, name := range runbook.HostileEnvNames() {
		t.Run(name, func(t *testing.T) {
			doc := fmt.Sprintf("environments:\n  - name: prod\n    variables:\n      %q: x\n", name)
			_, err := ParseConfig("opsbook.yaml", []byte(doc), "/w")
			if err == nil || !strings.Contains(err.Error(), "opsbook.yaml:4:7: error: variable name") {
				t.Fatalf("variable %q accepted or reported elsewhere: %v", name, err)
			}
		})
	}
	if _, err := ParseConfig("opsbook.yaml", []byte("environments:\n  - name: prod\n    variables:\n      DB_HOST: x\n"), "/w"); err != nil {
		t.Fatalf("an ordinary name is refused: %v", err)
	}
}

func TestWindowContains(t *testing.T) {
	shanghai, _ := time.LoadLocation("Asia/Shanghai")
	overnight := Window{Days: []time.Weekday{time.Tuesday}, Start: "22:00", End: "02:00", TZ: "Asia/Shanghai"}
	office := Window{Days: []time.Weekday{time.Monday, time.Friday}, Start: "09:00", End: "17:30"}
	tests := []struct {
		name string
		w    Window
		at   time.Time
		want bool
	}{
		{"overnight evening of opening day", overnight, time.Date(2025, 6, 3, 22, 30, 0, 0, shanghai), true}, // Tuesday
		{"overnight after midnight", overnight, time.Date(2025, 6, 4, 1, 59, 0, 0, shanghai), true},
		{"overnight end is exclusive", overnight, time.Date(2025, 6, 4, 2, 0, 0, 0, shanghai), false},
		{"overnight wrong day", overnight, time.Date(2025, 6, 4, 22, 30, 0, 0, shanghai), false},
		{"overnight converts zones", overnight, time.Date(2025, 6, 3, 14, 30, 0, 0, time.UTC), true},
		{"office inside", office, time.Date(2025, 6, 6, 12, 0, 0, 0, time.UTC), true},
		{"office before", office, time.Date(2025, 6, 6, 8, 59, 0, 0, time.UTC), false},
		{"office wrong day", office, time.Date(2025, 6, 4, 12, 0, 0, 0, time.UTC), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.w.Contains(tt.at); got != tt.want {
				t.Errorf("Contains(%s) = %v, want %v", tt.at, got, tt.want)
			}
		})
	}
	f := Freeze{From: time.Date(2025, 12, 20, 0, 0, 0, 0, time.UTC), To: time.Date(2026, 1, 4, 0, 0, 0, 0, time.UTC)}
	for _, c := range []struct {
		at   time.Time
		want bool
	}{
		{time.Date(2025, 12, 19, 23, 59, 0, 0, time.UTC), false},
		{time.Date(2025, 12, 20, 0, 0, 0, 0, time.UTC), true},
		{time.Date(2026, 1, 4, 23, 0, 0, 0, time.UTC), true},
		{time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC), false},
	} {
		if got := f.Contains(c.at); got != c.want {
			t.Errorf("freeze.Contains(%s) = %v, want %v", c.at, got, c.want)
		}
	}
}

func TestFindAndLoad(t *testing.T) {
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, ConfigFile), []byte(fullConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	deep := filepath.Join(root, "ops", "active", "task")
	if err := os.MkdirAll(deep, 0o755); err != nil {
		t.Fatal(err)
	}
	w, err := Find(deep)
	if err != nil {
		t.Fatal(err)
	}
	if w.Dir != root {
		t.Errorf("Dir = %s, want %s", w.Dir, root)
	}
	if _, err := w.Environment("production"); err != nil {
		t.Error(err)
	}
	_, err = w.Environment("prod")
	if err == nil || !strings.Contains(err.Error(), `unknown environment "prod"; opsbook.yaml declares dev, staging, production`) {
		t.Errorf("Environment(prod) error = %v", err)
	}
	t.Setenv("OPSBOOK_STATE_DIR", "")
	if got := w.StateDir(); got != filepath.Join(root, ".opsbook") {
		t.Errorf("StateDir = %s", got)
	}
	t.Setenv("OPSBOOK_STATE_DIR", "/var/lib/opsbook")
	if got := w.StateDir(); got != "/var/lib/opsbook" {
		t.Errorf("StateDir with override = %s", got)
	}
	if got := w.Rel(filepath.Join(deep, "x.md")); got != "ops/active/task/x.md" {
		t.Errorf("Rel = %s", got)
	}

	_, err = Find(t.TempDir())
	if !errors.Is(err, ErrNoWorkspace) || !strings.Contains(err.Error(), "run `opsbook init`") {
		t.Errorf("Find without workspace: %v", err)
	}
}

func TestProjectGlobs(t *testing.T) {
	root := t.TempDir()
	for _, f := range []string{"ops/runbooks/postgres-backup.md", "ops/runbooks/redis.md", "ops/active/2025-01-01-pg-upgrade-x/2025-01-01-pg-upgrade-x-runbook.md", ".opsbook/ops/runbooks/postgres-x.md"} {
		p := filepath.Join(root, f)
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, nil, 0o644)
	}
	w := &Workspace{Dir: root}
	p := Project{Name: "db", Runbooks: []string{"ops/runbooks/postgres-*.md", "ops/active/**/*-runbook.md"}}
	got, err := w.Runbooks(p)
	if err != nil {
		t.Fatal(err)
	}
	want := "ops/active/2025-01-01-pg-upgrade-x/2025-01-01-pg-upgrade-x-runbook.md ops/runbooks/postgres-backup.md"
	if strings.Join(got, " ") != want {
		t.Errorf("Runbooks = %v, want %s", got, want)
	}
	w.Config.Projects = []Project{p}
	if _, ok := w.ProjectOf("ops/runbooks/redis.md"); ok {
		t.Error("redis.md should match no project")
	}
}
