package pgtest

import (
	"database/sql"
	"errors"
	"fmt"
	"os"
	"runtime"
	"testing"
)

func TestMain(m *testing.M) { os.Exit(Run(m)) }

// recorder is a testing.TB that records how a test ended.
type recorder struct {
	testing.TB
	ended string // "", "skip" or "fatal"
}

func (r *recorder) Helper()                   {}
func (r *recorder) Skipf(string, ...any)      { r.ended = "skip"; runtime.Goexit() }
func (r *recorder) Fatalf(string, ...any)     { r.ended = "fatal"; runtime.Goexit() }
func (r *recorder) Errorf(f string, a ...any) { r.TB.Errorf(f, a...) }

func TestRequireStarted(t *testing.T) {
	tests := []struct {
		name string
		err  error
		ci   bool
		want string
	}{
		{"started", nil, false, ""},
		{"not installed, developer machine", ErrNotInstalled, false, "skip"},
		{"not installed, CI", ErrNotInstalled, true, "fatal"},
		{"broken", fmt.Errorf("initdb: %w", errors.New("disk full")), false, "fatal"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &recorder{TB: t}
			done := make(chan struct{})
			go func() {
				defer close(done)
				requireStarted(r, tt.err, tt.ci)
			}()
			<-done
			if r.ended != tt.want {
				t.Errorf("requireStarted(%v, ci=%v) ended the test with %q, want %q", tt.err, tt.ci, r.ended, tt.want)
			}
		})
	}
}

func TestDSNGivesFreshDatabases(t *testing.T) {
	a, b := DSN(t), DSN(t)
	if a == b {
		t.Fatalf("two calls gave the same database %s", a)
	}
	dbA, err := sql.Open("pgx", a)
	if err != nil {
		t.Fatal(err)
	}
	defer dbA.Close()
	if _, err := dbA.Exec(`CREATE TABLE only_in_a (x int)`); err != nil {
		t.Fatal(err)
	}
	dbB, err := sql.Open("pgx", b)
	if err != nil {
		t.Fatal(err)
	}
	defer dbB.Close()
	var n int
	if err := dbB.QueryRow(`SELECT count(*) FROM pg_tables WHERE tablename = 'only_in_a'`).Scan(&n); err != nil || n != 0 {
		t.Errorf("second database sees the first one's table: %d, %v", n, err)
	}
	if got := withDatabase("postgres://u@h:1/postgres?sslmode=disable", "t_1"); got != "postgres://u@h:1/t_1?sslmode=disable" {
		t.Errorf("withDatabase = %s", got)
	}
}
