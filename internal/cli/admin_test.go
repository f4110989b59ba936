package cli

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opsbook/opsbook/internal/auth"
	"github.com/opsbook/opsbook/internal/store"
)

// TestServeBusyPortCreatesNoAdmin: the first serve on a busy port created
// "admin" with a generated password it never printed, and no later start
// printed it (fault: bootstrap before listen). Now nothing is created until
// the listener is up, and `opsbook admin reset-password` recovers an admin
// whose password was lost.
func TestServeBusyPortCreatesNoAdmin(t *testing.T) {
	ws := t.TempDir()
	writeFile(t, filepath.Join(ws, "opsbook.yaml"), "name: t\nlang: en\nenvironments:\n  - name: dev\n")
	if err := os.MkdirAll(filepath.Join(ws, "ops", "runbooks"), 0o755); err != nil {
		t.Fatal(err)
	}
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	data := t.TempDir()
	t.Setenv("OPSBOOK_MASTER_KEY", "")
	t.Setenv("OPSBOOK_ADMIN_PASSWORD_FILE", "")
	code, stdout, stderr := runCLI(t, "", "-C", ws, "serve", "--data", data, "--addr", busy.Addr().String())
	if code == 0 || !strings.Contains(stderr, "listen on") {
		t.Fatalf("serve on a busy port: exit %d\n%s\n%s", code, stdout, stderr)
	}
	ctx := context.Background()
	db := filepath.Join(data, "server.db")
	st, err := store.Open(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	n, err := st.CountUsers(ctx)
	st.Close()
	if err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("serve on a busy port created %d user(s) whose password nobody saw", n)
	}

	// An admin whose password is lost: reset it locally.
	st, err = store.Open(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	u := &store.User{Name: "admin", PasswordHash: "lost"}
	if err := st.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	if err := st.CreateSession(ctx, store.Session{TokenHash: "old-session", UserID: u.ID, CSRF: "c", ExpiresAt: farFuture}); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr = runCLI(t, "", "-C", ws, "admin", "reset-password", "--data", data)
	if code != 0 {
		t.Fatalf("reset-password: exit %d\n%s", code, stderr)
	}
	fields := strings.Fields(stdout)
	password := fields[len(fields)-1]
	got, err := st.GetUserByName(ctx, "admin")
	if err != nil {
		t.Fatal(err)
	}
	if ok, _ := auth.VerifyPassword(got.PasswordHash, password); !ok {
		t.Fatalf("the printed password %q does not sign in", password)
	}
	if _, err := st.GetSession(ctx, "old-session", farFuture.AddDate(-1, 0, 0)); err == nil {
		t.Error("the old session survived the reset")
	}
	entries, err := st.ListAudit(ctx, store.AuditFilter{Limit: 10})
	if err != nil || len(entries) == 0 || entries[0].Action != "user.password_reset" {
		t.Errorf("reset not audited: %v %+v", err, entries)
	}
	if code, _, stderr := runCLI(t, "", "-C", ws, "admin", "reset-password", "--data", t.TempDir()); code == 0 || !strings.Contains(stderr, "no server database") {
		t.Errorf("reset without a database: exit %d %s", code, stderr)
	}
}

var farFuture = time.Now().AddDate(10, 0, 0)
