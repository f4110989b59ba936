// Package runbook holds opsbook's domain: the parsed runbook document, its
// steps and blocks, runs and their event log, and diagnostics. It imports
// nothing else from opsbook and only the standard library, so every other
// package can depend on it.
//
// The Markdown syntax these types describe is specified in
// docs/runbook-format.md; the parser lives in internal/markdown.
package runbook

import (
	"fmt"
	"time"
)

// Kind is the kind of a document, from its front matter.
type Kind string

const (
	KindRunbook    Kind = "runbook"
	KindRollback   Kind = "rollback"
	KindChecklist  Kind = "checklist"
	KindPostmortem Kind = "postmortem"
)

// Kinds lists every valid document kind.
var Kinds = []Kind{KindRunbook, KindRollback, KindChecklist, KindPostmortem}

// ChangeType classifies a change as ITIL does.
type ChangeType string

const (
	ChangeStandard  ChangeType = "standard"
	ChangeNormal    ChangeType = "normal"
	ChangeEmergency ChangeType = "emergency"
)

// Pos is a 1-based position in a source file. Col counts bytes of the line,
// starting at 1. The zero Pos means "unknown".
type Pos struct {
	Line int `json:"line"`
	Col  int `json:"col"`
}

// IsZero reports whether the position is unknown.
func (p Pos) IsZero() bool { return p.Line == 0 }

// Document is one parsed Markdown document (runbook, rollback plan,
// checklist or postmortem) with the source position of everything in it.
type Document struct {
	Path        string      `json:"path"`
	Front       FrontMatter `json:"front"`
	Title       string      `json:"title"` // front matter title, else the first H1
	TitlePos    Pos         `json:"title_pos"`
	Sections    []Section   `json:"sections"`
	Steps       []Step      `json:"steps"`
	Lang        string      `json:"lang"` // "en" or "zh": front matter lang, else detected from headings
	Source      []byte      `json:"-"`    // the bytes that were parsed, for snapshots
	Placeholder []Pos       `json:"placeholders,omitempty"`
	// PlaceholderText is, for each entry of Placeholder, the text between
	// "<<FILL:" and ">>": what the author still has to write.
	PlaceholderText []string `json:"placeholder_text,omitempty"`
}

// FrontMatter is the YAML block at the top of a document.
type FrontMatter struct {
	Present      bool          `json:"present"`
	Pos          Pos           `json:"pos"` // the opening "---"
	Kind         Kind          `json:"kind"`
	Title        string        `json:"title"`
	System       string        `json:"system"`
	Operation    string        `json:"operation"`
	Owner        string        `json:"owner"`
	Change       ChangeType    `json:"change"`
	Environments []string      `json:"environments"`
	Estimate     time.Duration `json:"estimate"`
	Rollback     string        `json:"rollback"` // path relative to the document
	Lang         string        `json:"lang"`
	Tags         []string      `json:"tags"`
	Params       []Param       `json:"params"`
	Targets      []Target      `json:"targets"`
	Guards       []Guard       `json:"guards"`
	// Watch keeps the guards evaluated for this long after the run succeeds
	// (the watch after the operation); 0: no watch.
	Watch time.Duration  `json:"watch,omitempty"`
	Keys  map[string]Pos `json:"-"` // position of every top-level key, for diagnostics
}

// ParamType is the declared type of a parameter.
type ParamType string

const (
	ParamString ParamType = "string"
	ParamInt    ParamType = "int"
	ParamBool   ParamType = "bool"
	ParamEnum   ParamType = "enum"
	ParamPath   ParamType = "path"
	ParamSecret ParamType = "secret"
)

// ParamTypes lists every valid parameter type.
var ParamTypes = []ParamType{ParamString, ParamInt, ParamBool, ParamEnum, ParamPath, ParamSecret}

// Param is a typed input of a runbook. Its value reaches commands as the
// environment variable of the same name, never by text substitution.
type Param struct {
	Name        string    `json:"name"`
	Type        ParamType `json:"type"`
	Required    bool      `json:"required"`
	Default     string    `json:"default,omitempty"`
	HasDefault  bool      `json:"has_default"`
	Allowed     []string  `json:"allowed,omitempty"`
	Description string    `json:"description,omitempty"`
	Secret      bool      `json:"secret"` // type secret, or secret: true on another type
	Pos         Pos       `json:"pos"`
}

// Target names a set of hosts by tag selectors, e.g. db → {role: db}.
// The name "local" is built in and means the host opsbook runs on.
type Target struct {
	Name     string            `json:"name"`
	Selector map[string]string `json:"selector"`
	Pos      Pos               `json:"pos"`
}

// TargetLocal is the built-in target: the machine opsbook runs on.
const TargetLocal = "local"

// Guard is a metric guard: a Prometheus query checked during a run.
type Guard struct {
	Name      string        `json:"name"`
	Query     string        `json:"query"`
	Op        string        `json:"op"` // one of > >= < <= == !=
	Threshold float64       `json:"threshold"`
	Interval  time.Duration `json:"interval"`
	OnBreach  string        `json:"on_breach"` // pause | rollback
	Pos       Pos           `json:"pos"`
}

// SectionRole is what a heading means to opsbook, whatever language it is in.
type SectionRole string

// Section is a heading of the document.
type Section struct {
	Title string      `json:"title"`
	Level int         `json:"level"`
	Role  SectionRole `json:"role,omitempty"` // empty when the heading is not a recognised section
	Pos   Pos         `json:"pos"`
}

// OnFail is a step's failure policy.
type OnFail string

const (
	OnFailAbort    OnFail = "abort"
	OnFailContinue OnFail = "continue"
	OnFailRollback OnFail = "rollback"
	OnFailAsk      OnFail = "ask"
)

// OnFails lists every valid failure policy.
var OnFails = []OnFail{OnFailAbort, OnFailContinue, OnFailRollback, OnFailAsk}

// Step is an H3 heading inside a steps section, with its blocks.
// Step-level attributes are written on the step's primary block (its action,
// manual, gate or call block).
type Step struct {
	ID     string   `json:"id"` // id attribute, else derived from the heading
	Title  string   `json:"title"`
	Pos    Pos      `json:"pos"`             // the heading
	Index  int      `json:"index"`           // 0-based position in Document.Steps
	Prose  string   `json:"prose,omitempty"` // the step's paragraphs, for people
	Action *Block   `json:"action,omitempty"`
	Manual *Block   `json:"manual,omitempty"`
	Gate   *Block   `json:"gate,omitempty"`
	Call   *Block   `json:"call,omitempty"`
	Verify *Block   `json:"verify,omitempty"`
	Expect *Block   `json:"expect,omitempty"`
	Until  *Block   `json:"until,omitempty"`
	Blocks []*Block `json:"-"` // every fenced block of the step, in order, including unannotated ones

	Target        string        `json:"target,omitempty"` // empty means local
	Timeout       time.Duration `json:"timeout,omitempty"`
	Retries       int           `json:"retries,omitempty"`
	Backoff       time.Duration `json:"backoff,omitempty"`
	OnFail        OnFail        `json:"on_fail,omitempty"` // empty means abort
	Estimate      time.Duration `json:"estimate,omitempty"`
	Idempotent    bool          `json:"idempotent,omitempty"`
	VerifyNone    string        `json:"verify_none,omitempty"` // the reason given with verify=none
	Outputs       []string      `json:"outputs,omitempty"`     // names the step promises to publish
	Parallel      int           `json:"parallel,omitempty"`
	Batch         string        `json:"batch,omitempty"`         // "25%" or "3"
	MaxFailures   string        `json:"max_failures,omitempty"`  // "1" or "10%"
	SkipNoHosts   bool          `json:"skip_no_hosts,omitempty"` // no_hosts=skip: no host selected skips the step
	Approvers     int           `json:"approvers,omitempty"`     // gate: distinct approvers needed
	ApproverRoles []string      `json:"approver_roles,omitempty"`
}

// BlockRole is what a fenced block does in a step.
type BlockRole string

const (
	BlockAction BlockRole = "action" // a command to run
	BlockVerify BlockRole = "verify" // a command whose exit status decides
	BlockExpect BlockRole = "expect" // text the action's output must contain (or match)
	BlockUntil  BlockRole = "until"  // a command polled until it succeeds
	BlockManual BlockRole = "manual" // an instruction the operator confirms
	BlockGate   BlockRole = "gate"   // a Go/No-Go decision with its criteria
	BlockCall   BlockRole = "call"   // a call of another runbook
	BlockPlain  BlockRole = ""       // an illustration with no opsbook meaning
)

// Block is a fenced code block with its info-string attributes.
type Block struct {
	Role     BlockRole     `json:"role"`
	Lang     string        `json:"lang"` // first word of the info string: sh, bash, python3, text, manual, gate, call
	Attrs    []Attr        `json:"attrs,omitempty"`
	Body     string        `json:"body"`
	Pos      Pos           `json:"pos"`                // the opening fence
	BodyLine int           `json:"body_line"`          // line of the first body line
	Regex    bool          `json:"regex,omitempty"`    // expect=regex
	Interval time.Duration `json:"interval,omitempty"` // until
	Timeout  time.Duration `json:"timeout,omitempty"`  // until, verify
	// NoErrexit is errexit=false on an action, verify or until block: the
	// shell runs it without set -e (and pipefail), so a failing line does
	// not end the script. By default sh blocks run with -e and bash blocks
	// with -e -o pipefail.
	NoErrexit bool `json:"no_errexit,omitempty"`
	// Bindings are a call block's NAME=value lines: the called runbook's
	// parameters, bound to literals or forwarded from the caller.
	Bindings []Binding `json:"bindings,omitempty"`
}

// Binding sets one parameter of a called runbook. When From is set the line
// was NAME=$VAR (or ${VAR}) and the value is the caller's variable VAR at run
// time — a binding, never text substitution; otherwise Value is the literal.
type Binding struct {
	Name  string `json:"name"`
	Value string `json:"value,omitempty"`
	From  string `json:"from,omitempty"`
	Pos   Pos    `json:"pos"`
}

// Primary returns the block that carries the step's attributes and does its
// work: the action, else the manual instruction, the gate, the call, and
// finally an until block when that is the step's only block (it is then both
// the action and its check). It returns nil for a step with none of them.
func (s *Step) Primary() *Block {
	switch {
	case s.Action != nil:
		return s.Action
	case s.Manual != nil:
		return s.Manual
	case s.Gate != nil:
		return s.Gate
	case s.Call != nil:
		return s.Call
	}
	return s.Until
}

// UnrunCheck is a verify, expect or until block of s that opsbook never
// runs, and which of the three it is: checks belong to an action, and a
// manual, gate or call step has none. nil when every check of s runs.
func UnrunCheck(s Step) (*Block, string) {
	if s.Action != nil || (s.Manual == nil && s.Gate == nil && s.Call == nil) {
		return nil, ""
	}
	for _, c := range []struct {
		b    *Block
		name string
	}{{s.Verify, "verify"}, {s.Expect, "expect"}, {s.Until, "until"}} {
		if c.b != nil {
			return c.b, c.name
		}
	}
	return nil, ""
}

// UnrunCheckMessage says why check, UnrunCheck(s), never runs and what to do.
func UnrunCheckMessage(s Step, check string) string {
	kind := "call"
	switch {
	case s.Manual != nil:
		kind = "manual"
	case s.Gate != nil:
		kind = "gate"
	}
	return fmt.Sprintf("the %s block of step %q never runs: it is a %s step, and checks belong to a command; make the check a step of its own after it (an sh step whose command is the check, with verify=none reason=\"the action is the check\")",
		check, s.ID, kind)
}

// Attr is one key or key=value pair of a fence's info string.
type Attr struct {
	Key      string `json:"key"`
	Value    string `json:"value,omitempty"`
	HasValue bool   `json:"has_value"`
	Pos      Pos    `json:"pos"`
}

// Attr returns the value of the named attribute and whether it is present.
func (b *Block) Attr(key string) (string, bool) {
	if b == nil {
		return "", false
	}
	for _, a := range b.Attrs {
		if a.Key == key {
			return a.Value, true
		}
	}
	return "", false
}

// Shells are the interpreters that are always accepted for an action.
// Any other word in a fence that carries opsbook attributes is taken as an
// interpreter to look up on the target (python3, pwsh, …).
var Shells = []string{"sh", "bash"}

// Builtins are the environment variables opsbook sets for every command.
var Builtins = []string{
	"OPSBOOK_RUN_ID",    // the run's id
	"OPSBOOK_ENV",       // the environment name
	"OPSBOOK_STEP",      // the step id
	"OPSBOOK_ATTEMPT",   // 1 for the first attempt, 2 for the first retry, …
	"OPSBOOK_OUTPUT",    // file the command appends name=value lines to
	"OPSBOOK_HOST",      // the target host's name ("local" on the local host)
	"OPSBOOK_WORKSPACE", // the workspace directory
	"OPSBOOK_RUNBOOK",   // the runbook's path relative to the workspace
	"OPSBOOK_SNAPSHOT",  // the snapshot hash
	"OPSBOOK_DRY_RUN",   // "1" when rehearsing a plan without executing it (never set during real runs)
}
