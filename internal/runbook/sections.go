package runbook

// Section roles. A heading is recognised by any of its titles, in English or
// Chinese (see SectionSpecs); the same role can be required by several kinds.
const (
	// runbook
	SectionSummary      SectionRole = "summary"
	SectionImpact       SectionRole = "impact"
	SectionSteps        SectionRole = "steps"
	SectionVerification SectionRole = "verification"
	SectionErrors       SectionRole = "errors"
	SectionEstimate     SectionRole = "estimate"
	SectionDecisions    SectionRole = "decisions"
	SectionMonitoring   SectionRole = "monitoring"

	// rollback
	SectionTriggers         SectionRole = "rollback-triggers"
	SectionRollbackSteps    SectionRole = "rollback-steps"
	SectionRollbackEstimate SectionRole = "rollback-estimate"
	SectionDataRecovery     SectionRole = "data-recovery"
	SectionPostRollback     SectionRole = "post-rollback-verification"

	// checklist
	SectionPreExecution SectionRole = "pre-execution"
	SectionExecution    SectionRole = "execution"
	SectionSignOff      SectionRole = "sign-off"

	// postmortem
	SectionTimeline       SectionRole = "timeline"
	SectionEstimateActual SectionRole = "estimate-vs-actual"
	SectionDeviations     SectionRole = "deviations"
	SectionWentWell       SectionRole = "went-well"
	SectionWentBadly      SectionRole = "went-badly"
	SectionLucky          SectionRole = "lucky"
	SectionRootCause      SectionRole = "root-cause"
	SectionActionItems    SectionRole = "action-items"
)

// SectionSpec names a section role in both languages. The first English and
// the first Chinese title are canonical (used by templates and messages);
// the rest are accepted synonyms.
type SectionSpec struct {
	Role SectionRole
	EN   []string
	ZH   []string
}

// SectionSpecs lists every recognised section. Headings are matched
// case-insensitively after stripping leading numbering ("1.", "2)", "一、")
// and trailing punctuation; a heading matches a role when it equals one of
// its titles or is "EN title (ZH title)"/"ZH title / EN title" style
// bilingual form containing one.
var SectionSpecs = []SectionSpec{
	{SectionSummary, []string{"Executive summary", "Summary", "Overview"}, []string{"执行概要", "概要", "摘要"}},
	{SectionImpact, []string{"Impact assessment", "Impact", "Scope of impact"}, []string{"影响范围评估", "影响范围", "影响评估"}},
	{SectionSteps, []string{"Steps", "Procedure", "Detailed steps", "Detailed procedure"}, []string{"详细操作步骤", "操作步骤", "步骤"}},
	{SectionVerification, []string{"Verification checkpoints", "Verification"}, []string{"验证检查点", "验证"}},
	{SectionErrors, []string{"Expected output and error handling", "Error handling"}, []string{"预期输出和错误处理", "错误处理"}},
	{SectionEstimate, []string{"Time estimate", "Estimate"}, []string{"时间估计", "时间预估"}},
	{SectionDecisions, []string{"Go/No-Go decision points", "Decision points", "Go/No-Go"}, []string{"决策点", "Go/No-Go 决策点"}},
	{SectionMonitoring, []string{"Monitoring metrics", "Monitoring"}, []string{"监控指标", "监控"}},

	{SectionTriggers, []string{"Rollback triggers", "Triggers"}, []string{"回滚触发条件", "触发条件"}},
	{SectionRollbackSteps, []string{"Rollback steps", "Complete rollback steps"}, []string{"完整回滚步骤", "回滚步骤"}},
	{SectionRollbackEstimate, []string{"Rollback time estimate"}, []string{"回滚时间估计"}},
	{SectionDataRecovery, []string{"Data recovery", "Data recovery procedure"}, []string{"数据恢复程序", "数据恢复"}},
	{SectionPostRollback, []string{"Post-rollback verification"}, []string{"回滚后验证"}},

	{SectionPreExecution, []string{"Pre-execution checklist", "Pre-execution", "Before execution"}, []string{"执行前检查清单", "执行前检查"}},
	{SectionExecution, []string{"Execution steps", "Execution"}, []string{"执行步骤", "执行记录"}},
	{SectionSignOff, []string{"Sign-off", "Sign off"}, []string{"签字确认", "签核"}},

	{SectionTimeline, []string{"Timeline"}, []string{"时间线"}},
	{SectionEstimateActual, []string{"Estimate vs actual", "Estimated vs actual"}, []string{"预估与实际对比", "预估与实际"}},
	{SectionDeviations, []string{"Deviations", "Deviations from the runbook"}, []string{"偏差", "与操作手册的偏差"}},
	{SectionWentWell, []string{"What went well"}, []string{"做得好的地方"}},
	{SectionWentBadly, []string{"What went badly", "What went wrong"}, []string{"做得不好的地方"}},
	{SectionLucky, []string{"Where we got lucky", "What was lucky"}, []string{"侥幸之处"}},
	{SectionRootCause, []string{"Root cause"}, []string{"根本原因"}},
	{SectionActionItems, []string{"Action items"}, []string{"改进措施", "行动项"}},
}

// RequiredSections lists, per kind, the sections a document must have.
// Postmortem shares summary, impact and decisions with the runbook.
var RequiredSections = map[Kind][]SectionRole{
	KindRunbook: {SectionSummary, SectionImpact, SectionSteps, SectionVerification,
		SectionErrors, SectionEstimate, SectionDecisions, SectionMonitoring},
	KindRollback: {SectionTriggers, SectionRollbackSteps, SectionRollbackEstimate,
		SectionDataRecovery, SectionPostRollback},
	KindChecklist: {SectionPreExecution, SectionExecution, SectionSignOff},
	KindPostmortem: {SectionSummary, SectionImpact, SectionTimeline, SectionEstimateActual,
		SectionDeviations, SectionDecisions, SectionWentWell, SectionWentBadly, SectionLucky,
		SectionRootCause, SectionActionItems},
}

// StepsSection is, per kind, the section whose H3 headings are executable steps.
var StepsSection = map[Kind]SectionRole{
	KindRunbook:  SectionSteps,
	KindRollback: SectionRollbackSteps,
}

// SpecFor returns the spec of a role.
func SpecFor(role SectionRole) (SectionSpec, bool) {
	for _, s := range SectionSpecs {
		if s.Role == role {
			return s, true
		}
	}
	return SectionSpec{}, false
}

// Title returns the canonical heading of a role in a language ("en" or "zh").
func (s SectionSpec) Title(lang string) string {
	if lang == "zh" && len(s.ZH) > 0 {
		return s.ZH[0]
	}
	return s.EN[0]
}
