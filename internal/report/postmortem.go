package report

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/opsbook/opsbook/internal/runbook"
	"github.com/opsbook/opsbook/internal/snapshot"
)

// TimelineEntry is one line of the postmortem's timeline.
type TimelineEntry struct {
	Time  string
	Event string
	Who   string
}

// DecisionRow is one decision taken during the run.
type DecisionRow struct {
	Time, Step, Kind, Choice, Who, Reason string
}

// EstimateRow compares a step's estimate with what it took.
type EstimateRow struct {
	N                   int
	ID, Title           string
	Planned, Actual     string
	Difference          string
	HasPlanned, HasBoth bool
}

// PostmortemView is everything the postmortem template shows.
type PostmortemView struct {
	L         map[string]string
	Lang      string
	Title     string
	System    string
	Operation string
	Task      string
	RunHeader
	Timeline   []TimelineEntry
	Estimates  []EstimateRow
	TotalPlan  string
	TotalAct   string
	TotalDiff  string
	Deviations []string
	Decisions  []DecisionRow
	Approved   []string
	Fill       map[string]string // placeholder text per section
}

// Postmortem builds the postmortem's view of in; in.Run and in.Events are required.
func Postmortem(in Input) (PostmortemView, error) {
	if in.Run == nil || len(in.Events) == 0 {
		return PostmortemView{}, fmt.Errorf("a postmortem needs a run with its events")
	}
	l := labels(in.Lang)
	st := in.state()
	v := PostmortemView{L: l, Lang: in.Lang, Title: in.Runbook.Title, System: in.Runbook.Front.System,
		Operation: in.Runbook.Front.Operation, Task: in.Task, RunHeader: in.header(st, l),
		Approved: in.approvals(), Fill: fills(in.Lang)}
	v.Timeline = in.timeline()

	var plan, act time.Duration
	for _, r := range in.Rows() {
		e := EstimateRow{N: r.N, ID: r.ID, Title: r.Title, Planned: r.Planned, Actual: r.Duration,
			HasPlanned: r.Estimate > 0, HasBoth: r.Estimate > 0 && r.Duration != ""}
		if e.HasBoth {
			e.Difference = signedDuration(r.Actual - r.Estimate)
		}
		plan += r.Estimate
		act += r.Actual
		v.Estimates = append(v.Estimates, e)
	}
	v.TotalPlan, v.TotalAct, v.TotalDiff = formatDuration(plan), formatDuration(act), signedDuration(act-plan)
	if !st.StartedAt.IsZero() && !st.FinishedAt.IsZero() {
		wall := st.FinishedAt.Sub(st.StartedAt)
		v.TotalAct = fmt.Sprintf("%s (%s %s)", formatDuration(act), formatDuration(wall), wallWord(in.Lang))
	}

	for _, d := range st.Decisions {
		step := "`" + d.Step + "`"
		switch {
		case d.Step == "":
			step = "—" // a question about a guard breach between steps
		case d.Phase == runbook.PhaseRollback:
			step = "`rollback/" + d.Step + "`"
		}
		v.Decisions = append(v.Decisions, DecisionRow{Time: in.clock(d.Time), Step: step, Kind: d.Kind,
			Choice: choiceWord(d.Choice, l), Who: d.Actor, Reason: d.Reason})
	}
	v.Deviations = in.deviations(st)
	return v, nil
}

func wallWord(lang string) string {
	if lang == "zh" {
		return "总时长，含等待"
	}
	return "wall clock, waits included"
}

// WritePostmortem writes the pre-filled postmortem document.
func WritePostmortem(w io.Writer, in Input) error {
	v, err := Postmortem(in)
	if err != nil {
		return err
	}
	return mdTemplates().ExecuteTemplate(w, "postmortem.md.tmpl", v)
}

// timeline lists every event of the run that people care about, in order:
// not the output, which stays in the run log.
func (in *Input) timeline() []TimelineEntry {
	zhLang := in.Lang == "zh"
	word := func(enS, zhS string) string {
		if zhLang {
			return zhS
		}
		return enS
	}
	var out []TimelineEntry
	for _, ev := range in.Events {
		step := ev.Step
		if ev.Data["phase"] == runbook.PhaseRollback && step != "" {
			step = "rollback/" + step
		}
		host := ""
		if ev.Host != "" && ev.Host != "local" {
			host = " @" + ev.Host
		}
		var text string
		switch ev.Type {
		case runbook.EventRunStarted:
			text = word("Run started in ", "开始执行，环境 ") + ev.Data["env"] + " (" + snapshot.ShortOf(ev.Data["snapshot"]) + ")"
			if r := ev.Data["emergency"]; r != "" {
				text += " — **" + labels(in.Lang)["emergency"] + "**: " + r
			}
			if f := ev.Data["from"]; f != "" {
				text += word(", from step ", "，从步骤 ") + "`" + f + "`"
			}
		case runbook.EventRunResumed:
			text = word("Run resumed", "恢复执行")
			if f := ev.Data["failed_only"]; f != "" {
				text += word(": re-running only the hosts of step `", "：仅重新执行步骤 `") + f + word("` that did not succeed", "` 未成功的主机")
			}
		case runbook.EventRunInterrupted:
			text = word("Run interrupted: ", "执行中断：") + ev.Text
		case runbook.EventRunCancelled:
			text = word("Run cancelled", "执行取消") + reason(ev.Text)
		case runbook.EventRunFinished:
			text = word("Run finished: ", "执行结束：") + orElse(labels(in.Lang)[ev.Data["status"]], ev.Data["status"])
		case runbook.EventStepStarted:
			text = word("Step ", "步骤 ") + "`" + step + "`" + host + word(" started", " 开始")
			if ev.Attempt > 1 {
				text += fmt.Sprintf(word(" (attempt %d)", "（第 %d 次尝试）"), ev.Attempt)
			}
			if hosts := ev.Data["hosts"]; hosts != "" && ev.Host == "" {
				n := len(strings.Split(hosts, ","))
				text += fmt.Sprintf(word(" on %d host(s): %s (parallel %s, batch %s, max_failures %s)", " 于 %d 台主机：%s（并行 %s，批次 %s，最大失败 %s）"),
					n, hosts, ev.Data["parallel"], orElse(ev.Data["batch"], word("all", "全部")), ev.Data["max_failures"])
			}
		case runbook.EventStepVerified:
			res := word("passed", "通过")
			if ev.Data["result"] != "pass" {
				res = word("FAILED", "未通过")
			}
			text = fmt.Sprintf(word("Step `%s`%s %s check %s", "步骤 `%s`%s %s 检查%s"), step, host, ev.Data["kind"], res)
			if ev.Data["result"] != "pass" && ev.Text != "" {
				text += ": " + firstLine(ev.Text)
			}
		case runbook.EventStepRetry:
			text = fmt.Sprintf(word("Step `%s` retried (attempt %d", "步骤 `%s` 重试（第 %d 次"), step, ev.Attempt)
			if b := ev.Data["backoff"]; b != "" {
				text += word(", after ", "，等待 ") + b
			}
			text += word(")", "）") + reason(ev.Text)
		case runbook.EventStepFinished:
			status := orElse(labels(in.Lang)[ev.Data["status"]], ev.Data["status"])
			text = "`" + step + "`" + host + word(" finished: ", " 结束：") + status
			if ev.Data["exit_code"] != "" && ev.Data["status"] != string(runbook.StepSucceeded) {
				text += word(", exit status ", "，退出码 ") + ev.Data["exit_code"]
			}
			if ev.Text != "" {
				text += " — " + firstLine(ev.Text)
			}
		case runbook.EventStepSkipped:
			text = word("Step `", "步骤 `") + step + word("` skipped", "` 跳过") + reason(ev.Text)
		case runbook.EventGateWaiting:
			text = word("Go/No-Go gate `", "Go/No-Go 决策点 `") + step + word("` waits for ", "` 等待 ") + orElse(ev.Data["approvers"], "1") + word(" approver(s)", " 人批准")
		case runbook.EventGateDecided:
			text = word("Gate `", "决策点 `") + step + "`: **" + choiceWord(ev.Data["decision"], labels(in.Lang)) + "**" + reason(ev.Text)
		case runbook.EventManualWaiting:
			text = word("Manual step `", "手工步骤 `") + step + word("` waits for confirmation", "` 等待确认")
		case runbook.EventManualDone:
			text = word("Manual step `", "手工步骤 `") + step + word("` confirmed", "` 已确认") + reason(ev.Text)
		case runbook.EventAskWaiting:
			text = word("Operator asked: ", "询问操作人员：") + firstLine(ev.Text)
		case runbook.EventAskAnswered:
			text = word("Operator chose **", "操作人员选择 **") + choiceWord(ev.Data["choice"], labels(in.Lang)) + "**"
			if step != "" {
				text += word(" for step `", "，步骤 `") + step + "`"
			}
			text += reason(ev.Text)
		case runbook.EventAnomaly:
			text = word("**Anomaly noted**: ", "**异常记录**：") + ev.Text
		case runbook.EventOrphanStopped:
			text = word("**Left-over process stopped**: ", "**已停止遗留进程**：") + ev.Text
		case runbook.EventGuardBreached:
			text = fmt.Sprintf(word("**Guard %s breached**: %s (threshold %s) → %s", "**监控守卫 %s 越限**：%s（阈值 %s）→ %s"),
				ev.Data["guard"], ev.Data["value"], ev.Data["threshold"], ev.Data["action"])
			if step != "" {
				text += word(", during step `", "，步骤 `") + step + "`"
			}
		case runbook.EventRollbackStart:
			text = word("**Rollback started**", "**开始回滚**") + reason(ev.Text)
		case runbook.EventRollbackFinish:
			text = word("Rollback finished: ", "回滚结束：") + orElse(labels(in.Lang)[ev.Data["status"]], ev.Data["status"])
		case runbook.EventAlertFired:
			text = word("**Alert fired**: ", "**告警触发**：") + ev.Text
		case runbook.EventAlertResolved:
			text = word("**Alert resolved**: ", "**告警恢复**：") + ev.Text
		case runbook.EventNotified:
			text = fmt.Sprintf(word("Notified %s: %s", "已通知 %s：%s"), ev.Data["channel"], ev.Text)
		default:
			continue // output and published values stay in the run log
		}
		out = append(out, TimelineEntry{Time: in.clock(ev.Time), Event: text, Who: ev.Actor})
	}
	return out
}

func reason(s string) string {
	if s = strings.TrimSpace(s); s == "" {
		return ""
	}
	return ": " + firstLine(s)
}

// deviations lists what did not go as the runbook says.
func (in *Input) deviations(st *runbook.RunState) []string {
	zhLang := in.Lang == "zh"
	word := func(enS, zhS string) string {
		if zhLang {
			return zhS
		}
		return enS
	}
	var out []string
	if r := in.emergencyReason(); r != "" {
		out = append(out, fmt.Sprintf(word("**Emergency override** of the change window or freeze: %s", "**紧急变更覆盖**了变更窗口或冻结期：%s"), r))
	}
	if st.From != "" {
		out = append(out, fmt.Sprintf(word("Started from step `%s`: the steps before it did not run", "从步骤 `%s` 开始：之前的步骤未执行"), st.From))
	}
	for _, s := range in.Runbook.Steps {
		ss := stepState(st, s.ID)
		switch {
		case ss == nil:
			if st.Status.Finished() && st.From == "" {
				out = append(out, fmt.Sprintf(word("Step `%s` did not run", "步骤 `%s` 未执行"), s.ID))
			}
			continue
		case ss.Status == runbook.StepSkipped:
			who := ""
			for _, ev := range in.Events {
				if ev.Type == runbook.EventStepSkipped && ev.Step == s.ID && ev.Data["phase"] == runbook.PhaseMain {
					who = ev.Actor
				}
			}
			line := fmt.Sprintf(word("Step `%s` skipped", "步骤 `%s` 被跳过"), s.ID)
			if who != "" {
				line += word(" by ", "，决定人 ") + who
			}
			out = append(out, line+reason(ss.SkipReason))
		case ss.Status == runbook.StepFailed:
			out = append(out, fmt.Sprintf(word("Step `%s` failed", "步骤 `%s` 失败"), s.ID)+reason(ss.Error))
		}
		if n := len(ss.Retries); n > 0 {
			out = append(out, fmt.Sprintf(word("Step `%s` was retried %d time(s)", "步骤 `%s` 重试了 %d 次"), s.ID, n))
		}
		for _, d := range ss.Decisions {
			switch d.Choice {
			case runbook.ChoiceContinue, runbook.ChoiceRetry, runbook.DecisionNoGo:
				out = append(out, fmt.Sprintf(word("Step `%s`: %s chose %s", "步骤 `%s`：%s 选择了%s"), s.ID, d.Actor, choiceWord(d.Choice, labels(in.Lang)))+reason(d.Reason))
			}
		}
		for _, c := range ss.Checks {
			if !c.Passed {
				out = append(out, fmt.Sprintf(word("Step `%s`: a %s check failed", "步骤 `%s`：%s 检查未通过"), s.ID, c.Kind)+reason(c.Detail))
				break
			}
		}
	}
	for _, b := range st.Breaches {
		out = append(out, breachLine(b, "", in.Lang))
	}
	if st.Rollback != nil {
		out = append(out, word("The rollback document ran", "执行了回滚方案")+reason(st.Rollback.Reason))
	}
	for _, n := range st.Interrupt {
		out = append(out, word("The run was interrupted", "执行被中断")+reason(n.Text))
	}
	if st.Cancelled != nil {
		out = append(out, word("The run was cancelled by ", "执行被取消，操作人 ")+st.Cancelled.Actor+reason(st.Cancelled.Text))
	}
	return out
}

// fills are the <<FILL: …>> prompts of the sections people write.
func fills(lang string) map[string]string {
	if lang == "zh" {
		return map[string]string{
			"summary": "做了什么、是否成功、最值得记住的一点",
			"impact":  "谁受到了影响、影响方式和时长；与操作手册中的评估对比",
			"well":    "应当保持的做法",
			"badly":   "造成困难的地方",
			"lucky":   "本可能出错但没有出错的地方",
			"root":    "上述每个问题背后的原因",
			"actions": "改进措施、负责人、截止日期",
		}
	}
	return map[string]string{
		"summary": "what was done, whether it succeeded, and the one thing to remember",
		"impact":  "who was affected, how, and for how long; compare with the runbook's assessment",
		"well":    "what to keep doing",
		"badly":   "what hurt",
		"lucky":   "what could have gone wrong and did not",
		"root":    "for every problem above, the cause behind the cause",
		"actions": "action, owner, due date",
	}
}

// breachLine describes a guard breach for the checklist and the
// postmortem's deviations: which guard, its value, during which step, and
// what it did. at is the breach's time, or "".
func breachLine(b runbook.Breach, at, lang string) string {
	word := func(en, zh string) string {
		if lang == "zh" {
			return zh
		}
		return en
	}
	s := fmt.Sprintf(word("Guard %s breached (%s, threshold %s): %s", "监控守卫 %s 越限（%s，阈值 %s）：%s"), b.Guard, b.Value, b.Threshold, b.Action)
	if b.Step != "" {
		s += fmt.Sprintf(word(", during step `%s`", "，步骤 `%s`"), b.Step)
	}
	if at != "" {
		s += " — " + at
	}
	return s
}
