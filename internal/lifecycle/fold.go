package lifecycle

import (
	"slices"
	"time"
)

// Lifecycle states, from the first document to the archive. Summarize
// reports what the file alone shows; the gates package refines it with
// the documents and the environment (approved, rehearsed, ready).
const (
	StatePlanning   = "planning"
	StateInReview   = "in review"
	StateApproved   = "approved"
	StateRehearsed  = "rehearsed"
	StateReady      = "ready"
	StateExecuting  = "executing"
	StateCompleted  = "completed"
	StateRolledBack = "rolled back"
	StateFailed     = "failed"
	StateArchived   = "archived"
)

// AuthorOf returns who created the task (the created record's actor).
func AuthorOf(recs []Record) string {
	for _, r := range recs {
		if r.Type == Created {
			return r.Actor
		}
	}
	return ""
}

// Reviews is the review history read against the documents as they are now.
type Reviews struct {
	Snapshot string `json:"snapshot"` // the snapshot the reviews were read against
	// Approvers are the distinct people whose latest verdict on Snapshot is
	// an approval, in the order they approved, excluding the task's author.
	Approvers []Record `json:"approvers"`
	// ChangesRequested are the people whose latest verdict on Snapshot asks
	// for changes; each one blocks until they approve.
	ChangesRequested []Record `json:"changes_requested,omitempty"`
	// Stale are approvals given to another snapshot: kept, not counted.
	Stale []Record `json:"stale,omitempty"`
	// History is every review record, oldest first, with Stale set on the
	// ones about another snapshot.
	History []ReviewEntry `json:"history"`
}

// ReviewEntry is one review in the history.
type ReviewEntry struct {
	Record
	Stale bool `json:"stale"`
}

// ReviewsOf folds the review records against the current snapshot. An
// approval by author never counts (the CLI refuses to record one; a
// hand-edited file must not sneak one in either).
func ReviewsOf(recs []Record, snapshot, author string) Reviews {
	rv := Reviews{Snapshot: snapshot}
	latest := map[string]Record{} // actor → latest verdict on snapshot
	var order []string
	for _, r := range recs {
		if r.Type != Review {
			continue
		}
		stale := r.Snapshot != snapshot
		rv.History = append(rv.History, ReviewEntry{Record: r, Stale: stale})
		if stale {
			if r.Verdict == Approve {
				rv.Stale = append(rv.Stale, r)
			}
			continue
		}
		if _, seen := latest[r.Actor]; !seen {
			order = append(order, r.Actor)
		}
		latest[r.Actor] = r
	}
	for _, actor := range order {
		r := latest[actor]
		switch {
		case r.Verdict == Approve && actor != author:
			rv.Approvers = append(rv.Approvers, r)
		case r.Verdict == RequestChanges:
			rv.ChangesRequested = append(rv.ChangesRequested, r)
		}
	}
	return rv
}

// Ticks returns the pre-execution items that are ticked now: the latest
// check record of each item not followed by an uncheck.
func Ticks(recs []Record) map[string]Record {
	ticks := map[string]Record{}
	for _, r := range recs {
		switch r.Type {
		case Check:
			ticks[r.Item] = r
		case Uncheck:
			delete(ticks, r.Item)
		}
	}
	return ticks
}

// RunEntry is what the lifecycle file says about one run: its latest run
// record, with the start time of the first.
type RunEntry struct {
	RunID       string    `json:"run_id"`
	Environment string    `json:"environment"`
	Snapshot    string    `json:"snapshot"`               // the task's review snapshot when it ran
	RunSnapshot string    `json:"run_snapshot,omitempty"` // the run's own snapshot (with its environment's variables)
	Status      string    `json:"status"`
	Actor       string    `json:"actor,omitempty"`
	StartedAt   time.Time `json:"started_at,omitzero"`
	FinishedAt  time.Time `json:"finished_at,omitzero"`
	Emergency   string    `json:"emergency,omitempty"` // the override reason, when there was one
}

// Runs lists the runs recorded in the file, in the order they started.
func Runs(recs []Record) []RunEntry {
	var out []RunEntry
	idx := map[string]int{}
	for _, r := range recs {
		if r.Type != Run || r.RunID == "" {
			continue
		}
		i, ok := idx[r.RunID]
		if !ok {
			i = len(out)
			idx[r.RunID] = i
			out = append(out, RunEntry{RunID: r.RunID})
		}
		e := &out[i]
		e.Environment, e.Snapshot, e.Status = r.Environment, r.Snapshot, r.Status
		if v := r.Data["run_snapshot"]; v != "" {
			e.RunSnapshot = v
		}
		if v := r.Data["emergency"]; v != "" {
			e.Emergency = v
		}
		if e.Actor == "" {
			e.Actor = r.Actor
		}
		if e.StartedAt.IsZero() {
			e.StartedAt = r.StartedAt
		}
		if !r.FinishedAt.IsZero() {
			e.FinishedAt = r.FinishedAt
		}
	}
	return out
}

// Finished reports whether the entry's status is a final one.
func (e RunEntry) Finished() bool {
	return slices.Contains([]string{"succeeded", "failed", "rolled_back", "cancelled"}, e.Status)
}
