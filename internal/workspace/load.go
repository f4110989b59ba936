package workspace

import (
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"net/url"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/opsbook/opsbook/internal/markdown"
	"github.com/opsbook/opsbook/internal/runbook"
	"go.yaml.in/yaml/v3"
)

// ConfigError lists every problem found in opsbook.yaml, each at its line.
type ConfigError struct {
	Diagnostics []runbook.Diagnostic
}

func (e *ConfigError) Error() string {
	lines := make([]string, len(e.Diagnostics))
	for i, d := range e.Diagnostics {
		lines[i] = d.String()
	}
	return strings.Join(lines, "\n")
}

// ParseConfig parses the bytes of an opsbook.yaml. file is used in
// diagnostics; dir supplies the default workspace name.
func ParseConfig(file string, data []byte, dir string) (Config, error) {
	d := &decoder{file: file}
	cfg := Config{}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		d.diags = append(d.diags, yamlSyntaxDiagnostic(file, err))
		return cfg, &ConfigError{d.diags}
	}
	if len(doc.Content) > 0 {
		d.config(doc.Content[0], &cfg)
	}
	if cfg.Name == "" {
		cfg.Name = filepath.Base(dir)
	}
	if cfg.Lang == "" {
		cfg.Lang = "en"
	}
	if len(d.diags) > 0 {
		runbook.SortDiagnostics(d.diags)
		return cfg, &ConfigError{d.diags}
	}
	return cfg, nil
}

var yamlLine = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`line (\d+)`) })

// yamlSyntaxDiagnostic places a YAML syntax error at the line yaml.v3 names.
func yamlSyntaxDiagnostic(file string, err error) runbook.Diagnostic {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 1
	if m := yamlLine().FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = strings.TrimSpace(yamlLine().ReplaceAllString(msg, ""))
		msg = strings.TrimPrefix(msg, ": ")
	}
	return runbook.Diagnostic{File: file, Pos: runbook.Pos{Line: line, Col: 1}, Severity: runbook.SeverityError,
		Rule: "config-syntax", Message: "YAML syntax error: " + msg + "; fix the indentation or quoting"}
}

// decoder walks yaml.v3 nodes by hand so that every problem carries the
// line and column of the offending key or value.
type decoder struct {
	file  string
	diags []runbook.Diagnostic
}

func pos(n *yaml.Node) runbook.Pos { return runbook.Pos{Line: n.Line, Col: n.Column} }

func (d *decoder) errorf(n *yaml.Node, rule, format string, args ...any) {
	d.diags = append(d.diags, runbook.Diagnostic{File: d.file, Pos: pos(n), Severity: runbook.SeverityError,
		Rule: rule, Message: fmt.Sprintf(format, args...)})
}

// fields decodes a mapping, calling set for each known key and reporting
// unknown and duplicate keys.
func (d *decoder) fields(n *yaml.Node, what string, known []string, set func(key string, k, v *yaml.Node)) {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return
	}
	if n.Kind != yaml.MappingNode {
		d.errorf(n, "config-type", "%s must be a mapping of key: value lines", what)
		return
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		key := k.Value
		if seen[key] {
			d.errorf(k, "config-duplicate-key", "%s: key %q appears twice; keep one", what, key)
			continue
		}
		seen[key] = true
		if !contains(known, key) {
			msg := fmt.Sprintf("%s: unknown key %q", what, key)
			if s := suggest(key, known); s != "" {
				msg += fmt.Sprintf("; did you mean %q?", s)
			} else {
				msg += "; known keys are " + strings.Join(known, ", ")
			}
			d.errorf(k, "config-unknown-key", "%s", msg)
			continue
		}
		if v.Kind == yaml.AliasNode {
			v = v.Alias
		}
		set(key, k, v)
	}
}

func (d *decoder) str(v *yaml.Node, what string) string {
	if v.Kind != yaml.ScalarNode {
		d.errorf(v, "config-type", "%s must be a single value", what)
		return ""
	}
	if v.Tag == "!!null" {
		return ""
	}
	return v.Value
}

func (d *decoder) boolean(v *yaml.Node, what string) bool {
	if v.Kind != yaml.ScalarNode || v.Tag != "!!bool" {
		d.errorf(v, "config-type", "%s must be true or false, not %q", what, v.Value)
		return false
	}
	b, _ := strconv.ParseBool(strings.ToLower(v.Value))
	return b
}

func (d *decoder) integer(v *yaml.Node, what string, min, max int) int {
	n, err := strconv.Atoi(v.Value)
	if v.Kind != yaml.ScalarNode || err != nil || n < min || n > max {
		d.errorf(v, "config-type", "%s must be a whole number from %d to %d, not %q", what, min, max, v.Value)
		return 0
	}
	return n
}

func (d *decoder) strings(v *yaml.Node, what string) []string {
	if v.Kind == yaml.ScalarNode && v.Tag == "!!null" {
		return nil
	}
	if v.Kind != yaml.SequenceNode {
		d.errorf(v, "config-type", "%s must be a list, e.g. [a, b]", what)
		return nil
	}
	var out []string
	for _, item := range v.Content {
		if s := d.str(item, what+" item"); s != "" {
			out = append(out, s)
		}
	}
	return out
}

func (d *decoder) stringMap(v *yaml.Node, what string) map[string]string {
	if v.Kind == yaml.ScalarNode && v.Tag == "!!null" {
		return nil
	}
	if v.Kind != yaml.MappingNode {
		d.errorf(v, "config-type", "%s must be a mapping of name: value lines", what)
		return nil
	}
	out := map[string]string{}
	for i := 0; i+1 < len(v.Content); i += 2 {
		k, val := v.Content[i], v.Content[i+1]
		if _, dup := out[k.Value]; dup {
			d.errorf(k, "config-duplicate-key", "%s: %q appears twice; keep one", what, k.Value)
			continue
		}
		out[k.Value] = d.str(val, fmt.Sprintf("%s.%s", what, k.Value))
	}
	return out
}

func (d *decoder) list(v *yaml.Node, what string, each func(item *yaml.Node)) {
	if v.Kind == yaml.ScalarNode && v.Tag == "!!null" {
		return
	}
	if v.Kind != yaml.SequenceNode {
		d.errorf(v, "config-type", "%s must be a list of entries starting with \"- \"", what)
		return
	}
	for _, item := range v.Content {
		if item.Kind == yaml.AliasNode {
			item = item.Alias
		}
		each(item)
	}
}

var configKeys = []string{"name", "lang", "projects", "environments", "notifications", "server", "signers"}

func (d *decoder) config(n *yaml.Node, cfg *Config) {
	d.fields(n, "opsbook.yaml", configKeys, func(key string, k, v *yaml.Node) {
		switch key {
		case "name":
			cfg.Name = d.str(v, "name")
			if cfg.Name != "" && !nameRe().MatchString(cfg.Name) {
				d.errorf(v, "config-name", "name %q may only use letters, digits, '.', '_' and '-'", cfg.Name)
			}
		case "lang":
			cfg.Lang = d.str(v, "lang")
			if cfg.Lang != "en" && cfg.Lang != "zh" {
				d.errorf(v, "config-lang", "lang must be en or zh, not %q", cfg.Lang)
			}
		case "projects":
			cfg.Projects = namedList(d, v, "project", d.project, func(p Project) string { return p.Name })
		case "environments":
			cfg.Environments = namedList(d, v, "environment", d.environment, func(e Environment) string { return e.Name })
		case "notifications":
			cfg.Notifications = namedList(d, v, "notification channel", d.channel, func(c Channel) string { return c.Name })
		case "signers":
			cfg.Signers = namedList(d, v, "signer", d.signer, func(s Signer) string { return s.Name })
		case "server":
			cfg.Server = strings.TrimRight(d.str(v, "server"), "/")
			if u, err := url.Parse(cfg.Server); cfg.Server != "" && (err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil) {
				d.errorf(v, "config-server", "server %q must be the server's address, such as https://opsbook.example.com", cfg.Server)
				cfg.Server = ""
			}
		}
	})
}

// namedList decodes a list of named entries (projects, environments),
// refusing a name declared twice.
func namedList[T any](d *decoder, v *yaml.Node, what string, decode func(*yaml.Node) T, name func(T) string) []T {
	var out []T
	seen := map[string]bool{}
	d.list(v, what+"s", func(item *yaml.Node) {
		x := decode(item)
		if n := name(x); n != "" && seen[n] {
			d.errorf(item, "config-duplicate", "%s %q is declared twice; merge the two entries", what, n)
		}
		seen[name(x)] = true
		out = append(out, x)
	})
	return out
}

// entryName checks the name of a project or an environment.
func (d *decoder) entryName(n *yaml.Node, what, name string) {
	if name == "" {
		d.errorf(n, "config-missing", "%s without a name; add name: <%s>", what, what)
	} else if !nameRe().MatchString(name) {
		d.errorf(n, "config-name", "%s name %q may only use letters, digits, '.', '_' and '-'", what, name)
	}
}

var nameRe = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`) })

var projectKeys = []string{"name", "runbooks", "tags"}

func (d *decoder) project(n *yaml.Node) Project {
	p := Project{Pos: pos(n)}
	d.fields(n, "project", projectKeys, func(key string, k, v *yaml.Node) {
		switch key {
		case "name":
			p.Name = d.str(v, "project name")
		case "runbooks":
			p.Runbooks = d.strings(v, "project runbooks")
			for i, g := range p.Runbooks {
				if err := checkGlob(g); err != nil {
					d.errorf(v.Content[i], "config-glob", "runbooks glob %q: %v", g, err)
				}
			}
		case "tags":
			p.Tags = d.strings(v, "project tags")
		}
	})
	d.entryName(n, "project", p.Name)
	return p
}

var signerKeys = []string{"name", "key"}

// signer decodes one entry of signers: a person's git identity and the
// SSH public key their commits are signed with.
func (d *decoder) signer(n *yaml.Node) Signer {
	s := Signer{Pos: pos(n)}
	d.fields(n, "signer", signerKeys, func(key string, k, v *yaml.Node) {
		switch key {
		case "name":
			s.Name = d.str(v, "signer name")
			// The name goes into git's allowed-signers file as is.
			if s.Name != "" && strings.ContainsAny(s.Name, " \t\r\n,\"*?!") {
				d.errorf(v, "config-signer", "signer name %q: give the git user.email the reviews are recorded under (no spaces, commas, quotes or wildcards)", s.Name)
			}
		case "key":
			s.Key = strings.TrimSpace(d.str(v, "signer key"))
			if err := checkSSHKey(s.Key); err != nil {
				d.errorf(v, "config-signer", "signer key: %v; paste the one line of the person's .pub file (ssh-ed25519 AAAA… comment)", err)
			}
		}
	})
	if s.Name == "" {
		d.errorf(n, "config-missing", "signer without a name; add name: <their git user.email>")
	}
	if s.Key == "" {
		d.errorf(n, "config-missing", "signer %s without a key; add key: <their SSH public key>", s.Name)
	}
	return s
}

// checkSSHKey checks that key is one line "type base64 [comment]" whose
// blob names the same type, as ssh-keygen writes public keys.
func checkSSHKey(key string) error {
	if strings.ContainsAny(key, "\r\n") {
		return fmt.Errorf("one line only")
	}
	f := strings.Fields(key)
	if len(f) < 2 {
		return fmt.Errorf("%q is not an SSH public key", key)
	}
	switch f[0] {
	case "ssh-ed25519", "ssh-rsa", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521",
		"sk-ssh-ed25519@openssh.com", "sk-ecdsa-sha2-nistp256@openssh.com":
	default:
		return fmt.Errorf("key type %q is not one git can verify signatures with", f[0])
	}
	blob, err := base64.StdEncoding.DecodeString(f[1])
	if err != nil || len(blob) < 4 {
		return fmt.Errorf("the key's base64 does not decode")
	}
	n := int(binary.BigEndian.Uint32(blob))
	if n > len(blob)-4 || string(blob[4:4+n]) != f[0] {
		return fmt.Errorf("the key's blob is not a %s key", f[0])
	}
	return nil
}

var environmentKeys = []string{"name", "protected", "hosts", "known_hosts", "variables", "prometheus",
	"reviewers", "rehearsal", "windows", "freezes"}

func (d *decoder) environment(n *yaml.Node) Environment {
	e := Environment{Pos: pos(n)}
	var reviewersSet, rehearsalSet bool
	var hostNodes = map[string]*yaml.Node{} // by name, for the bastion check
	var hostAt []*yaml.Node                 // by index in e.Hosts: a host may have no name
	d.fields(n, "environment", environmentKeys, func(key string, k, v *yaml.Node) {
		switch key {
		case "name":
			e.Name = d.str(v, "environment name")
		case "protected":
			e.Protected = d.boolean(v, "protected")
		case "hosts":
			d.list(v, "hosts", func(item *yaml.Node) {
				h := d.host(item)
				if h.Name != "" {
					if _, dup := hostNodes[h.Name]; dup {
						d.errorf(item, "config-duplicate", "host %q is declared twice in this environment; rename one", h.Name)
					}
					hostNodes[h.Name] = item
				}
				e.Hosts = append(e.Hosts, h)
				hostAt = append(hostAt, item)
			})
		case "known_hosts":
			e.KnownHosts = d.str(v, "known_hosts")
			if filepath.IsAbs(e.KnownHosts) || strings.HasPrefix(filepath.Clean(e.KnownHosts), "..") {
				d.errorf(v, "config-path", "known_hosts %q must be a path inside the workspace, e.g. ops/known_hosts", e.KnownHosts)
			}
		case "prometheus":
			e.Prometheus = d.str(v, "prometheus")
			if u, err := url.Parse(e.Prometheus); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				d.errorf(v, "config-prometheus", "prometheus %q is not an http(s) URL; write the server's base URL, e.g. http://prometheus:9090", e.Prometheus)
			}
		case "variables":
			e.Variables = d.stringMap(v, "variables")
			for i := 0; i+1 < len(v.Content); i += 2 {
				name := v.Content[i].Value
				if err := runbook.CheckEnvName(name); err != nil {
					d.errorf(v.Content[i], "config-variable", "variable %v", err)
				}
			}
		case "reviewers":
			e.Reviewers = d.integer(v, "reviewers", 0, 10)
			reviewersSet = true
		case "rehearsal":
			e.Rehearsal = d.boolean(v, "rehearsal")
			rehearsalSet = true
		case "windows":
			d.list(v, "windows", func(item *yaml.Node) { e.Windows = append(e.Windows, d.window(item)) })
		case "freezes":
			d.list(v, "freezes", func(item *yaml.Node) { e.Freezes = append(e.Freezes, d.freeze(item)) })
		}
	})
	d.entryName(n, "environment", e.Name)
	if !reviewersSet && e.Protected {
		e.Reviewers = 2
	}
	if !rehearsalSet && e.Protected {
		e.Rehearsal = true
	}
	for i, h := range e.Hosts {
		if h.Bastion == "" || h.Name == "" {
			continue // a host without a name is reported already
		}
		if h.Bastion == h.Name {
			d.errorf(hostAt[i], "config-bastion", "host %q names itself as its bastion; name another host", h.Name)
		} else if _, ok := hostNodes[h.Bastion]; !ok {
			d.errorf(hostAt[i], "config-bastion", "host %q: bastion %q is not a host of environment %q; add it to hosts", h.Name, h.Bastion, e.Name)
		}
	}
	return e
}

var hostKeys = []string{"name", "address", "port", "user", "tags", "bastion"}

func (d *decoder) host(n *yaml.Node) runbook.Host {
	var h runbook.Host
	d.fields(n, "host", hostKeys, func(key string, k, v *yaml.Node) {
		switch key {
		case "name":
			h.Name = d.str(v, "host name")
		case "address":
			h.Address = d.str(v, "host address")
		case "port":
			h.Port = d.integer(v, "port", 1, 65535)
		case "user":
			h.User = d.str(v, "user")
		case "tags":
			h.Tags = d.stringMap(v, "tags")
		case "bastion":
			h.Bastion = d.str(v, "bastion")
		}
	})
	if h.Name == "" {
		d.errorf(n, "config-missing", "host without a name; add name: <host>")
	}
	if h.Address == "" {
		d.errorf(n, "config-missing", "host %q has no address; add address: <DNS name or IP>", h.Name)
	}
	return h
}

var windowKeys = []string{"days", "start", "end", "tz"}

func (d *decoder) window(n *yaml.Node) Window {
	w := Window{Pos: pos(n)}
	var daysSet, startSet, endSet bool
	d.fields(n, "window", windowKeys, func(key string, k, v *yaml.Node) {
		switch key {
		case "days":
			daysSet = true
			w.Days = d.weekdays(v)
		case "start":
			startSet = true
			w.Start = d.clock(v, "start")
		case "end":
			endSet = true
			w.End = d.clock(v, "end")
		case "tz":
			w.TZ = d.str(v, "tz")
			if _, err := time.LoadLocation(w.TZ); err != nil || strings.EqualFold(w.TZ, "local") {
				d.errorf(v, "config-tz", "unknown time zone %q; use an IANA name such as UTC, Europe/Berlin or Asia/Shanghai", w.TZ)
			}
		}
	})
	if !daysSet || !startSet || !endSet {
		d.errorf(n, "config-missing", "a window needs days, start and end, e.g. {days: [tue, thu], start: \"22:00\", end: \"02:00\", tz: UTC}")
	}
	if startSet && endSet && w.Start != "" && w.Start == w.End {
		d.errorf(n, "config-window", "window start and end are both %s; a window must have a length", w.Start)
	}
	return w
}

func (d *decoder) clock(v *yaml.Node, what string) string {
	// YAML 1.1 would read 22:00 as a sexagesimal number; yaml.v3 keeps it a
	// string, but an unquoted 9:00 or 900 still reaches us and must be refused.
	s := d.str(v, what)
	if _, err := parseClock(s); err != nil {
		d.errorf(v, "config-clock", "%s: %v; write the time as \"HH:MM\" in quotes, e.g. \"22:00\"", what, err)
		return ""
	}
	return s
}

var weekdayNames = map[string]time.Weekday{
	"sun": time.Sunday, "sunday": time.Sunday, "周日": time.Sunday, "星期日": time.Sunday, "周天": time.Sunday, "星期天": time.Sunday,
	"mon": time.Monday, "monday": time.Monday, "周一": time.Monday, "星期一": time.Monday,
	"tue": time.Tuesday, "tuesday": time.Tuesday, "周二": time.Tuesday, "星期二": time.Tuesday,
	"wed": time.Wednesday, "wednesday": time.Wednesday, "周三": time.Wednesday, "星期三": time.Wednesday,
	"thu": time.Thursday, "thursday": time.Thursday, "周四": time.Thursday, "星期四": time.Thursday,
	"fri": time.Friday, "friday": time.Friday, "周五": time.Friday, "星期五": time.Friday,
	"sat": time.Saturday, "saturday": time.Saturday, "周六": time.Saturday, "星期六": time.Saturday,
}

// weekdays reads a list of day names; an item may be a range such as mon-fri.
func (d *decoder) weekdays(v *yaml.Node) []time.Weekday {
	var days []time.Weekday
	seen := map[time.Weekday]bool{}
	add := func(wd time.Weekday) {
		if !seen[wd] {
			seen[wd] = true
			days = append(days, wd)
		}
	}
	for _, item := range d.strings(v, "days") {
		from, to, isRange := strings.Cut(strings.ToLower(item), "-")
		a, ok1 := weekdayNames[strings.TrimSpace(from)]
		b, ok2 := a, true
		if isRange {
			b, ok2 = weekdayNames[strings.TrimSpace(to)]
		}
		if !ok1 || !ok2 {
			d.errorf(v, "config-days", "days: %q is not a day; use mon, tue, wed, thu, fri, sat, sun or a range such as mon-fri", item)
			continue
		}
		for wd := a; ; wd = (wd + 1) % 7 {
			add(wd)
			if wd == b {
				break
			}
		}
	}
	if len(days) == 0 && v.Kind == yaml.SequenceNode && len(v.Content) == 0 {
		d.errorf(v, "config-days", "days is empty; list the days the window opens, e.g. [tue, thu]")
	}
	sort.Slice(days, func(i, j int) bool { return days[i] < days[j] })
	return days
}

var freezeKeys = []string{"from", "to", "reason"}

func (d *decoder) freeze(n *yaml.Node) Freeze {
	f := Freeze{Pos: pos(n)}
	var fromSet, toSet bool
	d.fields(n, "freeze", freezeKeys, func(key string, k, v *yaml.Node) {
		switch key {
		case "from":
			fromSet = true
			f.From = d.date(v, "from")
		case "to":
			toSet = true
			f.To = d.date(v, "to")
		case "reason":
			f.Reason = d.str(v, "reason")
		}
	})
	if !fromSet || !toSet {
		d.errorf(n, "config-missing", "a freeze needs from and to dates, e.g. {from: 2025-12-20, to: 2026-01-04, reason: year-end}")
	} else if !f.From.IsZero() && !f.To.IsZero() && f.To.Before(f.From) {
		d.errorf(n, "config-freeze", "freeze ends (%s) before it starts (%s); swap from and to", f.To.Format(time.DateOnly), f.From.Format(time.DateOnly))
	}
	return f
}

func (d *decoder) date(v *yaml.Node, what string) time.Time {
	t, err := time.Parse(time.DateOnly, d.str(v, what))
	if err != nil {
		d.errorf(v, "config-date", "%s: %q is not a date; write YYYY-MM-DD", what, v.Value)
	}
	return t
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// suggest returns the candidate closest to s when it is close enough to be
// a likely typo; keys and names are matched case-insensitively.
func suggest(s string, candidates []string) string {
	return markdown.Suggest(strings.ToLower(s), candidates)
}
