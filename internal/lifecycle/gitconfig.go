package lifecycle

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
)

// gitUserEmail is `git config user.email` run in dir, read from git's
// configuration files directly: every run, review and tick names its
// actor, and starting git for it cost a fork and exec on the path of each
// `opsbook run`. The files are read in git's order (system, global,
// repository; the last value wins). Whatever this reader does not follow
// exactly as git does — include directives, environment that moves or
// adds configuration (GIT_DIR, GIT_CONFIG_COUNT, …), a linked worktree or
// submodule (.git is a file), a repository owned by another user (git's
// safe.directory check), syntax it does not know — makes it ask git
// itself, so the answer is always git's.
func gitUserEmail(dir string) (string, bool) {
	if email, err := readGitUserEmail(dir); err == nil {
		return email, email != ""
	}
	cmd := exec.Command("git", "config", "user.email")
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		return "", false
	}
	s := strings.TrimSpace(string(out))
	return s, s != ""
}

// errAskGit: this configuration needs git itself.
var errAskGit = errors.New("ask git")

func readGitUserEmail(dir string) (string, error) {
	for _, kv := range os.Environ() {
		name, value, _ := strings.Cut(kv, "=")
		switch {
		case name == "GIT_CONFIG_GLOBAL" || name == "GIT_CONFIG_NOSYSTEM":
		case strings.HasPrefix(name, "GIT_CONFIG") || name == "GIT_DIR" || name == "GIT_COMMON_DIR" ||
			name == "GIT_WORK_TREE" || name == "GIT_CEILING_DIRECTORIES" || name == "GIT_DISCOVERY_ACROSS_FILESYSTEM" ||
			name == "GIT_NAMESPACE" || name == "GIT_CONFIG_SYSTEM":
			if value != "" {
				return "", errAskGit
			}
		}
	}
	var files []string
	if v := os.Getenv("GIT_CONFIG_NOSYSTEM"); v == "" || v == "0" || strings.EqualFold(v, "false") || strings.EqualFold(v, "no") {
		files = append(files, "/etc/gitconfig")
	} else if !gitTrue(v) {
		return "", errAskGit
	}
	if g, ok := os.LookupEnv("GIT_CONFIG_GLOBAL"); ok {
		if g != "" {
			files = append(files, g)
		}
	} else {
		home := os.Getenv("HOME")
		xdg := os.Getenv("XDG_CONFIG_HOME")
		if xdg == "" && home != "" {
			xdg = filepath.Join(home, ".config")
		}
		if xdg != "" {
			files = append(files, filepath.Join(xdg, "git", "config"))
		}
		if home != "" {
			files = append(files, filepath.Join(home, ".gitconfig"))
		}
	}
	local, err := repoConfig(dir)
	if err != nil {
		return "", err
	}
	if local != "" {
		files = append(files, local)
	}
	email := ""
	for _, f := range files {
		b, err := os.ReadFile(f)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return "", errAskGit
		}
		v, found, err := parseGitUserEmail(string(b))
		if err != nil {
			return "", err
		}
		if found {
			email = v
		}
	}
	return email, nil
}

func gitTrue(v string) bool {
	switch strings.ToLower(v) {
	case "1", "true", "yes", "on":
		return true
	}
	return false
}

// repoConfig finds the repository dir is in the way git does (walking up,
// not crossing into another file system) and returns its config file, or
// "" outside a repository.
func repoConfig(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", errAskGit
	}
	var st syscall.Stat_t
	if syscall.Stat(abs, &st) != nil {
		return "", errAskGit
	}
	dev := st.Dev
	for d := abs; ; {
		gitPath := filepath.Join(d, ".git")
		if fi, err := os.Lstat(gitPath); err == nil {
			if !fi.IsDir() {
				return "", errAskGit // a linked worktree or submodule: git knows where its config is
			}
			var gst syscall.Stat_t
			if syscall.Stat(gitPath, &gst) != nil || int(gst.Uid) != os.Geteuid() {
				return "", errAskGit // safe.directory decides
			}
			return filepath.Join(gitPath, "config"), nil
		}
		if _, err := os.Stat(filepath.Join(d, "HEAD")); err == nil {
			return "", errAskGit // perhaps a bare repository
		}
		parent := filepath.Dir(d)
		if parent == d {
			return "", nil
		}
		if syscall.Stat(parent, &st) != nil {
			return "", errAskGit
		}
		if st.Dev != dev {
			return "", nil // git stops at a file-system boundary
		}
		d = parent
	}
}

// parseGitUserEmail reads the last user.email of one configuration file
// the way git's config parser does: [section] headers (case-insensitive;
// a subsection [user "x"] is another section), key = value, # and ;
// comments outside double quotes, blanks outside quotes dropped at the
// ends and each kept as one space inside, \" \\ \n \t \b escapes and a
// trailing \ joining lines. Anything else is errAskGit.
func parseGitUserEmail(text string) (value string, found bool, err error) {
	text = strings.ReplaceAll(text, "\r\n", "\n")
	inUser := false
	for i := 0; i < len(text); {
		// One logical line: skip blanks, then a comment, header or key.
		for i < len(text) && (text[i] == ' ' || text[i] == '\t') {
			i++
		}
		if i == len(text) {
			break
		}
		switch c := text[i]; {
		case c == '\n':
			i++
			continue
		case c == '#' || c == ';':
			i = skipLine(text, i)
			continue
		case c == '[':
			end := strings.IndexAny(text[i:], "]\n")
			if end < 0 || text[i+end] != ']' {
				return "", false, errAskGit
			}
			header := text[i+1 : i+end]
			i += end + 1
			name := strings.ToLower(strings.TrimSpace(header))
			switch {
			case strings.HasPrefix(name, "include"):
				return "", false, errAskGit
			case strings.ContainsAny(header, " \t\""):
				inUser = false // a subsection: [user "x"] is not [user]
			case strings.Contains(name, "."):
				return "", false, errAskGit // the old [section.subsection] form
			default:
				inUser = name == "user"
			}
			continue // a key may follow on the same line
		}
		k := i
		for k < len(text) && (isAlnum(text[k]) || text[k] == '-') {
			k++
		}
		if k == i {
			return "", false, errAskGit
		}
		key := strings.ToLower(text[i:k])
		i = k
		for i < len(text) && (text[i] == ' ' || text[i] == '\t') {
			i++
		}
		if i == len(text) || text[i] == '\n' || text[i] == '#' || text[i] == ';' {
			if inUser && key == "email" {
				return "", false, errAskGit // a key without a value is boolean true
			}
			i = skipLine(text, i)
			continue
		}
		if text[i] != '=' {
			return "", false, errAskGit
		}
		v, next, err := gitValue(text, i+1)
		if err != nil {
			return "", false, err
		}
		i = next
		if inUser && key == "email" {
			value, found = v, true
		}
	}
	return value, found, nil
}

// gitValue reads a value from text[i:] up to its unescaped end of line, as
// git's parse_value does, and returns it and where the next line starts.
func gitValue(text string, i int) (string, int, error) {
	var v strings.Builder
	quote, comment, space := false, false, 0
	for ; i < len(text); i++ {
		c := text[i]
		if c == '\n' {
			if quote {
				return "", 0, errAskGit
			}
			return v.String(), i + 1, nil
		}
		if comment {
			continue
		}
		if (c == ' ' || c == '\t') && !quote {
			if v.Len() > 0 {
				space++
			}
			continue
		}
		if !quote && (c == '#' || c == ';') {
			comment = true
			continue
		}
		for ; space > 0; space-- {
			v.WriteByte(' ')
		}
		switch c {
		case '\\':
			i++
			if i == len(text) {
				return "", 0, errAskGit
			}
			switch text[i] {
			case '\n':
			case '"', '\\':
				v.WriteByte(text[i])
			case 'n':
				v.WriteByte('\n')
			case 't':
				v.WriteByte('\t')
			case 'b':
				v.WriteByte('\b')
			default:
				return "", 0, errAskGit
			}
		case '"':
			quote = !quote
		default:
			v.WriteByte(c)
		}
	}
	if quote {
		return "", 0, errAskGit
	}
	return v.String(), i, nil
}

func skipLine(text string, i int) int {
	if j := strings.IndexByte(text[i:], '\n'); j >= 0 {
		return i + j + 1
	}
	return len(text)
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}
