// Package lifecycle keeps the record of a planned operation's lifecycle:
// an append-only, git-committable JSON Lines file beside the task's
// documents (ops/active/<task>/lifecycle.jsonl). Every event of the task —
// created, reviewed, checklist item ticked, run, completed, archived — is
// one line, so the history merges and diffs like any text file.
package lifecycle

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"time"
)

// FileName is the name of the record file inside a task directory.
const FileName = "lifecycle.jsonl"

// Type is what a record says happened.
type Type string

const (
	Created   Type = "created"   // the task's documents were generated
	Review    Type = "review"    // Verdict, Snapshot, Note
	Check     Type = "check"     // Item ticked on the pre-execution checklist, Note
	Run       Type = "run"       // RunID, Environment, Snapshot, Status (final run status)
	Completed Type = "completed" // the operation is done; Status: succeeded | failed | rolled_back
	Archived  Type = "archived"  // Path: where the task went
	Uncheck   Type = "uncheck"   // Item un-ticked again, Note: why
	// Override is an emergency override of a change window or freeze:
	// RunID, Environment, Snapshot, Note: the reason, Data["overrode"]: what.
	Override Type = "override"
)

// Review verdicts.
const (
	Approve        = "approve"
	RequestChanges = "request-changes"
)

// Record is one line of the lifecycle file. Fields beyond Time, Type and
// Actor are set as the type needs them; Data carries anything else so
// later record kinds need no format change.
type Record struct {
	Time        time.Time         `json:"time"`
	Type        Type              `json:"type"`
	Actor       string            `json:"actor,omitempty"`
	Snapshot    string            `json:"snapshot,omitempty"`
	Verdict     string            `json:"verdict,omitempty"`
	Item        string            `json:"item,omitempty"`
	RunID       string            `json:"run_id,omitempty"`
	Environment string            `json:"environment,omitempty"`
	Status      string            `json:"status,omitempty"`
	Path        string            `json:"path,omitempty"`
	StartedAt   time.Time         `json:"started_at,omitzero"`  // Run: when the run started
	FinishedAt  time.Time         `json:"finished_at,omitzero"` // Run: when it finished, once it has
	Note        string            `json:"note,omitempty"`
	Data        map[string]string `json:"data,omitempty"`
	// Line is the record's line in its file (1-based), when it was read
	// from one: a signed commit that added the line vouches for it.
	Line int `json:"-"`
}

// Append adds r as one line at the end of the file at path, creating it,
// and syncs it to disk before returning. A torn last line left by a crash
// is closed off first, so it cannot swallow the new record.
func Append(path string, r Record) error {
	if r.Time.IsZero() {
		r.Time = time.Now().UTC()
	}
	if r.Type == "" {
		return errors.New("lifecycle record without a type")
	}
	line, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encode lifecycle record: %w", err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("open lifecycle record: %w", err)
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Size() > 0 {
		last := make([]byte, 1)
		if _, err := f.ReadAt(last, st.Size()-1); err == nil && last[0] != '\n' {
			line = append([]byte{'\n'}, line...)
		}
	}
	// One write of the whole line: O_APPEND makes concurrent appenders
	// land whole lines after each other.
	if _, err := f.Write(append(line, '\n')); err != nil {
		return fmt.Errorf("append to %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", path, err)
	}
	return f.Close()
}

// Load reads every record of the file at path. A missing file is an empty
// history. A final line without its newline is a write that never
// finished and is ignored; any other unreadable line is an error naming
// its file:line.
func Load(path string) ([]Record, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read lifecycle record: %w", err)
	}
	return Parse(path, data)
}

// Parse reads records from the bytes of a lifecycle file; name is used in errors.
func Parse(name string, data []byte) ([]Record, error) {
	var recs []Record
	r := bufio.NewReader(bytes.NewReader(data))
	for lineNo := 1; ; lineNo++ {
		line, err := r.ReadBytes('\n')
		if err == io.EOF {
			break // an unterminated last line is an unfinished write
		}
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		var rec Record
		if err := json.Unmarshal(line, &rec); err != nil {
			return recs, fmt.Errorf("%s:%d:1: not a lifecycle record (%v); the file is append-only JSON Lines, restore the line from git", name, lineNo, err)
		}
		if rec.Type == "" || rec.Time.IsZero() {
			return recs, fmt.Errorf("%s:%d:1: lifecycle record without time or type; restore the line from git", name, lineNo)
		}
		rec.Line = lineNo
		recs = append(recs, rec)
	}
	return recs, nil
}

// Summary is what the records say about a task so far.
type Summary struct {
	State     string    `json:"state"` // planning, in review, approved, executing, completed, failed, rolled back, archived
	Created   time.Time `json:"created,omitzero"`
	Author    string    `json:"author,omitempty"`
	Completed time.Time `json:"completed,omitzero"` // zero until a completed record
	Outcome   string    `json:"outcome,omitempty"`  // status of the completed record
	LastRun   *Record   `json:"last_run,omitempty"`
	Approvals int       `json:"approvals"` // distinct approvers of the latest reviewed snapshot
	Archived  bool      `json:"archived"`
}

// Summarize folds records into a Summary. The lifecycle gates (issue 5)
// refine State; this reports what the file alone shows.
func Summarize(recs []Record) Summary {
	s := Summary{State: StatePlanning}
	approvers := map[string]bool{}
	snapshot := ""
	for i, r := range recs {
		switch r.Type {
		case Created:
			s.Created, s.Author = r.Time, r.Actor
		case Review:
			if r.Snapshot != snapshot {
				snapshot = r.Snapshot
				approvers = map[string]bool{}
			}
			if r.Verdict == Approve {
				approvers[r.Actor] = true
			} else {
				delete(approvers, r.Actor)
			}
			s.Approvals = len(approvers)
			if s.State == StatePlanning || s.State == StateInReview || s.State == StateApproved {
				s.State = StateInReview
				if s.Approvals >= 2 {
					s.State = StateApproved
				}
			}
		case Run:
			s.LastRun = &recs[i]
			if s.Completed.IsZero() {
				s.State = StateExecuting
			}
		case Completed:
			s.Completed, s.Outcome = r.Time, r.Status
			switch r.Status {
			case "failed":
				s.State = StateFailed
			case "rolled_back":
				s.State = StateRolledBack
			default:
				s.State = StateCompleted
			}
		case Archived:
			s.Archived = true
			s.State = StateArchived
		}
	}
	return s
}

// Actor names the person at the keyboard: git's user.email in dir, else
// the OS user name.
func Actor(dir string) string {
	if s, ok := gitUserEmail(dir); ok {
		if s = strings.TrimSpace(s); s != "" {
			return s
		}
	}
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	return "unknown"
}

// PathIn returns the lifecycle file of the task directory dir.
func PathIn(dir string) string { return filepath.Join(dir, FileName) }
