package store_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/opsbook/opsbook/internal/lifecycle"
	"github.com/opsbook/opsbook/internal/store"
	"github.com/opsbook/opsbook/internal/store/storetest"
)

// TestOneReviewPerUserPerTask: twenty parallel approvals by one user
// (fault: a check-then-insert race across requests and nodes) leave one
// review, which a later verdict of the same user replaces; another user,
// and the same user on another snapshot, are other reviews. A review
// without a user, or with an unknown verdict, is refused.
func TestOneReviewPerUserPerTask(t *testing.T) {
	storetest.ForEachDialect(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		ann, bob := &store.User{Name: "ann"}, &store.User{Name: "bob"}
		for _, u := range []*store.User{ann, bob} {
			if err := s.CreateUser(ctx, u); err != nil {
				t.Fatal(err)
			}
		}
		const task = "2026-03-01-db-upgrade-v12-to-v15"
		review := func(u *store.User, snap, verdict string) (bool, error) {
			return s.PutTaskReview(ctx, store.TaskReview{Task: task, Snapshot: snap, UserID: u.ID, Verdict: verdict, Note: "looked at it"})
		}
		var wg sync.WaitGroup
		errs := make([]error, 20)
		for i := range errs {
			wg.Go(func() { _, errs[i] = review(ann, "s1", lifecycle.Approve) })
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				t.Errorf("parallel review: %v", err)
			}
		}
		list := func() []store.TaskReview {
			t.Helper()
			rs, err := s.ListTaskReviews(ctx, task)
			if err != nil {
				t.Fatal(err)
			}
			return rs
		}
		if rs := list(); len(rs) != 1 || rs[0].Reviewer != "ann" || rs[0].Verdict != lifecycle.Approve {
			t.Fatalf("after 20 parallel approvals by ann: %+v, want one approval", rs)
		}
		if replaced, err := review(ann, "s1", lifecycle.RequestChanges); err != nil || !replaced {
			t.Fatalf("ann changes her verdict: replaced=%v err=%v, want replaced", replaced, err)
		}
		if rs := list(); len(rs) != 1 || rs[0].Verdict != lifecycle.RequestChanges {
			t.Fatalf("after ann's second verdict: %+v, want her latest only", rs)
		}
		if replaced, err := review(bob, "s1", lifecycle.Approve); err != nil || replaced {
			t.Fatalf("bob: replaced=%v err=%v", replaced, err)
		}
		if _, err := review(ann, "s2", lifecycle.Approve); err != nil {
			t.Fatal(err)
		}
		if rs := list(); len(rs) != 3 {
			t.Fatalf("ann on s1 and s2, bob on s1: %d reviews %+v, want 3", len(rs), rs)
		}
		if rs, _ := s.ListTaskReviews(ctx, "another-task"); len(rs) != 0 {
			t.Errorf("another task has reviews: %+v", rs)
		}
		if _, err := review(ann, "s1", "lgtm"); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("verdict lgtm: %v, want ErrInvalid", err)
		}
		if _, err := s.PutTaskReview(ctx, store.TaskReview{Task: task, Snapshot: "s1", Verdict: lifecycle.Approve}); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("review without a user: %v, want ErrInvalid", err)
		}
		if _, err := s.PutTaskReview(ctx, store.TaskReview{Task: task, Snapshot: "s1", UserID: 999999, Verdict: lifecycle.Approve}); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("review by a user who does not exist: %v, want ErrNotFound", err)
		}

		// Ticks: one state per item, the latest wins; the server's own tick has no user.
		at := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
		for _, tk := range []store.TaskTick{
			{Task: task, Item: "backups-done", Ticked: true, UserID: ann.ID, Actor: "ann", Note: "dump ok", At: at},
			{Task: task, Item: "teams-notified", Ticked: true, Actor: "opsbook", At: at.Add(time.Minute)},
			{Task: task, Item: "backups-done", Ticked: false, UserID: bob.ID, Actor: "bob", Note: "dump is stale", At: at.Add(2 * time.Minute)},
		} {
			if err := s.SetTaskTick(ctx, tk); err != nil {
				t.Fatal(err)
			}
		}
		ticks, err := s.ListTaskTicks(ctx, task)
		if err != nil {
			t.Fatal(err)
		}
		if len(ticks) != 2 || ticks[0].Item != "teams-notified" || ticks[0].UserID != 0 || ticks[1].Item != "backups-done" || ticks[1].Ticked || ticks[1].Actor != "bob" {
			t.Fatalf("ticks: %+v", ticks)
		}
		recs, err := s.VerifiedRecords(ctx, task)
		if err != nil {
			t.Fatal(err)
		}
		if got := lifecycle.Ticks(recs); len(got) != 1 || got["teams-notified"].Actor != "opsbook" {
			t.Errorf("ticked per the verified records: %+v, want teams-notified only", got)
		}
		rv := lifecycle.ReviewsOf(recs, "s1", "")
		if len(rv.Approvers) != 1 || rv.Approvers[0].Actor != "bob" || len(rv.ChangesRequested) != 1 || rv.Approvers[0].Data["verified"] != "server" {
			t.Errorf("reviews of s1 per the verified records: %+v", rv)
		}

		// Deleting a user deletes their reviews; their ticks stay, without a user.
		if err := s.DeleteUser(ctx, bob.ID); err != nil {
			t.Fatal(err)
		}
		for _, r := range list() {
			if r.Reviewer == "bob" {
				t.Errorf("a deleted user's review is still listed: %+v", r)
			}
		}
		if ticks, _ := s.ListTaskTicks(ctx, task); len(ticks) != 2 || ticks[1].Actor != "bob" || ticks[1].UserID != 0 {
			t.Errorf("ticks after bob was deleted: %+v", ticks)
		}
	})
}
