package cli

import (
	"bytes"
	"context"
	"database/sql"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opsbook/opsbook/internal/audit"
	"github.com/opsbook/opsbook/internal/store"
)

func TestAuditVerify(t *testing.T) {
	ctx := context.Background()
	db := filepath.Join(t.TempDir(), "server.db")
	st, err := store.Open(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 4; i++ {
		if _, err := st.AppendAudit(ctx, audit.Entry{Actor: "alice", Action: "variable.set", Target: "variable/X"}); err != nil {
			t.Fatal(err)
		}
	}
	st.Close()
	verify := func() (int, string) {
		var out, errb bytes.Buffer
		code := Main(ctx, []string{"audit", "verify", "--db", db}, strings.NewReader(""), &out, &errb)
		return code, out.String() + errb.String()
	}
	if code, out := verify(); code != ExitOK || !strings.Contains(out, "4 entries checked") {
		t.Fatalf("intact: %d %s", code, out)
	}
	raw, err := sql.Open("sqlite", db)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if _, err := raw.Exec(`UPDATE audit_log SET target = 'variable/Y' WHERE seq = 2`); err != nil {
		t.Fatal(err)
	}
	if code, out := verify(); code != ExitFailed || !strings.Contains(out, "entry 2") {
		t.Fatalf("edited: %d %s", code, out)
	}
}
