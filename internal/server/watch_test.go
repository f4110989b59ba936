package server

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opsbook/opsbook/internal/secret"
	"github.com/opsbook/opsbook/internal/store"
)

// lockedBuffer is a log destination the server's goroutines and the test
// share.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

const watchRunbook = `---
kind: runbook
title: Watched
---

# Watched

## Steps

### Say hello

` + "```sh {verify=none reason=\"a greeting\"}\necho hello\n```\n"

// TestWatcherKeepsLastGoodConfig: fault — opsbook.yaml is edited, while
// the server runs, into one with a host that has a bastion and no name
// (which used to panic the watcher and kill the process). The server keeps
// serving the workspace it had, says why on /readyz and in the log, and
// takes the config again once it is fixed.
func TestWatcherKeepsLastGoodConfig(t *testing.T) {
	ws := t.TempDir()
	write := func(rel, text string) {
		t.Helper()
		p := filepath.Join(ws, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		// Written aside and renamed, as editors save, so the watcher never
		// reads half a file.
		if err := os.WriteFile(p+".tmp", []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(p+".tmp", p); err != nil {
			t.Fatal(err)
		}
	}
	good := "name: watched\nenvironments:\n  - name: dev\n"
	write("opsbook.yaml", good)
	write("ops/runbooks/watched.md", watchRunbook)

	ctx, cancel := context.WithCancel(context.Background())
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "server.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	keys, err := secret.NewKeyring("test", bytes.Repeat([]byte{7}, secret.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	logs := &lockedBuffer{}
	s, err := New(Config{Store: st, Workspace: ws, Keys: keys, Logger: slog.New(slog.NewTextHandler(logs, nil)),
		ShutdownGrace: time.Second, WatchInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	addr := make(chan net.Addr, 1)
	done := make(chan error, 1)
	go func() { done <- s.ListenAndServe(ctx, "127.0.0.1:0", func(a net.Addr) { addr <- a }) }()
	defer func() {
		cancel()
		<-done
	}()
	base := "http://" + (<-addr).String()

	readyz := func() map[string]string {
		t.Helper()
		resp, err := http.Get(base + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("/readyz: %d %s", resp.StatusCode, body)
		}
		var out map[string]string
		if err := json.Unmarshal(body, &out); err != nil {
			t.Fatalf("/readyz: %v in %s", err, body)
		}
		return out
	}
	waitFor := func(what string, ok func(map[string]string) bool) map[string]string {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			r := readyz()
			if ok(r) {
				return r
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: /readyz still says %v", what, r)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	if r := readyz(); r["workspace"] != "" {
		t.Fatalf("a good workspace: /readyz says %v", r)
	}

	write("opsbook.yaml", "name: watched\nenvironments:\n  - name: dev\n    hosts:\n      - {bastion: x}\n")
	r := waitFor("after the bad edit", func(r map[string]string) bool { return r["workspace"] != "" })
	if !strings.Contains(r["workspace"], "opsbook.yaml:5:9") || !strings.Contains(r["workspace"], "host without a name") {
		t.Errorf("/readyz workspace = %q, want the config error with its file:line", r["workspace"])
	}
	if !strings.Contains(logs.String(), "host without a name") {
		t.Errorf("the log does not say why the workspace was not re-read:\n%s", logs)
	}
	if got := s.Catalog().List(); len(got) != 1 || got[0].Path != "ops/runbooks/watched.md" {
		t.Errorf("catalog after the bad edit = %v, want the last good one", got)
	}
	if _, err := s.Catalog().Workspace().Environment("dev"); err != nil {
		t.Errorf("environment of the last good config lost: %v", err)
	}

	write("opsbook.yaml", good+"  - name: staging\n")
	waitFor("after the fix", func(r map[string]string) bool { return r["workspace"] == "" })
	if _, err := s.Catalog().Workspace().Environment("staging"); err != nil {
		t.Errorf("the fixed config is not served: %v", err)
	}
}
