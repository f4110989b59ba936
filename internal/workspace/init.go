package workspace

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// InitOptions configure Init.
type InitOptions struct {
	Lang        string // en or zh; default en
	WithLibrary bool   // copy the library runbooks into ops/runbooks/
}

// InitResult lists, relative to the directory, what Init created and what
// it found already there and left alone.
type InitResult struct {
	Dir     string   `json:"dir"`
	Created []string `json:"created"`
	Kept    []string `json:"kept"`
}

var readmes = map[string]map[string]string{
	"en": {
		RunbooksDir:  "# Standing runbooks\n\nRunbooks for routine and emergency operations that are run again and again\n(backup and restore test, failover, refresh of a test database), each with its\nrollback plan beside it as `<name>-rollback.md`. Run one with\n`opsbook run ops/runbooks/<name>.md --env <environment>`.\n",
		ActiveDir:    "# Planned operations under way\n\nOne folder per task, named `YYYY-MM-DD-<system>-<operation>-<short-description>`,\nmade by `opsbook new \"<description>\"`: runbook, rollback plan, printable\nchecklist, postmortem template, and `lifecycle.jsonl`, the append-only record\nof reviews, checks and runs. Commit it all.\n",
		ArchiveDir:   "# Finished operations\n\n`opsbook archive <task>` moves a completed task here, to `YYYY/MM/<task>/` by\ncompletion date. `opsbook list` reports tasks completed more than 30 days ago\nthat still wait in `ops/active/`.\n",
		TemplatesDir: "# Template overrides\n\nA file here replaces the built-in template of the same name for `opsbook new`:\n`runbook.md`, `rollback.md`, `checklist.md`, `postmortem.md`, or the same names\nunder `en/` or `zh/` for one language. Templates are Go text/template files; see\nthe built-in ones with `opsbook new --dry-run` and the documentation.\n",
	},
	"zh": {
		RunbooksDir:  "# 常规操作手册\n\n反复执行的日常与应急操作手册（备份与恢复验证、故障转移、测试库刷新），回滚方案放在旁边，\n命名为 `<name>-rollback.md`。执行：`opsbook run ops/runbooks/<name>.md --env <环境>`。\n",
		ActiveDir:    "# 进行中的计划变更\n\n每个任务一个目录，命名为 `YYYY-MM-DD-<系统>-<操作>-<简述>`，由 `opsbook new \"<描述>\"` 生成：\n操作手册、回滚方案、可打印的检查清单、复盘模板，以及只追加的生命周期记录 `lifecycle.jsonl`\n（评审、检查、执行）。请全部提交到 git。\n",
		ArchiveDir:   "# 已完成的变更\n\n`opsbook archive <任务>` 按完成日期把任务移到 `YYYY/MM/<任务>/`。完成超过 30 天仍留在\n`ops/active/` 的任务会在 `opsbook list` 中标记为逾期未归档。\n",
		TemplatesDir: "# 模板覆盖\n\n此目录中的文件会替换 `opsbook new` 使用的同名内置模板：`runbook.md`、`rollback.md`、\n`checklist.md`、`postmortem.md`，或放在 `en/`、`zh/` 子目录中只对一种语言生效。\n模板使用 Go text/template 语法。\n",
	},
}

// DefaultConfig is the opsbook.yaml that Init writes.
func DefaultConfig(name, lang string) string {
	return fmt.Sprintf(`# opsbook workspace: environments, their inventories and lifecycle gates.
name: %s
lang: %s
projects:
  - name: %s
    runbooks: ["ops/runbooks/*.md", "ops/active/**/*-runbook.md"]
environments:
  - name: dev
  - name: staging
  - name: production
    protected: true
    # reviewers: 2        # distinct approvals needed (default for protected)
    # rehearsal: true     # a successful staging run of the same snapshot first
    # windows:
    #   - {days: [tue-thu], start: "22:00", end: "02:00", tz: UTC}
    # freezes:
    #   - {from: 2025-12-20, to: 2026-01-04, reason: year-end freeze}
    # known_hosts: ops/known_hosts
    # hosts:
    #   - {name: db1, address: 10.0.0.10, user: ops, tags: {role: db}}
`, name, lang, name)
}

// Init creates a workspace in dir, or completes one: opsbook.yaml, the
// ops/ tree with a README in each directory, and the .gitignore entry for
// local state. It never overwrites a file.
func Init(dir string, opts InitOptions) (*InitResult, error) {
	lang := opts.Lang
	if lang == "" {
		lang = "en"
	}
	if lang != "en" && lang != "zh" {
		return nil, fmt.Errorf("--lang %q: use en or zh", lang)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	res := &InitResult{Dir: abs}
	name := sanitizeName(filepath.Base(abs))
	create := func(rel string, content []byte) error {
		p := filepath.Join(abs, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return fmt.Errorf("create %s: %w", filepath.Dir(p), err)
		}
		err := writeFileSync(p, content)
		if errors.Is(err, fs.ErrExist) {
			res.Kept = append(res.Kept, rel)
			return nil
		}
		if err != nil {
			return err
		}
		res.Created = append(res.Created, rel)
		return nil
	}
	if err := create(ConfigFile, []byte(DefaultConfig(name, lang))); err != nil {
		return nil, err
	}
	for _, d := range []string{RunbooksDir, ActiveDir, ArchiveDir, TemplatesDir} {
		if err := create(d+"/README.md", []byte(readmes[lang][d])); err != nil {
			return nil, err
		}
	}
	if opts.WithLibrary {
		entries, err := fs.ReadDir(builtin, "library")
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			data, err := fs.ReadFile(builtin, "library/"+e.Name())
			if err != nil {
				return nil, err
			}
			if err := create(path.Join(RunbooksDir, e.Name()), data); err != nil {
				return nil, err
			}
		}
	}
	added, err := ensureGitignore(abs)
	if err != nil {
		return nil, err
	}
	if added {
		res.Created = append(res.Created, ".gitignore: "+StateDirName+"/")
	} else {
		res.Kept = append(res.Kept, ".gitignore: "+StateDirName+"/")
	}
	// The new opsbook.yaml must load; a kept one is reported as it is.
	if _, err := Load(abs); err != nil {
		return res, fmt.Errorf("the workspace's %s does not load: %w", ConfigFile, err)
	}
	return res, nil
}

// ensureGitignore appends ".opsbook/" to .gitignore unless a line already
// ignores it.
func ensureGitignore(dir string) (bool, error) {
	p := filepath.Join(dir, ".gitignore")
	data, err := os.ReadFile(p)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, fmt.Errorf("read .gitignore: %w", err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		switch strings.TrimSpace(line) {
		case StateDirName, StateDirName + "/", "/" + StateDirName, "/" + StateDirName + "/":
			return false, nil
		}
	}
	var add bytes.Buffer
	if len(data) > 0 && !bytes.HasSuffix(data, []byte("\n")) {
		add.WriteByte('\n')
	}
	add.WriteString("# opsbook local state (run store)\n" + StateDirName + "/\n")
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return false, fmt.Errorf("update .gitignore: %w", err)
	}
	defer f.Close()
	if _, err := f.Write(add.Bytes()); err != nil {
		return false, fmt.Errorf("update .gitignore: %w", err)
	}
	return true, f.Close()
}

// sanitizeName turns a directory name into a valid workspace name.
func sanitizeName(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '_', r == '-':
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
	}
	out := strings.Trim(b.String(), "-._")
	if out == "" {
		return "ops"
	}
	return out
}
