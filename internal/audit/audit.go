// Package audit is opsbook's append-only, hash-chained audit log: every
// change and every run decision, who made it, when and from where. Each
// entry's hash is SHA-256 over the previous entry's hash and the entry's
// canonical form, so editing, deleting or reordering any row breaks the
// chain at that row, and Verify names the first bad one.
package audit

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"
)

// Genesis is the "previous hash" of the first entry.
const Genesis = "0000000000000000000000000000000000000000000000000000000000000000"

// Entry is one audited action.
type Entry struct {
	Seq    int64             `json:"seq"`    // 1, 2, 3…, assigned on append
	Time   time.Time         `json:"time"`   // truncated to microseconds, UTC
	Actor  string            `json:"actor"`  // user or service name; "system" for the server itself
	Action string            `json:"action"` // dotted verb: "run.start", "variable.set", "user.create", …
	Target string            `json:"target"` // what it was done to: "run/r-…", "user/alice", …
	Remote string            `json:"remote"` // client address, "" for the server itself
	Detail map[string]string `json:"detail,omitempty"`
	Prev   string            `json:"prev"` // hash of the previous entry, Genesis for the first
	Hash   string            `json:"hash"`
}

// Canonical is the byte form that is hashed: JSON with a fixed field order,
// sorted detail keys and the time as unix microseconds. Any change to a
// stored column changes it.
func (e Entry) Canonical() []byte {
	c := struct {
		Seq    int64             `json:"seq"`
		Time   int64             `json:"time_us"`
		Actor  string            `json:"actor"`
		Action string            `json:"action"`
		Target string            `json:"target"`
		Remote string            `json:"remote"`
		Detail map[string]string `json:"detail"`
	}{e.Seq, e.Time.UnixMicro(), e.Actor, e.Action, e.Target, e.Remote, e.Detail}
	if c.Detail == nil {
		c.Detail = map[string]string{}
	}
	b, _ := json.Marshal(c) // only strings and integers: cannot fail
	return b
}

// ChainHash is the hash of e when it follows the entry whose hash is prev.
func ChainHash(prev string, e Entry) string {
	h := sha256.New()
	h.Write([]byte(prev))
	h.Write([]byte{'\n'})
	h.Write(e.Canonical())
	return hex.EncodeToString(h.Sum(nil))
}

// Seal fills in Prev, Seq and Hash of e as the successor of last (nil for
// the first entry) and normalises its time.
func Seal(last *Entry, e Entry) Entry {
	e.Time = e.Time.UTC().Truncate(time.Microsecond)
	e.Prev, e.Seq = Genesis, 1
	if last != nil {
		e.Prev, e.Seq = last.Hash, last.Seq+1
	}
	e.Hash = ChainHash(e.Prev, e)
	return e
}

// Problem is the first place where the stored log is not what was written.
type Problem struct {
	Seq    int64  `json:"seq"` // the first bad row (for a missing row: the seq expected there)
	Reason string `json:"reason"`
}

func (p Problem) String() string { return fmt.Sprintf("audit entry %d: %s", p.Seq, p.Reason) }

// Verifier checks entries one by one, in the order they are stored.
type Verifier struct {
	prev    *Entry
	checked int64
	problem *Problem
}

// Add checks the next entry. Once a problem is found, later entries are
// ignored: everything after the first bad row is suspect anyway.
func (v *Verifier) Add(e Entry) {
	if v.problem != nil {
		return
	}
	wantSeq, wantPrev := int64(1), Genesis
	if v.prev != nil {
		wantSeq, wantPrev = v.prev.Seq+1, v.prev.Hash
	}
	switch {
	case e.Seq > wantSeq:
		v.problem = &Problem{Seq: wantSeq, Reason: fmt.Sprintf("missing or out of order: the next stored entry is %d (rows were deleted or moved)", e.Seq)}
	case e.Seq < wantSeq:
		v.problem = &Problem{Seq: e.Seq, Reason: fmt.Sprintf("out of order: expected entry %d", wantSeq)}
	case e.Prev != wantPrev:
		v.problem = &Problem{Seq: e.Seq, Reason: "does not follow the previous entry (previous hash differs: an earlier row was changed or rows were reordered)"}
	case ChainHash(e.Prev, e) != e.Hash:
		v.problem = &Problem{Seq: e.Seq, Reason: "content does not match its hash (the row was edited)"}
	}
	cp := e
	v.prev = &cp
	v.checked++
}

// Finish ends the check. head is the last (seq, hash) the store recorded
// separately from the log, so that deleting the newest rows is detected
// too; a nil head skips that check.
func (v *Verifier) Finish(head *Entry) (checked int64, problem *Problem) {
	if v.problem == nil && head != nil {
		switch {
		case v.prev == nil && head.Seq > 0:
			v.problem = &Problem{Seq: 1, Reason: fmt.Sprintf("missing: the log is empty but %d entries were written", head.Seq)}
		case v.prev != nil && v.prev.Seq < head.Seq:
			v.problem = &Problem{Seq: v.prev.Seq + 1, Reason: fmt.Sprintf("missing: the log ends at %d but %d entries were written (newest rows were deleted)", v.prev.Seq, head.Seq)}
		case v.prev != nil && v.prev.Hash != head.Hash:
			v.problem = &Problem{Seq: v.prev.Seq, Reason: "the newest entry is not the one that was written last"}
		}
	}
	return v.checked, v.problem
}
