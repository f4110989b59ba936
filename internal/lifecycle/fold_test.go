package lifecycle

import (
	"testing"
	"time"
)

func TestReviewsOf(t *testing.T) {
	t0 := time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)
	rec := func(min int, actor, verdict, snap string) Record {
		return Record{Time: t0.Add(time.Duration(min) * time.Minute), Type: Review, Actor: actor, Verdict: verdict, Snapshot: snap}
	}
	tests := []struct {
		name             string
		recs             []Record
		approvers, stale int
		changesRequested int
	}{
		{"two approvals", []Record{rec(1, "bob", Approve, "s2"), rec(2, "carol", Approve, "s2")}, 2, 0, 0},
		{"the author does not count", []Record{rec(1, "ann", Approve, "s2"), rec(2, "bob", Approve, "s2")}, 1, 0, 0},
		{"same person twice counts once", []Record{rec(1, "bob", Approve, "s2"), rec(2, "bob", Approve, "s2")}, 1, 0, 0},
		{"earlier snapshot is stale", []Record{rec(1, "bob", Approve, "s1"), rec(2, "carol", Approve, "s1"), rec(3, "bob", Approve, "s2")}, 1, 2, 0},
		{"request changes after approval", []Record{rec(1, "bob", Approve, "s2"), rec(2, "bob", RequestChanges, "s2")}, 0, 0, 1},
		{"approval after request changes", []Record{rec(1, "bob", RequestChanges, "s2"), rec(2, "bob", Approve, "s2")}, 1, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rv := ReviewsOf(tt.recs, "s2", "ann")
			if len(rv.Approvers) != tt.approvers || len(rv.Stale) != tt.stale || len(rv.ChangesRequested) != tt.changesRequested || len(rv.History) != len(tt.recs) {
				t.Errorf("approvers %d stale %d changes %d history %d", len(rv.Approvers), len(rv.Stale), len(rv.ChangesRequested), len(rv.History))
			}
		})
	}
}

func TestTicksAndRuns(t *testing.T) {
	t0 := time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)
	recs := []Record{
		{Time: t0, Type: Check, Actor: "ann", Item: "backups-done"},
		{Time: t0, Type: Check, Actor: "ann", Item: "teams-notified"},
		{Time: t0, Type: Uncheck, Actor: "ann", Item: "backups-done"},
		{Time: t0, Type: Run, RunID: "r-1", Environment: "staging", Status: "running", StartedAt: t0, Data: map[string]string{"run_snapshot": "x"}},
		{Time: t0, Type: Run, RunID: "r-1", Environment: "staging", Status: "succeeded", FinishedAt: t0.Add(time.Minute)},
	}
	ticks := Ticks(recs)
	if _, ok := ticks["backups-done"]; ok || len(ticks) != 1 {
		t.Errorf("ticks = %v", ticks)
	}
	runs := Runs(recs)
	if len(runs) != 1 || runs[0].Status != "succeeded" || !runs[0].StartedAt.Equal(t0) || runs[0].FinishedAt.IsZero() || runs[0].RunSnapshot != "x" || !runs[0].Finished() {
		t.Errorf("runs = %+v", runs)
	}
}
