package lifecycle

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// gitSays is the reference: git itself, in dir, with the test's
// environment.
func gitSays(t *testing.T, dir string) string {
	t.Helper()
	cmd := exec.Command("git", "config", "user.email")
	cmd.Dir = dir
	out, _ := cmd.Output() // exit 1 when unset
	return strings.TrimSuffix(string(out), "\n")
}

// gitEnv gives the test a home of its own and no system file.
func gitEnv(t *testing.T) (home string) {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git is not installed") // scripts/test.sh installs it
	}
	home = t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("XDG_CONFIG_HOME", "")
	t.Setenv("GIT_CONFIG_NOSYSTEM", "1")
	for _, kv := range os.Environ() {
		if name, _, _ := strings.Cut(kv, "="); strings.HasPrefix(name, "GIT_") && name != "GIT_CONFIG_NOSYSTEM" {
			t.Setenv(name, "")
			os.Unsetenv(name)
		}
	}
	return home
}

// TestGitUserEmailAgreesWithGit: the reader that replaced the `git config
// user.email` subprocess answers what git answers, for every syntax a
// config file may use, in every place git looks (class: an identity that
// differs from git's names the wrong person in the record). Where it
// cannot be sure it must ask git, so the answer is still git's.
func TestGitUserEmailAgreesWithGit(t *testing.T) {
	cases := map[string]string{
		"plain":                     "[user]\n\temail = alice@example.com\n",
		"no spaces":                 "[user]\nemail=alice@example.com\n",
		"case of section and key":   "[User]\n\tEMail = Alice@Example.com\n",
		"last wins":                 "[user]\nemail = a@x\n[core]\nbare = false\n[user]\nemail = b@x\n",
		"subsection is not user":    "[user \"work\"]\nemail = work@x\n[user]\nname = A\n",
		"subsection after":          "[user]\nemail = a@x\n[user \"work\"]\nemail = work@x\n",
		"inline comments":           "[user] # mine\n\temail = a@x # the main one\n; another\n",
		"semicolon comment":         "[user]\nemail = a@x;note\n",
		"quoted with hash":          "[user]\nemail = \"a#b@x\" # comment\n",
		"quoted spaces kept":        "[user]\nemail = \"  a@x  \"\n",
		"inner blanks become one":   "[user]\nemail = a  \t b@x\n",
		"escapes":                   "[user]\nemail = a\\\"q\\\\b@x\n",
		"continuation":              "[user]\nemail = alice\\\n@example.com\n",
		"key on the header line":    "[user] email = inline@x\n",
		"empty value":               "[user]\nemail =\n",
		"crlf":                      "[user]\r\n\temail = crlf@x\r\n",
		"other keys only":           "[user]\nname = Alice\n[core]\neditor = vi\n",
		"no final newline":          "[user]\nemail = last@x",
		"tab indented header":       "\t[user]\n\temail = t@x\n",
		"dashed keys ignored":       "[user]\nsigning-key = k\nemail = d@x\n",
		"include (asks git)":        "[user]\nemail = i@x\n[include]\npath = ~/inc.cfg\n",
		"includeIf (asks git)":      "[user]\nemail = i@x\n[includeIf \"gitdir:/\"]\npath = ~/inc.cfg\n",
		"old subsection (asks git)": "[user.work]\nemail = old@x\n[user]\nemail = new@x\n",
		"boolean key (asks git)":    "[user]\nemail\n",
		"bad escape (asks git)":     "[user]\nemail = a\\qb\n",
	}
	for name, text := range cases {
		t.Run(name, func(t *testing.T) {
			home := gitEnv(t)
			if err := os.WriteFile(filepath.Join(home, "inc.cfg"), []byte("[user]\n\temail = included@x\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			repo := filepath.Join(t.TempDir(), "repo")
			if out, err := exec.Command("git", "init", "-q", repo).CombinedOutput(); err != nil {
				t.Fatalf("git init: %v %s", err, out)
			}
			// The same text in each place git reads, one place at a time,
			// under a global file that says something else.
			for _, place := range []string{"global", "xdg", "local"} {
				os.Remove(filepath.Join(home, ".gitconfig"))
				os.RemoveAll(filepath.Join(home, ".config"))
				var file string
				switch place {
				case "global":
					file = filepath.Join(home, ".gitconfig")
				case "xdg":
					file = filepath.Join(home, ".config", "git", "config")
					if err := os.WriteFile(filepath.Join(home, ".gitconfig"), []byte("[user]\n\temail = global@x\n"), 0o644); err != nil {
						t.Fatal(err)
					}
				case "local":
					file = filepath.Join(repo, ".git", "config")
					if err := os.WriteFile(filepath.Join(home, ".gitconfig"), []byte("[user]\n\temail = global@x\n"), 0o644); err != nil {
						t.Fatal(err)
					}
				}
				if place == "local" {
					base, _ := os.ReadFile(file)
					text = string(base) + text
				}
				if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
					t.Fatal(err)
				}
				sub := filepath.Join(repo, "a", "b")
				os.MkdirAll(sub, 0o755)
				want := gitSays(t, sub)
				got, ok := gitUserEmail(sub)
				if !ok {
					got = ""
				}
				if got != want {
					t.Errorf("%s: read %q, git says %q", place, got, want)
				}
			}
		})
	}
}

// TestGitUserEmailAsksGitWhenUnsure: configuration that moves or adds
// files (environment, a linked worktree) makes the reader defer to git —
// shown by git answering something the files alone do not say.
func TestGitUserEmailAsksGitWhenUnsure(t *testing.T) {
	home := gitEnv(t)
	if err := os.WriteFile(filepath.Join(home, ".gitconfig"), []byte("[user]\n\temail = files@x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	t.Setenv("GIT_CONFIG_COUNT", "1")
	t.Setenv("GIT_CONFIG_KEY_0", "user.email")
	t.Setenv("GIT_CONFIG_VALUE_0", "env@x")
	if _, err := readGitUserEmail(dir); err != errAskGit {
		t.Errorf("GIT_CONFIG_COUNT set: the reader answered from the files (err %v)", err)
	}
	if got, _ := gitUserEmail(dir); got != "env@x" || got != gitSays(t, dir) {
		t.Errorf("GIT_CONFIG_COUNT: got %q, git says %q", got, gitSays(t, dir))
	}
	os.Unsetenv("GIT_CONFIG_COUNT")

	// A linked worktree: .git is a file.
	repo := filepath.Join(t.TempDir(), "repo")
	run := func(args ...string) {
		cmd := exec.Command("git", args...)
		cmd.Dir = repo
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v %s", args, err, out)
		}
	}
	os.MkdirAll(repo, 0o755)
	run("init", "-q")
	run("-c", "user.email=x@x", "-c", "user.name=x", "commit", "-q", "--allow-empty", "-m", "first")
	run("config", "user.email", "repo@x")
	wt := filepath.Join(t.TempDir(), "wt")
	run("worktree", "add", "-q", wt)
	if _, err := readGitUserEmail(wt); err != errAskGit {
		t.Errorf("linked worktree: the reader answered from the files (err %v)", err)
	}
	if got, _ := gitUserEmail(wt); got != "repo@x" {
		t.Errorf("linked worktree: got %q, want the repository's repo@x", got)
	}
}
