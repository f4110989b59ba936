package web

// The log viewer's and the run history's messages, kept apart from the
// main catalogue so each stays readable; init adds them to it, and the
// catalogue test checks both languages as for every other key.
var logCatalogue = map[string]map[string]string{
	"en": {
		"log_step_started": "▶ %s started", "log_step_started_attempt": "▶ %s started (attempt %d)",
		"log_step_started_hosts": "▶ %s started on %s hosts", "log_step_calls": "▶ %s started: %s",
		"log_step_finished": "■ %s %s", "log_took": "(%s)",
		"log_check_pass": "✓ %s: %s passed", "log_check_fail": "✗ %s: %s failed",
		"check_verify": "verification", "check_expect": "expected output", "check_until": "wait condition",
		"log_step_skipped": "⤼ %s skipped",
		"log_gate_waiting": "‖ Waiting at %s for a Go/No-Go decision", "log_manual_waiting": "‖ Waiting for someone to confirm %s",
		"log_ask_waiting":  "‖ %s failed: waiting for an operator's choice",
		"log_gate_decided": "✔ %s decided %s at %s", "decision_go": "Go", "decision_no-go": "No-Go",
		"log_manual_done": "✔ %s confirmed %s", "log_ask_answered": "✔ %s chose %s for %s",
		"log_run_finished": "Run finished: %s", "log_run_cancelled": "✖ Cancelled by %s",
		"log_rollback_started": "↺ Rollback started", "log_rollback_finished": "↺ Rollback finished: %s",
		"log_guard_breached": "⚠ Guard %s breached: %s (threshold %s)", "log_anomaly": "✎ Note by %s",
		"log_search": "Search the log", "log_search_go": "Find", "log_prev": "Previous match", "log_next": "Next match",
		"log_matches": "%d of %d", "log_no_matches": "No match", "log_matches_capped": "first %d matches",
		"log_timestamps": "Timestamps", "log_jump_failed": "Jump to the failed step", "log_collapse_all": "Collapse all",
		"log_expand_all": "Expand all", "log_steps": "Steps", "log_lines": "%d lines", "log_loading": "Loading the log…",
		"log_empty": "No output yet.", "log_toggle_step": "Show or hide the output of this step",
		"log_download_header": "opsbook run %s · %s · %s",
		"nav_runs":            "Runs", "runs_caption": "Runs, newest first", "status": "Status", "no_runs": "No runs match.",
		"to": "To", "pages": "Pages", "newest": "← Newest", "history": "History", "all_runs_of_runbook": "Every run of this runbook",
		"err_not_found": "Not found", "err_not_found_hint": "Nothing is at this address: the link may be old, or the run was removed by retention.",
		"err_method": "Not possible here", "err_method_hint": "This address does not take this kind of request; open it from a link or a form of the UI.",
		"err_forbidden": "Not allowed", "err_forbidden_hint": "Your permissions do not cover this; an administrator can grant them to one of your teams.",
		"err_bad_request": "Cannot do this", "err_bad_request_hint": "Something in the request is not valid; the detail below says what.",
		"err_no_grants": "Your account has no permission to view anything yet. Ask an administrator to add you to a team with RunbookView.",
		"err_all_runs":  "All runs",
	},
	"zh": {
		"log_step_started": "▶ %s 开始", "log_step_started_attempt": "▶ %s 开始（第 %d 次尝试）",
		"log_step_started_hosts": "▶ %s 开始，在 %s 台主机上", "log_step_calls": "▶ %s 开始：%s",
		"log_step_finished": "■ %s %s", "log_took": "（%s）",
		"log_check_pass": "✓ %s：%s通过", "log_check_fail": "✗ %s：%s未通过",
		"check_verify": "验证", "check_expect": "预期输出", "check_until": "等待条件",
		"log_step_skipped": "⤼ %s 已跳过",
		"log_gate_waiting": "‖ 在 %s 等待 Go/No-Go 决定", "log_manual_waiting": "‖ 等待有人确认 %s",
		"log_ask_waiting":  "‖ %s 失败：等待操作员选择",
		"log_gate_decided": "✔ %s 决定 %s（%s）", "decision_go": "Go", "decision_no-go": "No-Go",
		"log_manual_done": "✔ %s 确认了 %s", "log_ask_answered": "✔ %s 选择%s（%s）",
		"log_run_finished": "执行结束：%s", "log_run_cancelled": "✖ 由 %s 取消",
		"log_rollback_started": "↺ 开始回滚", "log_rollback_finished": "↺ 回滚结束：%s",
		"log_guard_breached": "⚠ 守护指标 %s 越界：%s（阈值 %s）", "log_anomaly": "✎ %s 的备注",
		"log_search": "搜索日志", "log_search_go": "查找", "log_prev": "上一个匹配", "log_next": "下一个匹配",
		"log_matches": "第 %d 个，共 %d 个", "log_no_matches": "无匹配", "log_matches_capped": "前 %d 个匹配",
		"log_timestamps": "时间戳", "log_jump_failed": "跳到失败的步骤", "log_collapse_all": "全部折叠",
		"log_expand_all": "全部展开", "log_steps": "步骤", "log_lines": "%d 行", "log_loading": "正在加载日志…",
		"log_empty": "暂无输出。", "log_toggle_step": "显示或隐藏此步骤的输出",
		"log_download_header": "opsbook 执行 %s · %s · %s",
		"nav_runs":            "执行记录", "runs_caption": "执行记录，最新在前", "status": "状态", "no_runs": "没有匹配的执行。",
		"to": "至", "pages": "分页", "newest": "← 最新", "history": "历史", "all_runs_of_runbook": "此运行手册的全部执行",
		"err_not_found": "未找到", "err_not_found_hint": "此地址没有内容：链接可能已过时，或执行记录已按保留策略删除。",
		"err_method": "此处不支持该操作", "err_method_hint": "此地址不接受这种请求；请通过界面中的链接或表单打开。",
		"err_forbidden": "无权访问", "err_forbidden_hint": "你的权限不包括此操作；管理员可以为你所在的团队授予权限。",
		"err_bad_request": "无法完成", "err_bad_request_hint": "请求中有无效内容，下方的详细信息说明了原因。",
		"err_no_grants": "你的账户还没有任何查看权限。请管理员把你加入拥有 RunbookView 权限的团队。",
		"err_all_runs":  "全部执行记录",
	},
}

func init() {
	for lang, msgs := range logCatalogue {
		for k, v := range msgs {
			catalogue[lang][k] = v
		}
	}
}
