package gates

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/opsbook/opsbook/internal/lifecycle"
	"github.com/opsbook/opsbook/internal/runbook"
	"github.com/opsbook/opsbook/internal/snapshot"
	"github.com/opsbook/opsbook/internal/workspace"
)

// Gate IDs, in the order they are reported.
const (
	GateReviews   = "reviews"
	GateRehearsal = "rehearsal"
	GateChecklist = "checklist"
	GateWindow    = "window"
	GateFreeze    = "freeze"
	GateEmergency = "emergency" // --emergency on a runbook that is not change: emergency
)

// Gate is one condition between now and a run in an environment.
type Gate struct {
	ID    string `json:"id"`
	Title string `json:"title"`
	Met   bool   `json:"met"`
	// Overridden is a window or freeze gate that is not met but is waived
	// by an emergency override (change: emergency and --emergency --reason).
	Overridden bool   `json:"overridden,omitempty"`
	Detail     string `json:"detail"`            // what is the case, in words
	Missing    string `json:"missing,omitempty"` // what to do to meet it, in words
}

// Passes reports whether the gate lets the run start.
func (g Gate) Passes() bool { return g.Met || g.Overridden }

// Options are the circumstances of one evaluation.
type Options struct {
	// Emergency is the reason given with --emergency; empty when none.
	Emergency string
	// StoreRuns are runs of the task from a run store, besides those the
	// lifecycle file records (runs started elsewhere, e.g. on a server).
	StoreRuns []runbook.Run
	// Verified, when not nil, says the workspace has a server, and holds
	// the reviews and checklist ticks its signed-in users recorded. In a
	// protected environment only these count: the git-email records of
	// lifecycle.jsonl name whoever the committer claims to be.
	Verified *Verified
}

// Verified are a task's reviews and checklist ticks recorded by
// authenticated users of a server (store.VerifiedRecords): Review, Check
// and Uncheck records, oldest first, Actor the user's name.
type Verified struct {
	Records []lifecycle.Record
}

// Report is the state of a task and its gates for one environment.
type Report struct {
	Task        string            `json:"task,omitempty"`
	Runbook     string            `json:"runbook,omitempty"` // a standing runbook's path (AdmitStanding), when Task is empty
	Dir         string            `json:"dir"`
	State       string            `json:"state"`
	Snapshot    string            `json:"snapshot"`
	Short       string            `json:"snapshot_short"`
	Author      string            `json:"author,omitempty"`
	Environment string            `json:"environment"`
	Protected   bool              `json:"protected"`
	RunSnapshot string            `json:"run_snapshot,omitempty"` // what a run in Environment would store
	Gates       []Gate            `json:"gates"`
	Reviews     lifecycle.Reviews `json:"reviews"`
	// Verified says Reviews and Checklist are the server's verified
	// records only (a protected environment of a workspace with a server).
	Verified bool `json:"verified"`
	// Unverified are the git-email reviews that Verified leaves uncounted.
	Unverified *lifecycle.Reviews `json:"unverified_reviews,omitempty"`
	// SignedError says why signed commits could not be checked (opsbook.yaml
	// signers:); their records then count as unverified.
	SignedError string               `json:"signed_error,omitempty"`
	Checklist   []Item               `json:"checklist"`
	Runs        []lifecycle.RunEntry `json:"runs"`
	Emergency   string               `json:"emergency,omitempty"`
	Now         time.Time            `json:"now"`
}

// Item is a pre-execution checklist item and its tick.
type Item struct {
	ID     string    `json:"id"`
	Text   string    `json:"text,omitempty"`
	Ticked bool      `json:"ticked"`
	By     string    `json:"by,omitempty"`
	At     time.Time `json:"at,omitzero"`
	Note   string    `json:"note,omitempty"`
	// Verified: ticked by a signed-in user of the server (or the server
	// itself), not a git-email record.
	Verified bool `json:"verified"`
}

// Allowed reports whether every gate lets a run start.
func (r *Report) Allowed() bool {
	for _, g := range r.Gates {
		if !g.Passes() {
			return false
		}
	}
	return true
}

// Overrides lists the gates an emergency override waives.
func (r *Report) Overrides() []string {
	var ids []string
	for _, g := range r.Gates {
		if g.Overridden {
			ids = append(ids, g.ID)
		}
	}
	return ids
}

// Evaluate reads the task against the environment named envName at now.
func (t *Task) Evaluate(envName string, now time.Time, o Options) (*Report, error) {
	rep := &Report{Task: t.Name, Dir: t.Rel, Snapshot: t.Snapshot, Short: snapshot.ShortOf(t.Snapshot),
		Author: t.Author, Environment: envName, Emergency: o.Emergency, Now: now}
	rep.Runs = t.runs(o.StoreRuns)
	var env workspace.Environment
	if envName != "" {
		var err error
		if env, err = t.ws.Environment(envName); err != nil {
			return nil, err
		}
	}
	// Verified records: the server's, and those signed commits vouch for
	// when opsbook.yaml lists signers (which alone make the workspace's
	// protected gates count only verified records, server or not).
	verified := o.Verified
	unverified := t.Records
	if len(t.ws.Config.Signers) > 0 {
		var server []lifecycle.Record
		if verified != nil {
			server = verified.Records
		}
		verified = &Verified{Records: merge(server, t.Signed)}
		signed := map[int]bool{}
		for _, r := range t.Signed {
			signed[r.Line] = true
		}
		unverified = slices.DeleteFunc(slices.Clone(t.Records), func(r lifecycle.Record) bool { return signed[r.Line] })
		if t.SignedErr != nil {
			rep.SignedError = t.SignedErr.Error()
		}
	}
	recs := t.Records
	switch {
	case verified != nil && env.Protected:
		// Only what verified people recorded counts here.
		recs = verified.Records
		rep.Verified = true
		if un := lifecycle.ReviewsOf(unverified, t.Snapshot, t.Author); len(un.History) > 0 {
			rep.Unverified = &un
		}
	case verified != nil:
		recs = merge(unverified, verified.Records)
	}
	rep.Reviews = lifecycle.ReviewsOf(recs, t.Snapshot, t.Author)
	if verified != nil {
		rep.Reviews.Approvers = slices.DeleteFunc(rep.Reviews.Approvers, func(r lifecycle.Record) bool {
			return r.Data["verified"] != "" && IsAuthor(r.Actor, t.Author)
		})
		// One person may be a server user (bob) and a signer
		// (bob@example.com): counted once.
		var kept []lifecycle.Record
		for _, a := range rep.Reviews.Approvers {
			if !slices.ContainsFunc(kept, func(k lifecycle.Record) bool { return samePerson(k.Actor, a.Actor) }) {
				kept = append(kept, a)
			}
		}
		rep.Reviews.Approvers = kept
	}
	ticks := lifecycle.Ticks(recs)
	for _, it := range t.Items {
		i := Item{ID: it.ID, Text: it.Text}
		if r, ok := ticks[it.ID]; ok {
			i.Ticked, i.By, i.At, i.Note, i.Verified = true, r.Actor, r.Time, r.Note, r.Data["verified"] != ""
		}
		rep.Checklist = append(rep.Checklist, i)
	}
	if envName == "" {
		rep.State = t.state(rep, nil)
		return rep, nil
	}
	rep.Protected = env.Protected
	rep.RunSnapshot = t.RunSnapshot(env)

	if env.Reviewers > 0 {
		rep.Gates = append(rep.Gates, t.reviewsGate(rep, env))
	}
	if env.Rehearsal {
		rep.Gates = append(rep.Gates, t.rehearsalGate(rep, env))
	}
	if env.Protected {
		rep.Gates = append(rep.Gates, t.checklistGate(rep))
	}
	rep.Gates = append(rep.Gates, changeGates(env, now, t.Runbook.Front.Change, o.Emergency)...)
	rep.State = t.state(rep, &env)
	return rep, nil
}

// merge interleaves the lifecycle file's records with the server's by time.
func merge(file, verified []lifecycle.Record) []lifecycle.Record {
	out := append(slices.Clip(file), verified...)
	slices.SortStableFunc(out, func(a, b lifecycle.Record) int { return a.Time.Compare(b.Time) })
	return out
}

// IsAuthor reports whether the server user named user is the task's
// author, as far as it can be known: the created record names the author
// by git's user.email, so the user whose name is that address, or its part
// before the @, is taken to be the author (a stricter reading than a
// coincidence of names deserves, and the safe one).
func IsAuthor(user, author string) bool {
	if author == "" || user == "" {
		return false
	}
	if strings.EqualFold(user, author) {
		return true
	}
	local, _, ok := strings.Cut(author, "@")
	return ok && strings.EqualFold(local, user)
}

// samePerson reports whether two reviewer names may be one person: equal,
// or a name and an address whose part before the @ it is (as IsAuthor).
func samePerson(a, b string) bool { return IsAuthor(a, b) || IsAuthor(b, a) }

// changeGates are the gates of the change calendar: the environment's
// windows and freezes, which an emergency override (a reason, on a
// change: emergency runbook) waives, and the refusal of an override on any
// other runbook.
func changeGates(env workspace.Environment, now time.Time, change runbook.ChangeType, emergency string) []Gate {
	var gs []Gate
	emergencyOK := emergency != "" && change == runbook.ChangeEmergency
	if len(env.Windows) > 0 {
		g := windowGate(env, now)
		g.Overridden = !g.Met && emergencyOK
		gs = append(gs, g)
	}
	if len(env.Freezes) > 0 {
		g := freezeGate(env, now)
		g.Overridden = !g.Met && emergencyOK
		gs = append(gs, g)
	}
	if emergency != "" && !emergencyOK {
		if change == "" {
			change = "not set"
		}
		gs = append(gs, Gate{ID: GateEmergency, Title: "emergency override",
			Detail:  fmt.Sprintf("--emergency was given, but the runbook's change type is %s", change),
			Missing: "an emergency override is only for runbooks with `change: emergency` in their front matter; wait for the change window, or make it an emergency change and have it reviewed again"})
	}
	return gs
}

// AdmitStanding applies the change calendar to a run of a standing runbook
// (one that is not a planned operation's task) in a protected environment:
// outside the environment's windows or inside a freeze it is refused, unless
// it is a change: emergency runbook run with an emergency reason. Standard
// changes are pre-approved routine work (the nightly backup) and run at any
// time; so does everything in an environment that is not protected. The
// report is returned either way; a refusal is a *Refusal.
func AdmitStanding(ws *workspace.Workspace, rel string, doc *runbook.Document, envName string, now time.Time, emergency string) (*Report, error) {
	env, err := ws.Environment(envName)
	if err != nil {
		return nil, err
	}
	rep := &Report{Runbook: rel, Environment: envName, Protected: env.Protected, Emergency: emergency, Now: now}
	if !env.Protected || doc.Front.Change == runbook.ChangeStandard && emergency == "" {
		return rep, nil
	}
	rep.Gates = changeGates(env, now, doc.Front.Change, emergency)
	if !rep.Allowed() {
		return rep, &Refusal{Report: rep}
	}
	return rep, nil
}

func (t *Task) reviewsGate(rep *Report, env workspace.Environment) Gate {
	rv := rep.Reviews
	g := Gate{ID: GateReviews, Title: "reviews"}
	var names []string
	for _, a := range rv.Approvers {
		names = append(names, a.Actor)
	}
	g.Detail = fmt.Sprintf("%d of %d approvals of snapshot %s", len(names), env.Reviewers, rep.Short)
	if len(names) > 0 {
		g.Detail += " (" + strings.Join(names, ", ") + ")"
	}
	signers := len(t.ws.Config.Signers) > 0
	switch {
	case rep.Verified && signers:
		g.Detail += " by verified reviewers (signed in to the server, or in commits signed with a key under signers:)"
	case rep.Verified:
		g.Detail += " by signed-in users of the server"
	}
	if rep.SignedError != "" {
		g.Detail += "; signed commits could not be checked (" + rep.SignedError + ")"
	}
	if n := len(rv.Stale); n > 0 {
		g.Detail += fmt.Sprintf("; %d stale approval(s) of an earlier snapshot are not counted", n)
	}
	if rep.Unverified != nil && len(rep.Unverified.Approvers) > 0 {
		g.Detail += fmt.Sprintf("; %d unverified git-email approval(s) in lifecycle.jsonl are not counted in a protected environment", len(rep.Unverified.Approvers))
	}
	var missing []string
	if need := env.Reviewers - len(names); need > 0 {
		who := "other reviewers"
		if t.Author != "" {
			who = "reviewers other than the author " + t.Author
		}
		how := fmt.Sprintf("`opsbook review %s --approve`", t.Name)
		switch {
		case rep.Verified && signers:
			who = "verified " + who
			how = fmt.Sprintf("`opsbook review %s --approve` through the server, Review on its board, or the same committed in a commit signed with your key under signers: (git commit -S)", t.Name)
		case rep.Verified:
			who = "signed-in " + who
			how = fmt.Sprintf("`opsbook review %s --approve` with OPSBOOK_SERVER set, or Review on the server's board", t.Name)
		}
		missing = append(missing, fmt.Sprintf("%d more approval(s) by %s: %s", need, who, how))
	}
	for _, r := range rv.ChangesRequested {
		s := fmt.Sprintf("%s requested changes", r.Actor)
		if r.Note != "" {
			s += fmt.Sprintf(" (%q)", r.Note)
		}
		missing = append(missing, s+"; address them and have "+r.Actor+" approve")
	}
	g.Met = len(missing) == 0
	g.Missing = strings.Join(missing, "; ")
	return g
}

func (t *Task) rehearsalGate(rep *Report, env workspace.Environment) Gate {
	g := Gate{ID: GateRehearsal, Title: "rehearsal"}
	var candidates []string
	allowed := t.Runbook.Front.Environments // empty: any
	for _, e := range t.ws.Config.Environments {
		if !e.Protected && e.Name != env.Name && (len(allowed) == 0 || slices.Contains(allowed, e.Name)) {
			candidates = append(candidates, e.Name)
		}
	}
	for i := len(rep.Runs) - 1; i >= 0; i-- {
		r := rep.Runs[i]
		if r.Status == string(runbook.RunSucceeded) && t.rehearses(r) {
			g.Met = true
			g.Detail = fmt.Sprintf("run %s of snapshot %s succeeded in %s", r.RunID, rep.Short, r.Environment)
			if !r.FinishedAt.IsZero() {
				g.Detail += " at " + r.FinishedAt.UTC().Format(time.RFC3339)
			}
			return g
		}
	}
	g.Detail = fmt.Sprintf("no successful run of snapshot %s in a non-protected environment", rep.Short)
	if len(candidates) == 0 {
		g.Missing = "there is no non-protected environment the runbook may run in (opsbook.yaml environments, front matter environments:); add one such as staging, or set rehearsal: false on " + env.Name
	} else {
		g.Missing = fmt.Sprintf("run it in %s first: `opsbook run %s --env %s`", strings.Join(candidates, " or "), t.Name, candidates[0])
	}
	return g
}

// rehearses reports whether a recorded run ran the current documents in a
// non-protected environment.
func (t *Task) rehearses(r lifecycle.RunEntry) bool {
	env, err := t.ws.Environment(r.Environment)
	if err != nil || env.Protected {
		return false
	}
	if r.Snapshot == t.Snapshot {
		return true
	}
	// A run known only from a store carries its own snapshot, made with
	// its environment's variables.
	return r.Snapshot == "" && r.RunSnapshot != "" && r.RunSnapshot == t.RunSnapshot(env)
}

func (t *Task) checklistGate(rep *Report) Gate {
	g := Gate{ID: GateChecklist, Title: "pre-execution checklist"}
	var open []string
	for _, it := range rep.Checklist {
		if !it.Ticked {
			open = append(open, it.ID)
		}
	}
	g.Detail = fmt.Sprintf("%d of %d items ticked", len(rep.Checklist)-len(open), len(rep.Checklist))
	g.Met = len(open) == 0
	if !g.Met {
		g.Missing = fmt.Sprintf("tick %s: `opsbook check %s ITEM [--note …]`", strings.Join(open, ", "), t.Name)
		if rep.Verified {
			g.Missing += " with OPSBOOK_SERVER set, or on the server's board (ticks in lifecycle.jsonl are not counted in a protected environment)"
		}
	}
	return g
}

func windowGate(env workspace.Environment, now time.Time) Gate {
	g := Gate{ID: GateWindow, Title: "change window"}
	var ws []string
	for _, w := range env.Windows {
		ws = append(ws, w.String())
		if w.Contains(now) {
			g.Met = true
			g.Detail = "inside the window " + w.String()
		}
	}
	if g.Met {
		return g
	}
	g.Detail = fmt.Sprintf("%s is outside %s's change windows (%s)", now.UTC().Format("Mon 2006-01-02 15:04 MST"), env.Name, strings.Join(ws, "; "))
	if next, ok := nextOpening(env, now); ok {
		g.Missing = "wait until the next window opens at " + next.UTC().Format("Mon 2006-01-02 15:04 MST")
	} else {
		g.Missing = "no window opens in the next 8 days; check windows: in opsbook.yaml"
	}
	g.Missing += "; an emergency change may override with --emergency --reason \"…\""
	return g
}

// nextOpening finds, to the minute, when a window of env next opens.
func nextOpening(env workspace.Environment, now time.Time) (time.Time, bool) {
	t := now.Truncate(time.Minute).Add(time.Minute)
	for end := now.Add(8 * 24 * time.Hour); t.Before(end); t = t.Add(time.Minute) {
		if env.InWindow(t) {
			return t, true
		}
	}
	return time.Time{}, false
}

func freezeGate(env workspace.Environment, now time.Time) Gate {
	g := Gate{ID: GateFreeze, Title: "change freeze"}
	f, frozen := env.FrozenAt(now)
	if !frozen {
		g.Met = true
		g.Detail = "no freeze in effect"
		return g
	}
	g.Detail = fmt.Sprintf("%s is frozen from %s to %s", env.Name, f.From.Format(time.DateOnly), f.To.Format(time.DateOnly))
	if f.Reason != "" {
		g.Detail += " (" + f.Reason + ")"
	}
	g.Missing = fmt.Sprintf("wait until %s; an emergency change may override with --emergency --reason \"…\"", f.To.AddDate(0, 0, 1).Format(time.DateOnly))
	return g
}

// runs merges the lifecycle file's runs with the store's.
func (t *Task) runs(store []runbook.Run) []lifecycle.RunEntry {
	runs := lifecycle.Runs(t.Records)
	known := map[string]bool{}
	for _, r := range runs {
		known[r.RunID] = true
	}
	for _, r := range store {
		if known[r.ID] {
			continue
		}
		runs = append(runs, lifecycle.RunEntry{RunID: r.ID, Environment: r.Environment, RunSnapshot: r.Snapshot,
			Status: string(r.Status), Actor: r.CreatedBy, StartedAt: r.StartedAt, FinishedAt: r.FinishedAt, Emergency: r.Emergency})
	}
	return runs
}

// state names where the task is in its lifecycle, read against env (nil:
// no environment to run in).
func (t *Task) state(rep *Report, env *workspace.Environment) string {
	var completed *lifecycle.Record
	for i, r := range t.Records {
		switch r.Type {
		case lifecycle.Archived:
			return lifecycle.StateArchived
		case lifecycle.Completed:
			completed = &t.Records[i]
		}
	}
	if t.Archived {
		return lifecycle.StateArchived
	}
	for _, r := range rep.Runs {
		e, err := t.ws.Environment(r.Environment)
		if err == nil && e.Protected && !r.Finished() && (completed == nil || r.StartedAt.After(completed.Time)) {
			return lifecycle.StateExecuting
		}
	}
	if completed != nil {
		switch completed.Status {
		case string(runbook.RunFailed):
			return lifecycle.StateFailed
		case string(runbook.RunRolledBack):
			return lifecycle.StateRolledBack
		}
		return lifecycle.StateCompleted
	}
	met := func(id string) bool {
		for _, g := range rep.Gates {
			if g.ID == id {
				return g.Met
			}
		}
		return true // not required here
	}
	reviewed := len(rep.Reviews.History) > 0
	switch {
	case env == nil:
		if reviewed {
			return lifecycle.StateInReview
		}
		return lifecycle.StatePlanning
	case met(GateReviews) && met(GateRehearsal) && met(GateChecklist):
		if env.Reviewers == 0 && !reviewed && !env.Protected {
			return lifecycle.StatePlanning
		}
		return lifecycle.StateReady
	case met(GateReviews) && met(GateRehearsal) && env.Rehearsal:
		return lifecycle.StateRehearsed
	case met(GateReviews) && env.Reviewers > 0:
		return lifecycle.StateApproved
	case reviewed:
		return lifecycle.StateInReview
	}
	return lifecycle.StatePlanning
}

// WriteText prints the report for people.
func (r *Report) WriteText(w io.Writer) {
	fmt.Fprintf(w, "Task      %s\n", r.Task)
	fmt.Fprintf(w, "State     %s\n", r.State)
	fmt.Fprintf(w, "Snapshot  %s\n", r.Snapshot)
	if r.Author != "" {
		fmt.Fprintf(w, "Author    %s\n", r.Author)
	}
	if r.Environment == "" {
		fmt.Fprintln(w, "No environment in opsbook.yaml: no gates to report.")
		return
	}
	kind := "not protected"
	if r.Protected {
		kind = "protected"
	}
	if len(r.Gates) == 0 {
		fmt.Fprintf(w, "No gates before a run in %s (%s).\n", r.Environment, kind)
	} else {
		fmt.Fprintf(w, "Gates before a run in %s (%s):\n", r.Environment, kind)
	}
	r.WriteGates(w)
	if len(r.Reviews.History) > 0 {
		if r.Verified {
			fmt.Fprintln(w, "Reviews (verified: signed in to the server, or in commits signed with a key under signers:):")
		} else {
			fmt.Fprintln(w, "Reviews (unverified unless marked: names from git's user.email):")
		}
		writeReviews(w, r.Reviews)
	}
	if r.Unverified != nil {
		fmt.Fprintf(w, "Unverified reviews (git's user.email; not counted in %s):\n", r.Environment)
		writeReviews(w, *r.Unverified)
	}
	fmt.Fprintln(w, "Pre-execution checklist:")
	for _, it := range r.Checklist {
		if it.Ticked {
			note := ""
			if it.Note != "" {
				note = fmt.Sprintf(" %q", it.Note)
			}
			how := "verified"
			if !it.Verified {
				how = "unverified"
			}
			fmt.Fprintf(w, "  [x] %-18s %s (%s) at %s%s\n", it.ID, it.By, how, it.At.UTC().Format(time.RFC3339), note)
		} else {
			fmt.Fprintf(w, "  [ ] %-18s %s\n", it.ID, it.Text)
		}
	}
	if len(r.Runs) > 0 {
		fmt.Fprintln(w, "Runs:")
		for _, run := range r.Runs {
			fmt.Fprintf(w, "  %s  %-11s %-12s %s", run.RunID, run.Environment, run.Status, run.StartedAt.UTC().Format(time.RFC3339))
			if run.Emergency != "" {
				fmt.Fprintf(w, "  EMERGENCY OVERRIDE: %s", run.Emergency)
			}
			fmt.Fprintln(w)
		}
	}
}

// writeReviews prints a review history, one review a line.
func writeReviews(w io.Writer, rv lifecycle.Reviews) {
	for _, h := range rv.History {
		mark := ""
		switch v := h.Data["verified"]; v {
		case "":
		case "ssh":
			mark = "  [verified: signed commit " + h.Data["signer"] + "]"
		default:
			mark = "  [verified: " + v + "]"
		}
		if h.Stale {
			mark += "  [stale: earlier snapshot " + snapshot.ShortOf(h.Snapshot) + "]"
		}
		note := ""
		if h.Note != "" {
			note = fmt.Sprintf(" %q", h.Note)
		}
		fmt.Fprintf(w, "  %s  %-16s %s%s%s\n", h.Time.UTC().Format(time.RFC3339), h.Verdict, h.Actor, note, mark)
	}
}

// WriteGates prints one line per gate, with what is missing beneath it.
func (r *Report) WriteGates(w io.Writer) {
	for _, g := range r.Gates {
		mark := "[ ]"
		switch {
		case g.Met:
			mark = "[x]"
		case g.Overridden:
			mark = "[!]"
		}
		fmt.Fprintf(w, "  %s %-24s %s\n", mark, g.Title, g.Detail)
		if g.Overridden {
			fmt.Fprintf(w, "      %-24s overridden by the emergency change: %s\n", "", r.Emergency)
		} else if g.Missing != "" {
			fmt.Fprintf(w, "      %-24s missing: %s\n", "", g.Missing)
		}
	}
}
