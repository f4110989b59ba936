package notify

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/opsbook/opsbook/internal/lifecycle/gates"
	"github.com/opsbook/opsbook/internal/store"
	"github.com/opsbook/opsbook/internal/workspace"
)

// ScanTasks adds the notices of the active tasks' lifecycle news: reviews
// requested for the current snapshot (and complete, once they are), and a
// completed task overdue for the archive. Every node may scan: each notice
// has a dedupe key (task, news, snapshot), so it exists once, and a new
// snapshot (an edited runbook) asks for reviews again. It returns how many
// notices were new.
func ScanTasks(ctx context.Context, st *store.Store, ws *workspace.Workspace, now time.Time) (int, error) {
	tasks, err := ws.Tasks(false, now)
	if err != nil {
		return 0, fmt.Errorf("scan tasks: %w", err)
	}
	env := gates.DefaultEnvironment(ws)
	added := 0
	add := func(n store.Notice) error {
		ok, err := st.AddNotice(ctx, n)
		if ok {
			added++
		}
		return err
	}
	for _, wt := range tasks {
		if wt.ArchiveOverdue {
			if err := add(store.Notice{Dedupe: "task/" + wt.Name + "/overdue", Kind: TaskOverdue, Task: wt.Name,
				Detail: map[string]string{"completed": wt.Lifecycle.Completed.Format(time.DateOnly),
					"due": wt.Lifecycle.Completed.Add(workspace.ArchiveAfter).Format(time.DateOnly)}}); err != nil {
				return added, err
			}
			continue
		}
		t, err := gates.Load(ws, wt.Name)
		if err != nil || env == "" {
			continue // a task that does not load is lint's to report, not ours
		}
		verified, err := st.VerifiedRecords(ctx, wt.Name)
		if err != nil {
			return added, err
		}
		rep, err := t.Evaluate(env, now, gates.Options{Verified: &gates.Verified{Records: verified}})
		if err != nil {
			continue
		}
		var g *gates.Gate
		for i := range rep.Gates {
			if rep.Gates[i].ID == gates.GateReviews {
				g = &rep.Gates[i]
			}
		}
		if g == nil {
			continue // this environment asks for no reviews
		}
		news, detail := TaskReviewRequested, map[string]string{"snapshot": t.Snapshot}
		if g.Met {
			news = TaskReviewComplete
			var names []string
			for _, a := range rep.Reviews.Approvers {
				names = append(names, a.Actor)
			}
			detail["reviewers"] = strings.Join(names, ", ")
		} else {
			env, _ := ws.Environment(env)
			detail["needed"] = strconv.Itoa(env.Reviewers - len(rep.Reviews.Approvers))
		}
		key := "task/" + wt.Name + "/" + strings.TrimPrefix(news, "task.") + "/" + t.Snapshot
		if err := add(store.Notice{Dedupe: key, Kind: news, Task: wt.Name, Detail: detail}); err != nil {
			return added, err
		}
	}
	return added, nil
}
