package ui

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/opsbook/opsbook/internal/runbook"
	"github.com/opsbook/opsbook/internal/store"
	"github.com/opsbook/opsbook/internal/web"
)

// TestMessageKeysExist: every message the package's Go code names — a
// literal T("key"), a flash=key redirect, and the keys built from a prefix
// and a value (parameter types, step kinds, task states, trigger kinds)
// — is in the catalogue in every language. A missing key shows as the
// raw key in every language; web's TestCatalogue checks only the keys
// views name. Fault: a key used from Go that nobody added to the
// catalogue (a flash=publishd redirect fails this test).
func TestMessageKeysExist(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	literal := regexp.MustCompile(`\.T\("([a-z_]+)"|flash=([a-z_]+)`)
	keys := map[string]string{} // key → where
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range literal.FindAllStringSubmatch(string(b), -1) {
			if k := m[1] + m[2]; !strings.HasSuffix(k, "_") { // "status_" + …: a prefix
				keys[k] = f
			}
		}
	}
	if len(keys) < 10 {
		t.Fatalf("found only %d message keys in the package's code: the pattern no longer matches it", len(keys))
	}
	for _, pt := range runbook.ParamTypes {
		keys["ptype_"+string(pt)] = "parameter types"
	}
	for _, k := range []string{"gate", "manual", "call"} {
		keys["stepkind_"+k] = "page.StepKind"
	}
	for _, s := range boardStates {
		keys["task_state_"+strings.ReplaceAll(s, " ", "_")] = "page.TaskState"
	}
	for _, k := range []string{store.TriggerSchedule, store.TriggerWebhook} {
		keys["trigger_"+k] = "trigger kinds"
	}
	for _, lang := range web.Languages {
		msgs := web.Messages(lang)
		for k, where := range keys {
			if _, ok := msgs[k]; !ok {
				t.Errorf("%s: message %q (%s) is not in the catalogue", lang, k, where)
			}
		}
	}
}
