package store_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/opsbook/opsbook/internal/runbook"
	"github.com/opsbook/opsbook/internal/store"
	"github.com/opsbook/opsbook/internal/store/storetest"
)

func mustCreate(t *testing.T, s *store.Store, r runbook.Run) runbook.Run {
	t.Helper()
	if r.Runbook == "" {
		r.Runbook = "ops/runbooks/restart.md"
	}
	if err := s.CreateRun(context.Background(), &r); err != nil {
		t.Fatalf("CreateRun: %v", err)
	}
	return r
}

func TestRunRoundTrip(t *testing.T) {
	storetest.ForEachDialect(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		want := runbook.Run{
			Workspace: "ops", Runbook: "ops/runbooks/db-failover.md", Task: "2026-03-failover",
			Title: "Fail over the primary", Environment: "prod", Snapshot: "sha256:abc",
			Params: map[string]string{"region": "eu-1", "ünïcode": "値"}, CreatedBy: "alice",
			Emergency: "pager 1234",
		}
		if err := s.CreateRun(ctx, &want); err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(want.ID, "r-") || len(want.ID) != 28 {
			t.Errorf("assigned id %q, want r- and 26 characters", want.ID)
		}
		if want.Status != runbook.RunPending || want.CreatedAt.IsZero() {
			t.Errorf("CreateRun left status %q, created %v; want pending and a time", want.Status, want.CreatedAt)
		}
		got, err := s.GetRun(ctx, want.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("GetRun = %+v\nwant %+v", got, want)
		}

		want.Status = runbook.RunSucceeded
		want.StartedAt = time.Date(2026, 3, 1, 2, 3, 4, 5000, time.UTC)
		want.FinishedAt = want.StartedAt.Add(90 * time.Second)
		want.Snapshot = "sha256:def"
		want.Params = nil
		if err := s.UpdateRun(ctx, want); err != nil {
			t.Fatal(err)
		}
		got, err = s.GetRun(ctx, want.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("after UpdateRun, GetRun = %+v\nwant %+v", got, want)
		}

		if err := s.CreateRun(ctx, &runbook.Run{ID: want.ID, Runbook: "x.md"}); !errors.Is(err, store.ErrConflict) {
			t.Errorf("CreateRun with an existing id: %v, want ErrConflict", err)
		}
		if err := s.UpdateRun(ctx, runbook.Run{ID: "r-nothere"}); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("UpdateRun of an unknown run: %v, want ErrNotFound", err)
		}
		if err := s.CreateRun(ctx, &runbook.Run{}); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("CreateRun without a runbook: %v, want ErrInvalid", err)
		}
		if err := s.DeleteRun(ctx, want.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := s.GetRun(ctx, want.ID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("GetRun after DeleteRun: %v, want ErrNotFound", err)
		}
	})
}

func TestGetRunPrefix(t *testing.T) {
	storetest.ForEachDialect(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		for _, id := range []string{"r-01ABCDEF", "r-01ABCXYZ", "r-01ABQQQQ", "r-02ZZZZZZ", "deploy-1"} {
			mustCreate(t, s, runbook.Run{ID: id})
		}
		tests := []struct {
			in        string
			want      string // id found; "" when an error is expected
			err       error
			ambiguous []string
		}{
			{in: "r-01ABCDEF", want: "r-01ABCDEF"},
			{in: "r-01ABCD", want: "r-01ABCDEF"},
			{in: "01ABCX", want: "r-01ABCXYZ"},   // "r-" optional
			{in: "r-01abcx", want: "r-01ABCXYZ"}, // case-insensitive
			{in: "02zz", want: "r-02ZZZZZZ"},
			{in: "depl", want: "deploy-1"},
			{in: "r-01ABC", err: store.ErrAmbiguous, ambiguous: []string{"r-01ABCXYZ", "r-01ABCDEF"}},
			{in: "r-01", err: store.ErrAmbiguous, ambiguous: []string{"r-01ABQQQQ", "r-01ABCXYZ", "r-01ABCDEF"}},
			{in: "r-0", err: store.ErrNotFound},  // too short to be a prefix
			{in: "r-03", err: store.ErrNotFound}, // matches nothing
			{in: "r-01ABCDEF-more", err: store.ErrNotFound},
			{in: "r-01ABCDÉ", err: store.ErrNotFound},
			{in: "r-01AB%", err: store.ErrNotFound}, // no LIKE patterns
		}
		for _, tt := range tests {
			t.Run(tt.in, func(t *testing.T) {
				got, err := s.GetRun(ctx, tt.in)
				if tt.err != nil {
					if !errors.Is(err, tt.err) {
						t.Fatalf("GetRun(%q) = %v, %v; want %v", tt.in, got.ID, err, tt.err)
					}
					var amb *store.AmbiguousIDError
					if tt.ambiguous != nil {
						if !errors.As(err, &amb) || !reflect.DeepEqual(amb.Candidates, tt.ambiguous) {
							t.Fatalf("GetRun(%q) = %v; want candidates %v", tt.in, err, tt.ambiguous)
						}
						for _, c := range tt.ambiguous {
							if !strings.Contains(err.Error(), c) {
								t.Errorf("message %q does not list %s", err, c)
							}
						}
					}
					return
				}
				if err != nil || got.ID != tt.want {
					t.Fatalf("GetRun(%q) = %q, %v; want %q", tt.in, got.ID, err, tt.want)
				}
			})
		}
	})
}

func TestListRuns(t *testing.T) {
	storetest.ForEachDialect(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		// 30 runs: runbooks a/b alternate, environments cycle over 3, statuses over 3.
		envs := []string{"dev", "staging", "prod"}
		statuses := []runbook.RunStatus{runbook.RunSucceeded, runbook.RunFailed, runbook.RunRunning}
		var all []runbook.Run // newest first
		for i := range 30 {
			r := mustCreate(t, s, runbook.Run{
				Runbook:     []string{"a.md", "b.md"}[i%2],
				Environment: envs[i%3],
				Status:      statuses[(i/2)%3],
				Task:        map[bool]string{true: "task-1"}[i < 5],
				CreatedBy:   []string{"alice", "bob"}[i%5/4],
				CreatedAt:   base.Add(time.Duration(i/4) * time.Minute), // ties in created_at are broken by id
			})
			all = append([]runbook.Run{r}, all...)
		}
		ids := func(runs []runbook.Run) []string {
			out := []string{}
			for _, r := range runs {
				out = append(out, r.ID)
			}
			return out
		}
		filter := func(keep func(r runbook.Run) bool) []string {
			var out []runbook.Run
			for _, r := range all {
				if keep(r) {
					out = append(out, r)
				}
			}
			return ids(out)
		}
		tests := []struct {
			name string
			f    store.RunFilter
			want []string
		}{
			{"all", store.RunFilter{Limit: 100}, ids(all)},
			{"default limit", store.RunFilter{}, ids(all)},
			{"limit", store.RunFilter{Limit: 7}, ids(all[:7])},
			{"runbook", store.RunFilter{Runbook: "a.md"}, filter(func(r runbook.Run) bool { return r.Runbook == "a.md" })},
			{"runbook and environment", store.RunFilter{Runbook: "b.md", Environment: "prod"},
				filter(func(r runbook.Run) bool { return r.Runbook == "b.md" && r.Environment == "prod" })},
			{"environment", store.RunFilter{Environment: "dev"}, filter(func(r runbook.Run) bool { return r.Environment == "dev" })},
			{"task", store.RunFilter{Task: "task-1"}, filter(func(r runbook.Run) bool { return r.Task == "task-1" })},
			{"statuses", store.RunFilter{Status: []runbook.RunStatus{runbook.RunFailed, runbook.RunRunning}},
				filter(func(r runbook.Run) bool { return r.Status != runbook.RunSucceeded })},
			{"before", store.RunFilter{Before: all[10].ID, Limit: 5}, ids(all[11:16])},
			{"before the oldest", store.RunFilter{Before: all[29].ID}, []string{}},
			{"nothing matches", store.RunFilter{Runbook: "c.md"}, []string{}},
			{"runbooks of a project", store.RunFilter{Runbooks: []string{"a.md", "c.md"}}, filter(func(r runbook.Run) bool { return r.Runbook == "a.md" })},
			{"who", store.RunFilter{CreatedBy: "bob"}, filter(func(r runbook.Run) bool { return r.CreatedBy == "bob" })},
			{"date range", store.RunFilter{Since: base.Add(2 * time.Minute), Until: base.Add(4 * time.Minute)},
				filter(func(r runbook.Run) bool {
					return !r.CreatedAt.Before(base.Add(2*time.Minute)) && r.CreatedAt.Before(base.Add(4*time.Minute))
				})},
			{"who, status and date", store.RunFilter{CreatedBy: "alice", Status: []runbook.RunStatus{runbook.RunFailed}, Since: base.Add(3 * time.Minute)},
				filter(func(r runbook.Run) bool {
					return r.CreatedBy == "alice" && r.Status == runbook.RunFailed && !r.CreatedAt.Before(base.Add(3*time.Minute))
				})},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				got, err := s.ListRuns(ctx, tt.f)
				if err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(ids(got), tt.want) {
					t.Errorf("ListRuns(%+v) =\n%v\nwant\n%v", tt.f, ids(got), tt.want)
				}
			})
		}

		t.Run("pages", func(t *testing.T) {
			var seen []string
			f := store.RunFilter{Limit: 4, Status: []runbook.RunStatus{runbook.RunSucceeded, runbook.RunFailed}}
			for page := 0; ; page++ {
				got, err := s.ListRuns(ctx, f)
				if err != nil {
					t.Fatal(err)
				}
				seen = append(seen, ids(got)...)
				if len(got) < f.Limit {
					break
				}
				if page > 10 {
					t.Fatal("paging does not end")
				}
				f.Before = got[len(got)-1].ID
			}
			want := filter(func(r runbook.Run) bool { return r.Status != runbook.RunRunning })
			if !reflect.DeepEqual(seen, want) {
				t.Errorf("pages = %v\nwant %v", seen, want)
			}
		})

		t.Run("unknown cursor", func(t *testing.T) {
			if _, err := s.ListRuns(ctx, store.RunFilter{Before: "r-nothere"}); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("ListRuns with an unknown cursor: %v, want ErrNotFound", err)
			}
		})
	})
}

func TestNewRunIDIsOrdered(t *testing.T) {
	prev := ""
	for i := range 10000 {
		id := store.NewRunID()
		if len(id) != 28 || id <= prev {
			t.Fatalf("id %d %q after %q: want 28 characters, increasing", i, id, prev)
		}
		prev = id
	}
	seen := fmt.Sprint(prev)
	if strings.ContainsAny(seen[2:], "ILOUilou") {
		t.Errorf("id %q uses letters outside Crockford base32", seen)
	}
}
