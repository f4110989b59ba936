package lint

import "github.com/opsbook/opsbook/internal/runbook"

// Rule describes one diagnostic rule, for SARIF and for documentation.
type Rule struct {
	ID          string
	Severity    runbook.Severity // the usual severity; a few rules also warn
	Description string
}

// Rules lists every rule the parser and the linter report, by id.
var Rules = []Rule{
	{"front-matter", runbook.SeverityError, "The YAML front matter is malformed or not closed."},
	{"unknown-key", runbook.SeverityError, "The front matter has a key opsbook does not know (error when it looks like a typo)."},
	{"missing-kind", runbook.SeverityError, "The document has no front matter or no kind."},
	{"unknown-kind", runbook.SeverityError, "kind is not runbook, rollback, checklist or postmortem."},
	{"bad-change", runbook.SeverityError, "change is not standard, normal or emergency."},
	{"bad-lang", runbook.SeverityError, "lang is not en or zh."},
	{"bad-duration", runbook.SeverityError, "A duration is not like 90s, 5m, 1h30m or 1d."},
	{"bad-param", runbook.SeverityError, "A parameter declaration is invalid (name, type, default, allowed values)."},
	{"bad-target", runbook.SeverityError, "A target declaration is invalid."},
	{"bad-guard", runbook.SeverityError, "A metric guard is invalid or incomplete."},
	{"bad-threshold", runbook.SeverityError, "A guard threshold is not a comparison and a number such as \"> 5\"."},
	{"attribute-syntax", runbook.SeverityError, "A fence's {attributes} cannot be read."},
	{"unknown-attribute", runbook.SeverityError, "A fence carries an attribute opsbook does not know."},
	{"misplaced-attribute", runbook.SeverityWarning, "An attribute has no effect on the block it is written on."},
	{"bad-attribute-value", runbook.SeverityError, "An attribute's value is invalid."},
	{"bad-on-fail", runbook.SeverityError, "on_fail is not abort, continue, rollback or ask."},
	{"bad-regex", runbook.SeverityError, "An expect=regex block does not compile."},
	{"bad-call", runbook.SeverityError, "A call block's runbook= or parameter bindings are wrong."},
	{"missing-language", runbook.SeverityError, "A command block does not name its interpreter."},
	{"duplicate-action", runbook.SeverityError, "A step has more than one action block."},
	{"duplicate-block", runbook.SeverityError, "A step has two blocks of the same kind (verify, expect, until, manual, gate, call)."},
	{"block-outside-step", runbook.SeverityWarning, "An opsbook block is not inside a step, so it never runs."},
	{"missing-section", runbook.SeverityError, "A section required for the document's kind is missing."},
	{"duplicate-step-id", runbook.SeverityError, "Two steps have the same id."},
	{"step-without-action", runbook.SeverityError, "A step has no action, manual instruction, gate or call."},
	{"check-cannot-fail", runbook.SeverityError, "A verify or until block ends in a command that always succeeds (echo, true, … || true), or an expect block's text is printed by the action itself (a warning when the step has another check that can fail)."},
	{"check-never-runs", runbook.SeverityError, "A verify, expect or until block belongs to a manual, gate or call step, whose checks opsbook does not run (the engine refuses such a document too)."},
	{"step-without-check", runbook.SeverityWarning, "A runbook without a verification checkpoints section has a command step with no verify, expect or until block."},
	{"step-without-verification", runbook.SeverityError, "A command step has no verification and does not say why (verify=none reason=…)."},
	{"unknown-variable", runbook.SeverityWarning, "A command uses $NAME that nothing provides."},
	{"unknown-target", runbook.SeverityError, "A step's target is not declared under targets:."},
	{"fanout-policy", runbook.SeverityError, "A step's parallel, batch or max_failures is invalid (error) or has no effect (warning: local step, parallel above a counted batch)."},
	{"rollback-missing", runbook.SeverityError, "The rollback document named in the front matter does not exist."},
	{"rollback-params", runbook.SeverityError, "The rollback document requires a parameter (no default) that the runbook does not declare, so the rollback could not get it."},
	{"call-missing", runbook.SeverityError, "A called runbook does not exist."},
	{"bad-reference", runbook.SeverityError, "A rollback: or call reference leaves the workspace (absolute, climbing out with ..), names the document itself, or is not a regular file."},
	{"input-limit", runbook.SeverityError, "The document exceeds an input limit: its size, its line count, its nesting depth or a fence's info string length."},
	{"gate-rollback-promise", runbook.SeverityError, "A gate's text says No-Go rolls back, but the runbook has no rollback document, the gate opts out (on_fail=abort or continue), or no action step runs before it."},
	{"missing-gate", runbook.SeverityError, "A normal or emergency change has no Go/No-Go gate."},
	{"placeholder", runbook.SeverityError, "Template text <<FILL: …>> is left in the document."},
	{"shell-syntax", runbook.SeverityError, "bash -n or sh -n rejects a command block."},
	{"errexit-off", runbook.SeverityWarning, "A command block opts out of errexit (errexit=false): its failing lines do not fail the step."},
}
