package lifecycle

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestAppendLoad(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	t0 := time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)
	recs := []Record{
		{Time: t0, Type: Created, Actor: "ann@example.com"},
		{Time: t0.Add(time.Hour), Type: Review, Actor: "bob@example.com", Verdict: Approve, Snapshot: "s1"},
		{Time: t0.Add(2 * time.Hour), Type: Check, Actor: "ann@example.com", Item: "backups-done", Note: "pg_dump 42 GB"},
	}
	for _, r := range recs {
		if err := Append(path, r); err != nil {
			t.Fatal(err)
		}
	}
	got, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[2].Item != "backups-done" || !got[0].Time.Equal(t0) {
		t.Errorf("Load = %+v", got)
	}
}

func TestTornLastLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	if err := Append(path, Record{Type: Created, Actor: "ann"}); err != nil {
		t.Fatal(err)
	}
	// A crash in the middle of a write leaves half a line.
	f, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString(`{"time":"2025-03-01T10:00:00Z","type":"rev`)
	f.Close()
	recs, err := Load(path)
	if err != nil || len(recs) != 1 {
		t.Fatalf("Load with torn line = %v, %v; want the one whole record", recs, err)
	}
	if err := Append(path, Record{Type: Check, Item: "teams-notified"}); err != nil {
		t.Fatal(err)
	}
	// The torn line is now a complete (bad) line of its own: reported, not merged.
	_, err = Load(path)
	if err == nil || !strings.Contains(err.Error(), FileName+":2:1: not a lifecycle record") {
		t.Fatalf("Load after torn line = %v, want an error at line 2", err)
	}
	data, _ := os.ReadFile(path)
	if !strings.HasSuffix(string(data), `"item":"teams-notified"}`+"\n") {
		t.Errorf("new record not on its own line:\n%s", data)
	}
}

func TestConcurrentAppendsKeepWholeLines(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := Append(path, Record{Type: Check, Note: strings.Repeat("x", 2000)}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	recs, err := Load(path)
	if err != nil || len(recs) != 20 {
		t.Fatalf("got %d records, %v", len(recs), err)
	}
}

func TestSummarize(t *testing.T) {
	t0 := time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)
	at := func(h int) time.Time { return t0.Add(time.Duration(h) * time.Hour) }
	tests := []struct {
		name      string
		recs      []Record
		state     string
		approvals int
	}{
		{"empty", nil, "planning", 0},
		{"created", []Record{{Time: at(0), Type: Created, Actor: "ann"}}, "planning", 0},
		{"one approval", []Record{{Time: at(0), Type: Created}, {Time: at(1), Type: Review, Actor: "bob", Verdict: Approve, Snapshot: "s1"}}, "in review", 1},
		{"two approvals", []Record{
			{Time: at(1), Type: Review, Actor: "bob", Verdict: Approve, Snapshot: "s1"},
			{Time: at(2), Type: Review, Actor: "cat", Verdict: Approve, Snapshot: "s1"}}, "approved", 2},
		{"same approver twice counts once", []Record{
			{Time: at(1), Type: Review, Actor: "bob", Verdict: Approve, Snapshot: "s1"},
			{Time: at(2), Type: Review, Actor: "bob", Verdict: Approve, Snapshot: "s1"}}, "in review", 1},
		{"new snapshot resets approvals", []Record{
			{Time: at(1), Type: Review, Actor: "bob", Verdict: Approve, Snapshot: "s1"},
			{Time: at(2), Type: Review, Actor: "cat", Verdict: Approve, Snapshot: "s1"},
			{Time: at(3), Type: Review, Actor: "cat", Verdict: Approve, Snapshot: "s2"}}, "in review", 1},
		{"run", []Record{{Time: at(1), Type: Run, RunID: "r1", Status: "running"}}, "executing", 0},
		{"completed", []Record{{Time: at(1), Type: Run}, {Time: at(2), Type: Completed, Status: "succeeded"}}, "completed", 0},
		{"rolled back", []Record{{Time: at(2), Type: Completed, Status: "rolled_back"}}, "rolled back", 0},
		{"archived", []Record{{Time: at(2), Type: Completed, Status: "succeeded"}, {Time: at(3), Type: Archived}}, "archived", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := Summarize(tt.recs)
			if s.State != tt.state || s.Approvals != tt.approvals {
				t.Errorf("Summarize = state %q approvals %d, want %q %d", s.State, s.Approvals, tt.state, tt.approvals)
			}
		})
	}
}
