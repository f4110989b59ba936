package lint

import "github.com/opsbook/opsbook/internal/runbook"

// errexitOff warns about every command block that opts out of errexit: its
// failing lines no longer fail the step, which is the whole class of fault
// strict shells exist to catch, so a reader should see each opt-out.
func (l *linter) errexitOff() {
	for _, s := range l.doc.Steps {
		for _, b := range []*runbook.Block{s.Action, s.Verify, s.Until} {
			if b == nil || !b.NoErrexit {
				continue
			}
			pos := b.Pos
			for _, a := range b.Attrs {
				if a.Key == "errexit" {
					pos = a.Pos
				}
			}
			l.warnf(pos, "errexit-off", "errexit=false: this block's failing lines will not fail the step; only its last command's exit status counts. Check every command's status yourself (|| exit 1) or drop errexit=false")
		}
	}
}
