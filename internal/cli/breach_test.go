package cli

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Fault class: a guard breach during the last step, which the run used to
// drop. It is an event, and `opsbook show` names it with its step.
func TestShowListsGuardBreach(t *testing.T) {
	prom := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1700000000,"9"]}]}}`)
	}))
	defer prom.Close()
	dir := t.TempDir()
	doc := "---\nkind: runbook\ntitle: Watched\nguards:\n  - name: errors\n    query: error_rate\n    threshold: \"> 1\"\n    interval: 50ms\n    on_breach: pause\n---\n\n# Watched\n\n## Steps\n\n### Last\n\n```sh {id=last}\nsleep 0.5\n```\n"
	must(t, os.WriteFile(filepath.Join(dir, "opsbook.yaml"), []byte("name: w\nenvironments:\n  - name: dev\n    prometheus: "+prom.URL+"\n"), 0o644))
	must(t, os.WriteFile(filepath.Join(dir, "w.md"), []byte(doc), 0o644))
	t.Setenv("OPSBOOK_PROMETHEUS_URL", "")
	cli := func(args ...string) (int, string) {
		var out, errb bytes.Buffer
		code := Main(context.Background(), append([]string{"-C", dir}, args...), strings.NewReader(""), &out, &errb)
		return code, out.String() + errb.String()
	}
	if code, out := cli("run", filepath.Join(dir, "w.md"), "--env", "dev"); code != ExitFailed {
		t.Fatalf("a paused breach with nobody to ask: exit %d, want %d\n%s", code, ExitFailed, out)
	}
	_, list := cli("runs")
	id := strings.Fields(strings.Split(list, "\n")[1])[0]
	_, out := cli("show", id)
	if !strings.Contains(out, "guard breached during [last]") || !strings.Contains(out, "Guard errors breached (9, threshold > 1) during step last: pause") {
		t.Fatalf("show does not list the breach:\n%s", out)
	}
}
