package runbook

import (
	"fmt"
	"sort"
	"strings"
)

// envNameAllowed is the allow-list for names that reach a step's
// environment as parameters and variables: upper-case letters, digits and
// _, starting with a letter, at most 128 characters. (A loop, not the
// regexp ^[A-Z][A-Z0-9_]{0,127}$, whose 127-fold repetition cost every
// command 1,400 allocations at start-up.)
func envNameAllowed(name string) bool {
	if len(name) == 0 || len(name) > 128 || name[0] < 'A' || name[0] > 'Z' {
		return false
	}
	for i := 1; i < len(name); i++ {
		c := name[i]
		if !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// reservedEnvNames change how a shell, the dynamic loader, a locale or an
// interpreter finds and runs code, or are the run's own built-ins. A name
// here passed as a variable would let whoever may set variables (or pass
// parameters) run code as the server's user: BASH_ENV is sourced by every
// non-interactive bash, LD_PRELOAD is loaded into every process.
var reservedEnvNames = map[string]bool{
	// shells
	"BASH_ENV": true, "ENV": true, "IFS": true, "PATH": true, "CDPATH": true, "HOME": true, "SHELL": true,
	"PS1": true, "PS2": true, "PS3": true, "PS4": true, "SHELLOPTS": true, "BASHOPTS": true,
	"PROMPT_COMMAND": true, "GLOBIGNORE": true, "BASH_XTRACEFD": true, "BASH_COMPAT": true,
	"BASH_LOADABLES_PATH": true, "POSIXLY_CORRECT": true, "TMOUT": true, "FPATH": true, "ZDOTDIR": true,
	"INPUTRC": true, "HISTFILE": true, "MAIL": true, "MAILPATH": true, "TERM": true, "TMPDIR": true,
	// loader, libc and locales
	"GCONV_PATH": true, "LOCPATH": true, "NLSPATH": true, "HOSTALIASES": true, "RESOLV_HOST_CONF": true,
	"MALLOC_CHECK_": true, "TZDIR": true,
	// interpreters and tools that load code or run commands from a variable
	"PYTHONPATH": true, "PYTHONSTARTUP": true, "PYTHONHOME": true, "PYTHONINSPECT": true,
	"PERL5LIB": true, "PERL5OPT": true, "PERLLIB": true, "RUBYLIB": true, "RUBYOPT": true,
	"NODE_OPTIONS": true, "NODE_PATH": true, "JAVA_TOOL_OPTIONS": true, "_JAVA_OPTIONS": true, "JDK_JAVA_OPTIONS": true,
	"SSH_ASKPASS": true, "SUDO_ASKPASS": true, "EDITOR": true, "VISUAL": true, "PAGER": true,
	"LESSOPEN": true, "LESSCLOSE": true, "MANPAGER": true, "BROWSER": true, "OPENSSL_CONF": true,
	"OPENSSL_ENGINES": true,
}

// reservedEnvPrefixes are families of such names.
var reservedEnvPrefixes = []string{"LD_", "DYLD_", "BASH_FUNC_", "OPSBOOK_", "GIT_", "PSQL", "GLIBC_"}

// ReservedEnvName reports why name may not be set from outside a runbook's
// own text ("" when it may): it is one of the names above or starts with
// one of the prefixes. Case matters, as it does for the environment.
func ReservedEnvName(name string) string {
	if reservedEnvNames[name] {
		return fmt.Sprintf("%s is reserved: it changes how the shell, the loader or an interpreter runs commands", name)
	}
	for _, p := range reservedEnvPrefixes {
		if strings.HasPrefix(name, p) {
			if p == "OPSBOOK_" {
				return fmt.Sprintf("%s is reserved: names starting with OPSBOOK_ are the run's own", name)
			}
			return fmt.Sprintf("%s is reserved: names starting with %s change how the loader, a shell or a tool runs commands", name, p)
		}
	}
	return ""
}

// CheckEnvName is the one rule for the name of a parameter or a variable,
// which reaches every step's command as an environment variable: upper-case
// letters, digits and _, starting with a letter (an allow-list, so no
// lower-case spelling of a shell's own variables slips through), and not
// reserved (ReservedEnvName). The runbook parser and lint, opsbook.yaml,
// the variables API and the variables page all check names here.
func CheckEnvName(name string) error {
	if !envNameAllowed(name) {
		return fmt.Errorf("name %q: use upper-case letters, digits and _, starting with a letter, at most 128 characters (it becomes an environment variable of the steps)", name)
	}
	if why := ReservedEnvName(name); why != "" {
		return fmt.Errorf("name %s; choose another name", why)
	}
	return nil
}

// ReservedEnvNames lists every reserved name and prefix (a prefix ends in
// "*"), sorted: for the documentation and for tests that try each one.
func ReservedEnvNames() []string {
	var out []string
	for n := range reservedEnvNames {
		out = append(out, n)
	}
	for _, p := range reservedEnvPrefixes {
		out = append(out, p+"*")
	}
	sort.Strings(out)
	return out
}

// HostileEnvNames are names a test should see refused: every reserved
// name, one name of each reserved prefix, and lower-case or odd spellings
// the allow-list keeps out.
func HostileEnvNames() []string {
	var out []string
	for _, n := range ReservedEnvNames() {
		if p, ok := strings.CutSuffix(n, "*"); ok {
			n = p + "PRELOAD"
		}
		out = append(out, n)
	}
	return append(out, "path", "bash_env", "Ld_Preload", "_PRIVATE", "1BAD", "A-B", "")
}
