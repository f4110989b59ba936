package workspace

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"time"
	"unicode"
)

// TaskName is the conventional name of a planned operation:
// YYYY-MM-DD-<system>-<operation>-<short-description>.
type TaskName struct {
	Date      time.Time `json:"date"`
	System    string    `json:"system"`
	Operation string    `json:"operation"`
	Slug      string    `json:"slug"`
	// Words are the recognised words the name was derived from, for the
	// library match (e.g. "dr", "test", "pii").
	Words []string `json:"-"`
	// Kind is the recognised system a named system is one of ("db" for
	// orders-db), for the library match; empty when System is recognised.
	Kind string `json:"-"`
	// Guessed says, for each part not recognised in the description nor
	// given by a flag, what was chosen and how to choose otherwise.
	Guessed []string `json:"guessed,omitempty"`
}

func (n TaskName) String() string {
	return n.Date.Format(time.DateOnly) + "-" + n.System + "-" + n.Operation + "-" + n.Slug
}

// NameOptions are explicit parts of a task name that win over derivation.
type NameOptions struct {
	System, Operation, Slug string
	Date                    time.Time // zero means today
}

// Systems and operations opsbook recognises, by canonical token. The
// English aliases are matched as whole words (multi-word ones as phrases),
// the Chinese ones anywhere in a run of Chinese text.
var systemAliases = []struct {
	Token string
	EN    []string
	ZH    []string
}{
	{"postgres", []string{"postgres", "postgresql", "pg", "pgsql", "psql", "pg_upgrade"}, nil},
	{"mysql", []string{"mysql"}, nil},
	{"mariadb", []string{"mariadb"}, nil},
	{"oracle", []string{"oracle"}, nil},
	{"sqlserver", []string{"sql server", "sqlserver", "mssql"}, nil},
	{"mongodb", []string{"mongodb", "mongo"}, nil},
	{"redis", []string{"redis"}, nil},
	{"memcached", []string{"memcached"}, nil},
	{"kafka", []string{"kafka"}, nil},
	{"rabbitmq", []string{"rabbitmq"}, nil},
	{"zookeeper", []string{"zookeeper"}, nil},
	{"etcd", []string{"etcd"}, nil},
	{"elasticsearch", []string{"elasticsearch", "opensearch"}, nil},
	{"clickhouse", []string{"clickhouse"}, nil},
	{"cassandra", []string{"cassandra"}, nil},
	{"k8s", []string{"kubernetes", "k8s", "kube", "kubeadm", "eks", "gke", "aks"}, nil},
	{"docker", []string{"docker"}, nil},
	{"cdn", []string{"cdn"}, []string{"内容分发"}},
	{"dns", []string{"dns"}, []string{"域名解析", "域名"}},
	{"nginx", []string{"nginx"}, nil},
	{"haproxy", []string{"haproxy"}, nil},
	{"lb", []string{"load balancer", "loadbalancer", "lb", "elb", "alb"}, []string{"负载均衡"}},
	{"tls", []string{"tls", "ssl", "certificate", "certificates", "cert", "certs"}, []string{"证书"}},
	{"vault", []string{"vault"}, nil},
	{"consul", []string{"consul"}, nil},
	{"ceph", []string{"ceph"}, nil},
	{"s3", []string{"s3"}, []string{"对象存储"}},
	{"prometheus", []string{"prometheus"}, nil},
	{"jenkins", []string{"jenkins"}, nil},
	{"gitlab", []string{"gitlab"}, nil},
	{"network", []string{"network", "firewall", "vpn"}, []string{"网络", "防火墙"}},
	// Generic systems lose to any specific one in the same description.
	{"db", []string{"database", "databases", "db"}, []string{"数据库"}},
	{"app", []string{"application", "app"}, []string{"应用"}},
}

var genericSystems = map[string]bool{"db": true, "app": true, "network": true}

var operationAliases = []struct {
	Token string
	EN    []string
	ZH    []string
}{
	{"upgrade", []string{"upgrade", "upgrades", "upgrading"}, []string{"升级"}},
	{"migration", []string{"migration", "migrate", "migrating", "move"}, []string{"迁移", "搬迁"}},
	{"switchback", []string{"switchback", "switch back", "fail back", "failback"}, []string{"回切", "切回"}},
	{"failover", []string{"failover", "fail over"}, []string{"故障转移", "故障切换", "灾备切换", "容灾切换"}},
	{"switchover", []string{"switchover", "switch over", "switch", "cutover", "cut over"}, []string{"切换", "割接"}},
	{"backup", []string{"backup", "back up", "backups"}, []string{"备份"}},
	{"restore", []string{"restore", "recovery", "recover"}, []string{"恢复", "还原"}},
	{"rotation", []string{"rotation", "rotate", "renewal", "renew", "replace", "replacement"}, []string{"轮换", "更换", "续期", "替换"}},
	{"scale-out", []string{"scale-out", "scale out", "expand", "expansion", "add nodes"}, []string{"扩容"}},
	{"scale-in", []string{"scale-in", "scale in", "shrink", "remove nodes"}, []string{"缩容"}},
	{"refresh", []string{"refresh", "reload data"}, []string{"刷新", "数据刷新"}},
	{"patch", []string{"patch", "patching"}, []string{"补丁", "打补丁"}},
	{"decommission", []string{"decommission", "retire", "teardown"}, []string{"下线", "退役"}},
	{"deploy", []string{"deploy", "deployment", "release", "rollout"}, []string{"发布", "部署", "上线"}},
	{"restart", []string{"restart", "reboot"}, []string{"重启"}},
	{"drill", []string{"drill", "exercise", "game day"}, []string{"演练"}},
	{"maintenance", []string{"maintenance", "vacuum", "reindex"}, []string{"维护"}},
	{"config-change", []string{"config change", "configuration change", "reconfigure"}, []string{"配置变更", "配置修改"}},
}

// Chinese words that become ASCII slug words, and function words.
var zhWords = map[string]string{
	"集群": "cluster", "主库": "primary", "从库": "replica", "备库": "standby", "主从": "primary-replica",
	"生产": "production", "测试": "test", "预发": "staging", "灾备": "dr", "容灾": "dr", "机房": "dc",
	"节点": "nodes", "脱敏": "sanitised", "版本": "", "大版本": "major", "跨": "cross", "全量": "full",
	"增量": "incremental", "逻辑复制": "logical-replication", "读写分离": "read-split",
	"时间点": "point-in-time", "归档": "archive", "物理": "physical",
}

// Filler words carry no information in a name; they are used only when
// nothing else is left ("Redis cluster scale-out" → redis-scale-out-cluster).
var fillerWords = map[string]bool{
	"cluster": true, "clusters": true, "server": true, "servers": true, "instance": true, "instances": true,
	"service": true, "provider": true, "version": true, "nodes": true, "node": true, "system": true,
}

var stopWords = map[string]bool{
	"a": true, "an": true, "the": true, "of": true, "for": true, "on": true, "in": true, "at": true,
	"and": true, "with": true, "our": true, "by": true, "via": true, "into": true, "using": true,
	"new": true, "old": true, "plan": true, "runbook": true,
	"is": true, "be": true, "all": true, "this": true, "please": true,
	"after": true, "before": true, "then": true, "during": true,
}

type tokKind int

const (
	tkWord tokKind = iota
	tkSystem
	tkOp
	tkVersion
	tkFrom
	tkTo
	tkFiller
	tkStop
)

type token struct {
	kind tokKind
	text string // canonical token, version "v12", or lower-case word
	raw  string // the word as written, lower case, for phrase matching
}

var versionRe = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^v?(\d+(?:\.\d+)*(?:\.x)?)$`) })

// lex splits a description into classified tokens.
func lex(desc string) []token {
	// Split into runs of ASCII words, CJK text, and arrows.
	type piece struct {
		s   string
		cjk bool
	}
	var pieces []piece
	desc = strings.NewReplacer("→", " to ", "->", " to ", "=>", " to ", "—", " ", "–", " ", "：", " ", "，", " ", "、", " ", "（", " ", "）", " ").Replace(desc)
	var cur []rune
	curCJK := false
	flush := func() {
		if len(cur) > 0 {
			pieces = append(pieces, piece{string(cur), curCJK})
		}
		cur = nil
	}
	for _, r := range desc {
		isCJK := unicode.Is(unicode.Han, r)
		isWord := r < 128 && (unicode.IsLetter(r) || unicode.IsDigit(r) || r == '.' || r == '-' || r == '_')
		switch {
		case isCJK:
			if !curCJK {
				flush()
			}
			curCJK = true
			cur = append(cur, r)
		case isWord:
			if curCJK {
				flush()
			}
			curCJK = false
			cur = append(cur, unicode.ToLower(r))
		default:
			flush()
			curCJK = false
		}
	}
	flush()

	var toks []token
	for _, p := range pieces {
		if p.cjk {
			toks = append(toks, lexCJK(p.s)...)
			continue
		}
		w := strings.Trim(p.s, ".-_")
		if w == "" {
			continue
		}
		toks = append(toks, classifyWord(w))
	}
	toks = mergePhrases(toks)
	// "add 3 nodes": a count, not a version.
	for i := 0; i+1 < len(toks); i++ {
		if toks[i].kind == tkVersion && isDigits(toks[i].raw) && countNouns[toks[i+1].raw] {
			toks[i] = token{kind: tkWord, text: toks[i].raw, raw: toks[i].raw}
			toks[i+1].kind = tkWord
		}
	}
	return toks
}

var countNouns = map[string]bool{"nodes": true, "node": true, "brokers": true, "replicas": true,
	"hosts": true, "shards": true, "partitions": true, "disks": true, "servers": true, "instances": true}

func isDigits(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return s != ""
}

func classifyWord(w string) token {
	t := classifyBare(w)
	t.raw = w
	return t
}

func classifyBare(w string) token {
	if m := versionRe().FindStringSubmatch(w); m != nil {
		// A four-digit year is a word, not a version.
		if len(m[1]) == 4 && !strings.Contains(m[1], ".") && !strings.HasPrefix(w, "v") {
			return token{kind: tkWord, text: w}
		}
		return token{kind: tkVersion, text: "v" + m[1]}
	}
	switch w {
	case "from":
		return token{kind: tkFrom, text: w}
	case "to":
		return token{kind: tkTo, text: w}
	}
	for _, s := range systemAliases {
		for _, a := range s.EN {
			if a == w {
				return token{kind: tkSystem, text: s.Token}
			}
		}
	}
	for _, o := range operationAliases {
		for _, a := range o.EN {
			if a == w {
				return token{kind: tkOp, text: o.Token}
			}
		}
	}
	if fillerWords[w] {
		return token{kind: tkFiller, text: w}
	}
	if stopWords[w] {
		return token{kind: tkStop, text: w}
	}
	return token{kind: tkWord, text: w}
}

// mergePhrases joins two-word aliases ("sql server", "switch back",
// "scale out") into one token.
func mergePhrases(toks []token) []token {
	var out []token
	for i := 0; i < len(toks); i++ {
		if i+1 < len(toks) {
			phrase := toks[i].raw + " " + toks[i+1].raw
			if t, ok := phraseToken(phrase); ok {
				out = append(out, t)
				i++
				continue
			}
		}
		out = append(out, toks[i])
	}
	return out
}

func phraseToken(phrase string) (token, bool) {
	for _, o := range operationAliases {
		for _, a := range o.EN {
			if a == phrase {
				return token{kind: tkOp, text: o.Token}, true
			}
		}
	}
	for _, s := range systemAliases {
		for _, a := range s.EN {
			if a == phrase {
				return token{kind: tkSystem, text: s.Token}, true
			}
		}
	}
	return token{}, false
}

// lexCJK segments Chinese text by longest match against the known words;
// characters that match nothing carry no ASCII meaning and are dropped.
func lexCJK(s string) []token {
	dict := map[string]token{"从": {kind: tkFrom, text: "from"}, "到": {kind: tkTo, text: "to"}, "至": {kind: tkTo, text: "to"}}
	for _, sys := range systemAliases {
		for _, a := range sys.ZH {
			dict[a] = token{kind: tkSystem, text: sys.Token}
		}
	}
	for _, o := range operationAliases {
		for _, a := range o.ZH {
			dict[a] = token{kind: tkOp, text: o.Token}
		}
	}
	for zh, en := range zhWords {
		if en == "" {
			dict[zh] = token{kind: tkStop, text: zh}
		} else if fillerWords[en] {
			dict[zh] = token{kind: tkFiller, text: en}
		} else {
			dict[zh] = token{kind: tkWord, text: en}
		}
	}
	rs := []rune(s)
	var toks []token
	for i := 0; i < len(rs); {
		matched := false
		for l := min(6, len(rs)-i); l >= 1; l-- {
			if t, ok := dict[string(rs[i:i+l])]; ok {
				toks = append(toks, t)
				i += l
				matched = true
				break
			}
		}
		if !matched {
			i++
		}
	}
	return toks
}

var slugPartRe = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-z0-9][a-z0-9.-]*$`) })

// maxSlugParts bounds the short description; a name is for finding the
// task in a listing, the document says the rest.
const maxSlugParts = 4

// DeriveName turns a one-line description into a task name. Parts given
// in opts win; a part that can be neither given nor derived is an error
// that names the flag to pass.
func DeriveName(desc string, opts NameOptions) (TaskName, error) {
	toks := lex(desc)
	n := TaskName{Date: opts.Date}
	if n.Date.IsZero() {
		now := time.Now()
		n.Date = time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	}
	for _, t := range toks {
		if t.kind == tkWord || t.kind == tkSystem || t.kind == tkOp {
			n.Words = append(n.Words, t.text)
		}
	}

	// The first operation named is the one, except that a switch back is
	// always what a description mentioning the failover before it is about.
	opIdx := -1
	for i, t := range toks {
		if t.kind == tkOp && (opIdx < 0 || t.text == "switchback") {
			opIdx = i
		}
		if t.kind == tkOp && t.text == "switchback" {
			break
		}
	}
	if opts.Operation != "" {
		n.Operation = strings.ToLower(opts.Operation)
	} else if opIdx >= 0 {
		n.Operation = toks[opIdx].text
	}

	sysIdx := chooseSystem(toks, opIdx)
	if opts.System == "" && sysIdx < 0 {
		// No system opsbook knows: the most specific name in the
		// description is the system ("orders-db", "ftp server").
		if i, kind := nameAsSystem(toks, opIdx); i >= 0 {
			toks[i] = token{kind: tkSystem, text: toks[i].text, raw: toks[i].raw}
			sysIdx, n.Kind = i, kind
			n.Guessed = append(n.Guessed, fmt.Sprintf("system %q is the most specific name in the description; pass --system to choose another", toks[i].text))
		}
	}
	if opts.System != "" {
		n.System = strings.ToLower(opts.System)
		sysIdx = -1
		for i, t := range toks {
			if t.kind == tkSystem && t.text == n.System {
				sysIdx = i
				break
			}
		}
	} else if sysIdx >= 0 {
		n.System = toks[sysIdx].text
	}

	parts, versionRange := slugParts(toks, n.System, n.Operation)
	// "A major-version migration of the same system is an upgrade."
	if opts.Operation == "" && n.Operation == "migration" && versionRange {
		n.Operation = "upgrade"
	}
	if opts.Slug != "" {
		n.Slug = strings.ToLower(opts.Slug)
	} else {
		n.Slug = strings.Join(parts, "-")
	}

	// A description never fails: what cannot be derived is chosen, and
	// said.
	if n.System == "" {
		n.System = "ops"
		n.Guessed = append(n.Guessed, `system "ops": the description names none; pass --system, e.g. --system postgres`)
	}
	if n.Operation == "" {
		n.Operation = "change"
		n.Guessed = append(n.Guessed, `operation "change": the description names none opsbook knows; pass --operation, e.g. --operation upgrade`)
	}
	if n.Slug == "" {
		n.Slug = n.System
		n.Guessed = append(n.Guessed, fmt.Sprintf("short description %q: nothing else in the description is ASCII; pass --slug, e.g. --slug primary-dc", n.Slug))
	}
	for _, p := range []struct{ flag, v string }{{"--system", n.System}, {"--operation", n.Operation}, {"--slug", n.Slug}} {
		if !slugPartRe().MatchString(p.v) {
			return n, fmt.Errorf("%s %q: use lower-case ASCII letters, digits, '.' and '-' only", p.flag, p.v)
		}
	}
	return n, nil
}

// nameAsSystem picks, when the description names no system opsbook knows,
// the most specific name in it: a word one of whose parts is a known
// system ("orders-db", "pg-main"), else a word before a filler noun ("the
// legacy ftp server"), else the first word after the operation (its
// object), else the first word. kind is the known system inside the name.
func nameAsSystem(toks []token, opIdx int) (int, string) {
	word := func(i int) bool {
		return toks[i].kind == tkWord && slugPartRe().MatchString(toks[i].text) && !isDigits(toks[i].text)
	}
	for i := range toks {
		if !word(i) {
			continue
		}
		for _, part := range strings.FieldsFunc(toks[i].text, func(r rune) bool { return r == '-' || r == '_' || r == '.' }) {
			if t := classifyBare(part); t.kind == tkSystem {
				return i, t.text
			}
		}
	}
	for i := 0; i+1 < len(toks); i++ {
		if word(i) && toks[i+1].kind == tkFiller {
			return i, ""
		}
	}
	for i := opIdx + 1; opIdx >= 0 && i < len(toks); i++ {
		if word(i) {
			return i, ""
		}
	}
	for i := range toks {
		if word(i) {
			return i, ""
		}
	}
	return -1, ""
}

// chooseSystem picks the specific system nearest to the operation (the
// thing being operated on), else a generic one, else none.
func chooseSystem(toks []token, opIdx int) int {
	best, bestDist, bestGeneric := -1, 1<<30, true
	for i, t := range toks {
		if t.kind != tkSystem {
			continue
		}
		generic := genericSystems[t.text]
		dist := 0
		if opIdx >= 0 {
			dist = i - opIdx
			if dist < 0 {
				dist = -dist
			}
		}
		better := best < 0 ||
			(bestGeneric && !generic) ||
			(bestGeneric == generic && dist < bestDist)
		if better {
			best, bestDist, bestGeneric = i, dist, generic
		}
	}
	return best
}

// slugParts builds the short description from what is left after the
// system and the operation: a "from A to B" range first where it appeared,
// then the other words. versionRange reports a version-to-version range.
func slugParts(toks []token, system, op string) (parts []string, versionRange bool) {
	used := make([]bool, len(toks))
	content := func(t token) bool {
		return t.kind == tkWord || t.kind == tkVersion || t.kind == tkSystem
	}
	operand := func(i int) string {
		t := toks[i]
		// "PostgreSQL 12": the version says more than the system.
		if t.kind == tkSystem && i+1 < len(toks) && toks[i+1].kind == tkVersion {
			used[i] = true
			return operandText(toks[i+1], used, i+1)
		}
		return operandText(t, used, i)
	}

	rangeAt, rangeText := -1, ""
	for i, t := range toks {
		if t.kind != tkTo {
			continue
		}
		right := nextContent(toks, i+1, content)
		if right < 0 {
			break
		}
		left := -1
		fromIdx := -1
		for j := i - 1; j >= 0; j-- {
			if toks[j].kind == tkFrom {
				fromIdx = j
				break
			}
		}
		if fromIdx >= 0 {
			left = nextContent(toks, fromIdx+1, content)
			if left >= i {
				left = -1
			}
		} else if j := i - 1; j >= 0 && content(toks[j]) {
			left = j
		} else if j := i - 1; j >= 1 && toks[j].kind == tkFiller && content(toks[j-1]) {
			left = j - 1
		}
		rightKind := toks[right].kind
		if rightKind == tkSystem && right+1 < len(toks) && toks[right+1].kind == tkVersion {
			rightKind = tkVersion
		}
		r := operand(right)
		used[i] = true
		dropRefinements := func() {
			// Words right after the target of a real range refine it
			// ("AWS CloudFront"): drop them.
			for k := right + 1; k < len(toks) && toks[k].kind == tkWord; k++ {
				used[k] = true
			}
		}
		if left < 0 || (toks[left].kind == tkSystem && toks[left].text == system && rightKind == tkVersion && !(left+1 < len(toks) && toks[left+1].kind == tkVersion)) {
			// "upgrade to v1.28", "kubernetes to 1.28": a target only.
			if left >= 0 {
				used[left] = true
			}
			rangeAt, rangeText = right, r
			break
		}
		leftKind := toks[left].kind
		if leftKind == tkSystem && left+1 < len(toks) && toks[left+1].kind == tkVersion {
			leftKind = tkVersion
		}
		l := operand(left)
		dropRefinements()
		if fromIdx >= 0 {
			used[fromIdx] = true
			// Words between the source and "to" refine the source.
			for k := left + 1; k < i; k++ {
				if toks[k].kind == tkWord {
					used[k] = true
				}
			}
		}
		rangeAt, rangeText = left, l+"-to-"+r
		if toks[left].kind == tkSystem && leftKind != tkVersion && (toks[left].text == system || genericSystems[toks[left].text]) {
			// "from MySQL to PostgreSQL" under system mysql: the source is the system.
			rangeText = "to-" + r
		}
		versionRange = leftKind == tkVersion && rightKind == tkVersion
		break
	}

	var fillers []string
	for i, t := range toks {
		if i == rangeAt {
			parts = append(parts, rangeText)
			continue
		}
		if used[i] {
			continue
		}
		switch t.kind {
		case tkWord, tkVersion:
			if t.text != system {
				parts = append(parts, t.text)
			}
		case tkSystem:
			if t.text != system && !genericSystems[t.text] {
				parts = append(parts, t.text)
			}
		case tkOp:
			if t.text != op {
				parts = append(parts, t.text)
			}
		case tkFiller:
			fillers = append(fillers, t.text)
		}
	}
	parts = dedupe(parts)
	if len(parts) == 0 {
		parts = dedupe(fillers)
	}
	if len(parts) > maxSlugParts {
		parts = parts[:maxSlugParts]
	}
	return parts, versionRange
}

func operandText(t token, used []bool, i int) string {
	used[i] = true
	return t.text
}

func nextContent(toks []token, from int, content func(token) bool) int {
	for j := from; j < len(toks); j++ {
		switch {
		case content(toks[j]):
			return j
		case toks[j].kind == tkFiller || toks[j].kind == tkStop:
			continue
		default:
			return -1
		}
	}
	return -1
}

func dedupe(parts []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, p := range parts {
		p = strings.Trim(p, ".-")
		if p == "" || seen[p] {
			continue
		}
		seen[p] = true
		out = append(out, p)
	}
	return out
}

// ParseTaskName splits a task directory name back into its parts. The
// system and operation are taken as the first two dash-separated words
// after the date, except for known multi-word operations.
func ParseTaskName(name string) (TaskName, error) {
	if len(name) < 11 || name[10] != '-' {
		return TaskName{}, errors.New("task names start with a YYYY-MM-DD- date")
	}
	d, err := time.Parse(time.DateOnly, name[:10])
	if err != nil {
		return TaskName{}, fmt.Errorf("task name %q does not start with a valid date", name)
	}
	rest := name[11:]
	sys, rest, ok := strings.Cut(rest, "-")
	if !ok || sys == "" {
		return TaskName{}, fmt.Errorf("task name %q has no system after the date", name)
	}
	op := ""
	for _, o := range operationAliases {
		if strings.HasPrefix(rest, o.Token+"-") && len(o.Token) > len(op) {
			op = o.Token
		}
	}
	if op == "" {
		op, _, _ = strings.Cut(rest, "-")
	}
	slug := strings.TrimPrefix(strings.TrimPrefix(rest, op), "-")
	return TaskName{Date: d, System: sys, Operation: op, Slug: slug}, nil
}

// taskNameRe is the shape every task directory name has.
var taskNameRe = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^\d{4}-\d{2}-\d{2}-[a-z0-9][a-z0-9.-]*-[a-z0-9][a-z0-9.-]*-[a-z0-9][a-z0-9.-]*$`)
})
