package web

// The UI's message catalogue. Keys are snake_case; every key must exist in
// every language (a test checks it, and that every key a view uses is here).
var catalogue = map[string]map[string]string{
	"en": {
		"board_reviews": "Reviews", "board_reviews_verified": "signed-in reviewers only", "review_approve": "Approve",
		"review_request_changes": "Request changes", "review_comment": "Comment (required to request changes)",
		"your_verdict": "Your review", "pre_execution": "Pre-execution checklist", "tick": "Tick", "untick": "Untick",
		"review_recorded": "Review recorded.", "tick_recorded": "Checklist updated.",
		"about": "About", "action": "Action", "actions": "Actions", "active": "active", "actor": "Actor", "actual": "Actual",
		"add": "Add", "add_member": "Add a member", "address": "Address",
		"admin_environments": "Environments & targets", "admin_teams": "Teams & permissions", "admin_triggers": "Triggers",
		"admin_users": "Users", "admin_variables": "Variables", "all": "all", "allowed_environments": "Allowed environments",
		"anomalies": "Anomalies", "approvals": "approvals", "approve": "Approve (Go)", "archive_overdue": "archive overdue",
		"attempts": "attempts", "postmortem_same_as_cli": "The same document as", "enable": "Enable", "disable": "Disable", "webhook_secret_once": "The webhook's signing secret, shown only this once, for", "webhook_signature_help": "Sign each request: X-Opsbook-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of \"<t>.<body>\">; requests older than 5 minutes are refused.", "catch_up": "catch-up", "catch_up_help": "Run once after the server was down at a scheduled time", "new_trigger": "New trigger", "service_user": "Runs as (service identity)", "no_service_users": "Create a service identity first (a user with \"service\": true through the API) and grant its team RunbookRun; triggers run as it.", "timezone": "Time zone", "delete": "Delete", "hosts": "hosts", "batch": "batch", "not_started": "not started", "back_to_overview": "Back to the overview", "back_to_run": "Back to the run",
		"bad_credentials": "Wrong name or password.", "breadcrumbs": "Breadcrumbs", "cancel_run": "Cancel run",
		"cannot_run": "You may not run this runbook in any environment.", "change_type": "Change type", "checklist": "Checklist",
		"comma_all": "comma-separated; empty means all", "confirm_done": "Confirm done", "create": "Create", "created": "Created",
		"date": "Date", "decided_by": "Decided by", "decisions": "Decisions", "detail": "Detail", "deviations": "Deviations",
		"disabled": "disabled", "display_name": "Display name", "document": "Document", "duration": "Duration",
		"emergency": "Emergency", "environment": "Environment", "environments": "Environments",
		"emergency_reason":            "Emergency reason",
		"emergency_reason_help":       "Only for an emergency change: the reason waives the change window and freeze, and is recorded on the run and in the task's lifecycle. Leave empty for a normal run.",
		"environments_from_workspace": "Environments and their SSH targets come from opsbook.yaml in the workspace; change them there and sync.",
		"error":                       "Error", "est": "est.", "estimate": "Estimate", "estimate_vs_actual": "Estimate vs actual", "executed_by": "Executed by",
		"filled_checklist": "Filled checklist", "filter": "Filter", "finished": "Finished", "fix_fields": "Fix the fields marked below.",
		"follow_log": "Follow the log", "from": "From", "full_log": "Download the whole log", "gate": "Gate",
		"gate_not_yours": "Waiting for an approver with RunbookApprove (not the person who started a protected run).",
		"grant":          "Grant", "guard": "guard", "host": "Host", "key": "Key",
		"key_shown_once": "Your new API key. Copy it now: it is shown only this once.", "kind": "Kind", "language": "Language",
		"last_fired": "Last fired", "last_used": "Last used", "lessons": "Lessons and follow-ups",
		"lessons_hint": "Write what to change so this goes better next time.", "lines_hidden": "{n} earlier lines not shown",
		"local_only": "No SSH hosts: steps run on the server", "log": "Log", "manual_step": "Manual step",
		"matrix_caption": "Last run of each runbook in each environment", "members": "Members", "my_api_keys": "My API keys",
		"name": "Name", "nav_admin": "Admin", "nav_audit": "Audit log", "nav_board": "Planned operations", "nav_main": "Main",
		"nav_overview": "Overview", "never_run": "never run", "new_api_key": "New API key", "new_grant": "Grant a permission",
		"new_team": "New team", "new_user": "New user", "no_permission": "You may not view runs here",
		"no_review_record": "standing runbook: no review record", "no_runbooks": "No runbooks match.", "none": "None.",
		"note": "Note", "nothing_to_decide": "Nothing waits for a decision.", "older": "Older", "on_fail": "On failure",
		"owner": "Owner", "parameters": "Parameters", "password": "Password", "permission": "Permission",
		"postmortem": "Postmortem", "print": "Print", "problems": "Problems", "project": "Project", "projects": "Projects",
		"protected": "protected", "published_by": "published by", "published_current": "published = current",
		"published_differs": "workspace differs from published", "reason": "Reason", "reject": "Reject (No-Go)", "result": "Result",
		"review": "Review", "revoke": "Revoke", "revoked": "API key revoked.", "rollback": "Rollback", "run": "Run",
		"run_finished": "The run is finished:", "runbook": "Runbook", "runs_current": "Runs the workspace's current content (you hold RunbookEdit).",
		"runs_published": "Runs the published snapshot.", "save": "Save", "saved": "Saved.", "schedule": "Schedule",
		"sensitive": "Sensitive (encrypted, never shown again)", "service": "service", "set_variable": "Set a variable",
		"sign_in": "Sign in", "sign_in_with": "Sign in with %s", "or": "or", "sign_off": "Sign-off", "sign_out": "Sign out", "skip_to_content": "Skip to content",
		"snapshot": "Snapshot", "start_run": "Start run", "started": "Started", "started_by": "started by", "watching_left": "watching the guards, left:", "state": "State",
		"step": "Step", "step_failed_question": "What now?", "steps": "Steps", "still_needs": "Still needs", "summary": "Summary",
		"switch": "Switch", "tag": "Tag", "tags": "Tags", "target": "Target", "targets": "Targets", "team": "Team", "teams": "Teams",
		"time": "Time", "timeline": "Timeline", "unpublished": "unpublished", "updated_by": "Updated", "user_name": "User name",
		"value": "Value", "verification": "Verification", "verified_by": "Verified by", "waiting_for_me": "Waiting for me",
		"workspace_variables": "Variables in opsbook.yaml", "write_only": "write-only",
		"status_pending": "pending", "status_running": "running", "status_waiting": "waiting", "status_succeeded": "succeeded",
		"status_failed": "failed", "status_rolled_back": "rolled back", "status_cancelled": "cancelled",
		"status_interrupted": "interrupted", "status_skipped": "skipped",
		"choice_retry": "Retry", "choice_skip": "Skip", "choice_abort": "Abort", "choice_rollback": "Roll back", "choice_continue": "Continue",
		"running_for": "running for",
		"snapshots":   "Snapshots", "snapshot_published": "published",
		"snapshot_workspace": "the workspace's content", "stored_by": "Stored by", "no_snapshots": "No snapshot stored yet: publish one, or start a run.",
		"stepkind_gate": "gate", "stepkind_manual": "manual step", "stepkind_call": "call",
		"task_state_planning": "planning", "task_state_in_review": "in review", "task_state_approved": "approved", "task_state_executing": "executing",
		"task_state_failed": "failed", "task_state_rolled_back": "rolled back", "task_state_completed": "completed",
		"trigger_schedule": "schedule", "trigger_webhook": "webhook", "params_hint": "(NAME=value, one a line)",
		"run_rollback": "Run rollback", "run_rollback_help": "Start the rollback document as a run of its own, with its parameters:",
		"confirm_run_rollback": "Start the rollback now? It undoes the change in the environment chosen.",
		"ptype_string":         "text", "ptype_int": "integer", "ptype_bool": "yes/no", "ptype_enum": "one of", "ptype_path": "path", "ptype_secret": "secret",
	},
	"zh": {
		"board_reviews": "评审", "board_reviews_verified": "仅计已登录的评审人", "review_approve": "批准",
		"review_request_changes": "要求修改", "review_comment": "评论（要求修改时必填）",
		"your_verdict": "你的评审", "pre_execution": "执行前检查清单", "tick": "勾选", "untick": "取消勾选",
		"review_recorded": "评审已记录。", "tick_recorded": "检查清单已更新。",
		"about": "概况", "action": "操作", "actions": "操作", "active": "启用", "actor": "操作人", "actual": "实际",
		"add": "添加", "add_member": "添加成员", "address": "地址",
		"admin_environments": "环境与目标", "admin_teams": "团队与权限", "admin_triggers": "触发器",
		"admin_users": "用户", "admin_variables": "变量", "all": "全部", "allowed_environments": "允许的环境",
		"anomalies": "异常", "approvals": "批准", "approve": "批准 (Go)", "archive_overdue": "归档逾期",
		"attempts": "尝试次数", "postmortem_same_as_cli": "与此命令生成的文档相同：", "enable": "启用", "disable": "停用", "webhook_secret_once": "Webhook 签名密钥（仅显示这一次），触发器", "webhook_signature_help": "每个请求需签名：X-Opsbook-Signature: t=<unix 时间>,v1=<\"<t>.<body>\" 的 HMAC-SHA256 十六进制>；超过 5 分钟的请求会被拒绝。", "catch_up": "补跑", "catch_up_help": "服务器停机错过计划时间后补跑一次", "new_trigger": "新建触发器", "service_user": "运行身份（服务账号）", "no_service_users": "请先通过 API 创建服务账号（\"service\": true 的用户）并授予其团队 RunbookRun；触发器以其身份运行。", "timezone": "时区", "delete": "删除", "hosts": "主机", "batch": "批次", "not_started": "未开始", "back_to_overview": "返回总览", "back_to_run": "返回执行",
		"bad_credentials": "用户名或密码错误。", "breadcrumbs": "导航路径", "cancel_run": "取消执行",
		"cannot_run": "你无权在任何环境执行此手册。", "change_type": "变更类型", "checklist": "检查清单",
		"comma_all": "逗号分隔；留空表示全部", "confirm_done": "确认完成", "create": "创建", "created": "创建于",
		"date": "日期", "decided_by": "决定人", "decisions": "决策", "detail": "详情", "deviations": "偏差",
		"disabled": "已停用", "display_name": "显示名", "document": "文档", "duration": "耗时",
		"emergency": "紧急", "environment": "环境", "environments": "环境",
		"emergency_reason":            "紧急原因",
		"emergency_reason_help":       "仅用于紧急变更：填写原因即可越过变更窗口和封网期，并记录在运行和任务的生命周期中。普通运行请留空。",
		"environments_from_workspace": "环境及其 SSH 目标来自工作区的 opsbook.yaml；请在那里修改后同步。",
		"error":                       "错误", "est": "预计", "estimate": "预计耗时", "estimate_vs_actual": "预计与实际", "executed_by": "执行人",
		"filled_checklist": "已填写的检查清单", "filter": "筛选", "finished": "结束", "fix_fields": "请修正下面标出的字段。",
		"follow_log": "跟随日志", "from": "来源", "full_log": "下载完整日志", "gate": "决策点",
		"gate_not_yours": "等待拥有 RunbookApprove 权限的审批人（受保护环境中发起人不能自批）。",
		"grant":          "授予", "guard": "守护", "host": "主机", "key": "密钥",
		"key_shown_once": "这是你的新 API 密钥。请立即复制：它只显示这一次。", "kind": "类型", "language": "语言",
		"last_fired": "上次触发", "last_used": "上次使用", "lessons": "经验与后续行动",
		"lessons_hint": "写下下次如何做得更好。", "lines_hidden": "前 {n} 行未显示",
		"local_only": "无 SSH 主机：步骤在服务器上执行", "log": "日志", "manual_step": "手动步骤",
		"matrix_caption": "每个手册在每个环境的最近一次执行", "members": "成员", "my_api_keys": "我的 API 密钥",
		"name": "名称", "nav_admin": "管理", "nav_audit": "审计日志", "nav_board": "计划操作", "nav_main": "主导航",
		"nav_overview": "总览", "never_run": "从未执行", "new_api_key": "新建 API 密钥", "new_grant": "授予权限",
		"new_team": "新建团队", "new_user": "新建用户", "no_permission": "你无权查看此处的执行",
		"no_review_record": "常备手册：无评审记录", "no_runbooks": "没有匹配的手册。", "none": "无。",
		"note": "备注", "nothing_to_decide": "没有等待决定的事项。", "older": "更早", "on_fail": "失败时",
		"owner": "负责人", "parameters": "参数", "password": "密码", "permission": "权限",
		"postmortem": "复盘报告", "print": "打印", "problems": "问题", "project": "项目", "projects": "项目",
		"protected": "受保护", "published_by": "发布人", "published_current": "已发布 = 当前",
		"published_differs": "工作区与已发布版本不同", "reason": "理由", "reject": "拒绝 (No-Go)", "result": "结果",
		"review": "评审", "revoke": "吊销", "revoked": "API 密钥已吊销。", "rollback": "回滚", "run": "执行",
		"run_finished": "执行已结束：", "runbook": "手册", "runs_current": "执行工作区的当前内容（你拥有 RunbookEdit）。",
		"runs_published": "执行已发布的快照。", "save": "保存", "saved": "已保存。", "schedule": "计划",
		"sensitive": "敏感（加密存储，之后不再显示）", "service": "服务", "set_variable": "设置变量",
		"sign_in": "登录", "sign_in_with": "通过 %s 登录", "or": "或", "sign_off": "签字", "sign_out": "退出登录", "skip_to_content": "跳到正文",
		"snapshot": "快照", "start_run": "开始执行", "started": "开始", "started_by": "发起人", "watching_left": "运行后监控中，剩余", "state": "状态",
		"step": "步骤", "step_failed_question": "接下来怎么办？", "steps": "步骤", "still_needs": "尚需", "summary": "摘要",
		"switch": "切换", "tag": "标签", "tags": "标签", "target": "目标", "targets": "目标", "team": "团队", "teams": "团队",
		"time": "时间", "timeline": "时间线", "unpublished": "未发布", "updated_by": "更新", "user_name": "用户名",
		"value": "值", "verification": "验证", "verified_by": "验证人", "waiting_for_me": "等待我处理",
		"workspace_variables": "opsbook.yaml 中的变量", "write_only": "只写",
		"status_pending": "等待中", "status_running": "执行中", "status_waiting": "待决定", "status_succeeded": "成功",
		"status_failed": "失败", "status_rolled_back": "已回滚", "status_cancelled": "已取消",
		"status_interrupted": "已中断", "status_skipped": "已跳过",
		"choice_retry": "重试", "choice_skip": "跳过", "choice_abort": "中止", "choice_rollback": "回滚", "choice_continue": "继续",
		"running_for": "已运行",
		"snapshots":   "快照记录", "snapshot_published": "已发布",
		"snapshot_workspace": "工作区当前内容", "stored_by": "存储者", "no_snapshots": "尚未存储快照：发布一个，或开始一次执行。",
		"stepkind_gate": "关卡", "stepkind_manual": "人工步骤", "stepkind_call": "调用",
		"task_state_planning": "规划中", "task_state_in_review": "评审中", "task_state_approved": "已批准", "task_state_executing": "执行中",
		"task_state_failed": "失败", "task_state_rolled_back": "已回滚", "task_state_completed": "已完成",
		"trigger_schedule": "定时", "trigger_webhook": "Webhook", "params_hint": "（参数名=值，每行一个）",
		"run_rollback": "执行回滚", "run_rollback_help": "把回滚文档作为一次独立的执行启动，参数如下：",
		"confirm_run_rollback": "现在启动回滚吗？它会在所选环境中撤销变更。",
		"ptype_string":         "文本", "ptype_int": "整数", "ptype_bool": "是/否", "ptype_enum": "选项之一", "ptype_path": "路径", "ptype_secret": "密钥",
	},
}

// Languages are the UI languages offered.
var Languages = []string{"en", "zh"}

// Supported reports whether lang is a UI language.
func Supported(lang string) bool { _, ok := catalogue[lang]; return ok }

// Messages returns the catalogue of a language (English if unknown).
func Messages(lang string) map[string]string {
	if m, ok := catalogue[lang]; ok {
		return m
	}
	return catalogue["en"]
}

// Message returns one message, or the key itself when it is missing, so a
// forgotten translation shows up instead of an empty space.
func Message(lang, key string) string {
	if m, ok := Messages(lang)[key]; ok {
		return m
	}
	return key
}
