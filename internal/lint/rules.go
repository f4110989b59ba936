package lint

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/opsbook/opsbook/internal/markdown"
	"github.com/opsbook/opsbook/internal/runbook"
)

func (l *linter) frontMatter() {
	fm := l.doc.Front
	if !fm.Present {
		l.errorf(runbook.Pos{Line: 1, Col: 1}, "missing-kind",
			"no front matter: start the file with a --- line, kind: runbook (or rollback, checklist, postmortem), title: …, and a closing --- line")
		return
	}
	if _, ok := fm.Keys["kind"]; !ok {
		l.errorf(fm.Pos, "missing-kind", "the front matter has no kind; add kind: runbook, rollback, checklist or postmortem")
	}
	if fm.Rollback != "" && !strings.Contains(fm.Rollback, "<<FILL:") {
		l.rollback()
	}
	if fm.Kind == runbook.KindRunbook && (fm.Change == runbook.ChangeNormal || fm.Change == runbook.ChangeEmergency) {
		if !slices.ContainsFunc(l.doc.Steps, func(s runbook.Step) bool { return s.Gate != nil }) {
			l.errorf(l.keyPos("change"), "missing-gate",
				"%s change needs at least one Go/No-Go decision: add a step with a ```gate {approvers=1} block stating the criteria", article(string(fm.Change)))
		}
	}
}

// rollback checks the rollback: reference: inside the workspace, and a
// document that can be read.
func (l *linter) rollback() {
	target, err := runbook.RollbackPath(l.root(), l.doc)
	var refused *runbook.RefError
	if errors.As(err, &refused) {
		l.diags = append(l.diags, refused.Diagnostic)
		return
	}
	src, err := markdown.ReadFile(target)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		l.errorf(l.keyPos("rollback"), "rollback-missing",
			"rollback document %s does not exist (looked for %s); create it (opsbook new writes one) or fix the path, which is relative to this file",
			l.doc.Front.Rollback, target)
		return
	case err != nil:
		l.errorf(l.keyPos("rollback"), runbook.RuleBadReference, "rollback: %s cannot be read: %s", l.doc.Front.Rollback, rootCause(err))
		return
	}
	rb, _ := markdown.Parse(target, src)
	for _, p := range unsuppliedRollbackParams(l.doc, rb) {
		l.errorf(l.keyPos("rollback"), "rollback-params",
			"rollback document %s requires parameter %s, which this runbook neither declares nor publishes as a step output, and which has no default there: the rollback would run without it; declare %s under params: here, or give it a default in %s",
			l.doc.Front.Rollback, p.Name, p.Name, l.doc.Front.Rollback)
	}
}

// unsuppliedRollbackParams are the required parameters of a rollback
// document without a default that the runbook cannot supply: the rollback
// runs with the runbook's parameter values and its steps' outputs, by name.
func unsuppliedRollbackParams(doc, rollback *runbook.Document) []runbook.Param {
	supplied := map[string]bool{}
	for _, p := range doc.Front.Params {
		supplied[p.Name] = true
	}
	for _, s := range doc.Steps {
		for _, o := range s.Outputs {
			supplied[o] = true
		}
	}
	var missing []runbook.Param
	for _, p := range rollback.Front.Params {
		if p.Required && !p.HasDefault && !supplied[p.Name] {
			missing = append(missing, p)
		}
	}
	return missing
}

// root is the directory the document's references must stay in.
func (l *linter) root() string {
	if l.refRoot == "" {
		l.refRoot = runbook.RootOf(l.doc.Path)
		if !filepath.IsAbs(l.doc.Path) {
			// The document's path is relative to the working directory:
			// keep the root in the same form for CheckRef.
			if wd, err := os.Getwd(); err == nil {
				if rel, err := filepath.Rel(wd, l.refRoot); err == nil {
					l.refRoot = rel
				}
			}
		}
	}
	return l.refRoot
}

// sections reports the required sections a document lacks, naming the
// heading in the document's language first and in the other language after.
func (l *linter) sections() {
	required := runbook.RequiredSections[l.doc.Front.Kind]
	have := map[runbook.SectionRole]bool{}
	for _, s := range l.doc.Sections {
		if s.Level == 2 && s.Role != "" {
			have[s.Role] = true
		}
	}
	for _, role := range required {
		if have[role] {
			continue
		}
		if role == runbook.SectionVerification && l.stepsCheckThemselves() {
			continue
		}
		spec, _ := runbook.SpecFor(role)
		other := "zh"
		if l.doc.Lang == "zh" {
			other = "en"
		}
		l.errorf(l.endPos(), "missing-section", "%s needs the section \"## %s\" (%s); add it",
			article(string(l.doc.Front.Kind)), spec.Title(l.doc.Lang), spec.Title(other))
	}
}

// stepsCheckThemselves reports whether every executable step carries its
// own check (verify, expect or until), which makes them the runbook's
// verification checkpoints: the section is then not required. When it is
// missing and some step has no check, each such step is warned about at
// its line.
func (l *linter) stepsCheckThemselves() bool {
	all := true
	for _, s := range l.doc.Steps {
		if s.Action == nil || s.Verify != nil || s.Expect != nil || s.Until != nil {
			continue
		}
		all = false
		l.warnf(s.Pos, "step-without-check",
			"step %q has no check of its own, and the runbook has no verification checkpoints section: add a verify, expect or until block to the step, or the section",
			s.Title)
	}
	return all
}

// endPos is where a missing section is reported: at the last heading, near
// where it would be added (line 1 when there is no heading).
func (l *linter) endPos() runbook.Pos {
	if len(l.doc.Sections) == 0 {
		return runbook.Pos{Line: 1, Col: 1}
	}
	return runbook.Pos{Line: l.doc.Sections[len(l.doc.Sections)-1].Pos.Line, Col: 1}
}

func (l *linter) steps() {
	seen := map[string]runbook.Step{}
	declared := map[string]bool{runbook.TargetLocal: true}
	var targetNames []string
	for _, t := range l.doc.Front.Targets {
		declared[t.Name] = true
		targetNames = append(targetNames, t.Name)
	}
	for _, s := range l.doc.Steps {
		if first, dup := seen[s.ID]; dup {
			l.errorf(s.Pos, "duplicate-step-id", "step id %q is already used by the step at line %d; give this step a different id= on its action block",
				s.ID, first.Pos.Line)
		} else {
			seen[s.ID] = s
		}
		primary := s.Primary()
		if primary == nil {
			l.errorf(s.Pos, "step-without-action",
				"step %q has nothing to do: add a ```sh {…} block with its command, a ```manual block with an instruction, a ```gate or a ```call block", s.Title)
			continue
		}
		l.verification(s, primary)
		if b, check := runbook.UnrunCheck(s); b != nil {
			l.errorf(b.Pos, "check-never-runs", "%s", runbook.UnrunCheckMessage(s, check))
		}
		l.checksCanFail(s)
		l.fanoutPolicy(s, primary)
		if s.Target != "" && !declared[s.Target] {
			pos := s.Pos
			for _, a := range primary.Attrs {
				if a.Key == "target" {
					pos = a.Pos
				}
			}
			l.errorf(pos, "unknown-target", "target %q is not declared; add it under targets: in the front matter (e.g. %s: {role: %s}) or use target=local%s",
				s.Target, s.Target, s.Target, markdown.DidYouMean(s.Target, targetNames))
		}
		if s.Call != nil {
			l.call(s)
		}
	}
}

// verification requires every command step to say how its success is
// checked. Manual instructions and gates are their own check; an until
// block checks itself; a called runbook has its own checkpoints.
func (l *linter) verification(s runbook.Step, primary *runbook.Block) {
	if s.Action == nil {
		return
	}
	if s.Verify != nil || s.Expect != nil || s.Until != nil {
		return
	}
	if v, ok := primary.Attr("verify"); ok && v == "none" {
		if s.VerifyNone == "" {
			l.errorf(primary.Pos, "step-without-verification", "verify=none needs a reason: add reason=\"why no check is needed\"")
		}
		return
	}
	l.errorf(s.Pos, "step-without-verification",
		"step %q has no verification checkpoint: add a ```sh {verify} block (its exit status decides), a ```text {expect} block, an until block, or verify=none reason=\"…\" on the action",
		s.Title)
}

// call checks that a called runbook exists and that its parameters are bound.
func (l *linter) call(s runbook.Step) {
	rel, _ := s.Call.Attr("runbook")
	if rel == "" || strings.Contains(rel, "<<FILL:") {
		return
	}
	path, err := runbook.CheckRef(l.root(), l.doc.Path, rel)
	if err != nil {
		l.errorf(s.Call.Pos, runbook.RuleBadReference, "call: %v", err)
		return
	}
	called, _, err := markdown.ParseFile(path)
	if err != nil {
		l.errorf(s.Call.Pos, "call-missing", "called runbook %s cannot be read (%s); fix runbook= (relative to this file)", rel, rootCause(err))
		return
	}
	params := map[string]runbook.Param{}
	var names []string
	for _, p := range called.Front.Params {
		params[p.Name] = p
		names = append(names, p.Name)
	}
	bound := map[string]bool{}
	for _, b := range s.Call.Bindings {
		bound[b.Name] = true
		p, ok := params[b.Name]
		if !ok {
			l.errorf(b.Pos, "bad-call", "%s declares no parameter %s%s", rel, b.Name, suggestOrList(b.Name, names))
			continue
		}
		// A literal is checked as a run-time value would be; a forwarded
		// variable ($VAR) is checked when the call runs.
		if b.From == "" && !strings.Contains(b.Value, "<<FILL:") {
			if _, err := runbook.CheckParam(p, b.Value); err != nil {
				l.errorf(b.Pos, "bad-call", "%s: %v; fix the value or forward a variable (%s=$VARIABLE)", rel, err, b.Name)
			}
		}
	}
	for _, p := range called.Front.Params {
		if p.Required && !p.HasDefault && !bound[p.Name] {
			l.errorf(s.Call.Pos, "bad-call", "%s requires parameter %s; add a line %s=value or %s=$VARIABLE to the call block", rel, p.Name, p.Name, p.Name)
		}
	}
}

func suggestOrList(name string, names []string) string {
	if s := markdown.DidYouMean(name, names); s != "" {
		return s
	}
	if len(names) == 0 {
		return "; it has no params"
	}
	return "; its params are " + strings.Join(names, ", ")
}

func rootCause(err error) string {
	for {
		u := errors.Unwrap(err)
		if u == nil {
			return err.Error()
		}
		err = u
	}
}

func (l *linter) placeholders() {
	for i, pos := range l.doc.Placeholder {
		what := "the placeholder"
		if i < len(l.doc.PlaceholderText) && l.doc.PlaceholderText[i] != "" {
			what = "\"" + l.doc.PlaceholderText[i] + "\""
		}
		l.errorf(pos, "placeholder", "template text left: fill in %s (and remove the <<FILL: …>> marker) before this document can run", what)
	}
}

// article puts "a" or "an" before a word.
func article(word string) string {
	if word != "" && strings.ContainsRune("aeiou", rune(word[0])) {
		return "an " + word
	}
	return "a " + word
}
