package engine

import (
	"github.com/opsbook/opsbook/internal/mask"
)

// newMasker masks the plan's secret parameters and secret variables;
// secrets met later (a called runbook's or the rollback document's secret
// parameters) are added to it. Everything the engine records or hands to an
// observer passes through it.
func newMasker(p *Plan, params map[string]string) *mask.Masker {
	m := mask.New()
	for _, d := range p.Document.Front.Params {
		if d.SecretParam() {
			m.Add(params[d.Name])
		}
	}
	for _, v := range p.Secrets {
		m.Add(v)
	}
	return m
}
