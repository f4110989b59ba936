package runbook

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// ParamError is one parameter that cannot be accepted, with what is allowed.
type ParamError struct {
	Name    string
	Message string
}

func (e *ParamError) Error() string { return fmt.Sprintf("parameter %s: %s", e.Name, e.Message) }

// ResolveParams checks the given values against a runbook's parameter
// definitions and returns the complete set the run uses: every given value
// in canonical form (ints without leading zeros or sign noise, bools as
// "true"/"false") and defaults for the rest. It is the one validator for the
// CLI, the server's API and triggers. All problems are reported at once,
// joined, each a *ParamError that names the parameter and what it accepts.
func ResolveParams(defs []Param, given map[string]string) (map[string]string, error) {
	var errs []error
	known := map[string]bool{}
	out := map[string]string{}
	for _, p := range defs {
		known[p.Name] = true
		v, ok := given[p.Name]
		if !ok {
			switch {
			case p.HasDefault:
				v = p.Default
			case p.Required:
				errs = append(errs, &ParamError{p.Name, fmt.Sprintf("required %s value is missing (%s)", p.Type, describeAllowed(p))})
				continue
			default:
				continue // optional without default: the variable is not set
			}
		}
		cv, err := CheckParam(p, v)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out[p.Name] = cv
	}
	var unknown []string
	for name := range given {
		if !known[name] {
			unknown = append(unknown, name)
		}
	}
	sort.Strings(unknown)
	for _, name := range unknown {
		var names []string
		for _, p := range defs {
			names = append(names, p.Name)
		}
		msg := "the runbook declares no such parameter"
		if len(names) > 0 {
			msg += " (it declares " + strings.Join(names, ", ") + ")"
		}
		errs = append(errs, &ParamError{name, msg})
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

// CheckParam validates one value against its definition and returns it in
// canonical form. It is the one check of a value, for run-time values and
// front-matter defaults alike. A bool accepts what an operator naturally
// types (true/false, yes/no, y/n, on/off, 1/0, any case) and is stored as
// "true" or "false", so commands test one spelling; an int is stored
// without leading zeros or spaces.
func CheckParam(p Param, v string) (string, error) {
	bad := func(format string, args ...any) (string, error) {
		return "", &ParamError{p.Name, fmt.Sprintf(format, args...)}
	}
	if strings.ContainsRune(v, 0) {
		return bad("value contains a NUL byte, which no environment variable can carry")
	}
	switch p.Type {
	case ParamInt:
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil {
			return bad("%q is not an integer", v)
		}
		v = strconv.FormatInt(n, 10)
	case ParamBool:
		switch strings.ToLower(strings.TrimSpace(v)) {
		case "true", "yes", "y", "on", "1":
			v = "true"
		case "false", "no", "n", "off", "0":
			v = "false"
		default:
			return bad("%q is not a boolean (%s)", v, describeAllowed(p))
		}
	case ParamEnum:
		if !slices.Contains(p.Allowed, v) {
			return bad("%q is not allowed (%s)", v, describeAllowed(p))
		}
	case ParamPath:
		if strings.TrimSpace(v) == "" {
			return bad("a path cannot be empty")
		}
	case ParamString, ParamSecret, "":
	default:
		return bad("unknown type %q (use one of %s)", p.Type, joinTypes())
	}
	if p.Required && v == "" {
		return bad("required value is empty (%s)", describeAllowed(p))
	}
	if len(p.Allowed) > 0 && !slices.Contains(p.Allowed, v) {
		return bad("%q is not allowed (%s)", v, describeAllowed(p))
	}
	return v, nil
}

func describeAllowed(p Param) string {
	if len(p.Allowed) > 0 {
		return "one of: " + strings.Join(p.Allowed, ", ")
	}
	switch p.Type {
	case ParamInt:
		return "an integer"
	case ParamBool:
		return "true or false; yes/no, y/n, on/off and 1/0 are accepted too"
	case ParamPath:
		return "a file or directory path"
	case ParamSecret:
		return "a secret: set OPSBOOK_PARAM_" + EnvName(p.Name) + " or answer the prompt"
	}
	return "any text"
}

func joinTypes() string {
	var s []string
	for _, t := range ParamTypes {
		s = append(s, string(t))
	}
	return strings.Join(s, ", ")
}

// EnvName is the suffix of the OPSBOOK_PARAM_* environment variable that
// carries a parameter: upper case, with every character that cannot appear
// in a portable variable name replaced by '_'.
func EnvName(param string) string {
	b := []byte(strings.ToUpper(param))
	for i, c := range b {
		if !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			b[i] = '_'
		}
	}
	return string(b)
}

// SecretParam reports whether p's value must be masked and never stored.
func (p Param) SecretParam() bool { return p.Secret || p.Type == ParamSecret }

// RollbackParams resolves a rollback document's parameters exactly as a
// runbook's are resolved (defaults, types, required, allowed values). The
// values given are those of supplied — the runbook's resolved parameters
// and the outputs its steps published — under the names the rollback
// declares; the rollback's own defaults fill the others. The error names
// the rollback document.
func RollbackParams(rollback *Document, supplied map[string]string) (map[string]string, error) {
	given := map[string]string{}
	for _, p := range rollback.Front.Params {
		if v, ok := supplied[p.Name]; ok {
			given[p.Name] = v
		}
	}
	out, err := ResolveParams(rollback.Front.Params, given)
	if err != nil {
		return nil, fmt.Errorf("rollback document %s: %w", rollback.Path, err)
	}
	return out, nil
}

// MissingRollbackParams lists the parameters of the rollback document that
// a run of doc cannot be sure to supply: required, without a default, and
// neither declared by doc (as required, or with a default) nor published
// by one of its steps (outputs=) under the same name. Lint reports them;
// CheckRollbackParams refuses a run with them before anything runs.
func MissingRollbackParams(doc, rollback *Document) []Param {
	supplied := map[string]bool{}
	for _, p := range doc.Front.Params {
		if p.Required || p.HasDefault {
			supplied[p.Name] = true
		}
	}
	for _, s := range doc.Steps {
		for _, name := range s.Outputs {
			supplied[name] = true
		}
	}
	var missing []Param
	for _, p := range rollback.Front.Params {
		if p.Required && !p.HasDefault && !supplied[p.Name] {
			missing = append(missing, p)
		}
	}
	return missing
}

// CheckRollbackParams is what can be known of the rollback's parameters
// before a run of doc starts: none is missing (MissingRollbackParams), and
// the runbook's values it will receive (params, its resolved parameter
// values) pass the rollback's own declarations. Values published by steps
// are checked when the rollback starts (RollbackParams).
func CheckRollbackParams(doc, rollback *Document, params map[string]string) error {
	var errs []error
	for _, p := range MissingRollbackParams(doc, rollback) {
		errs = append(errs, &ParamError{p.Name, fmt.Sprintf("required %s value is missing: the runbook declares no parameter %s that is required or has a default, and no step publishes it (outputs=%s)", p.Type, p.Name, p.Name)})
	}
	for _, p := range rollback.Front.Params {
		if v, ok := params[p.Name]; ok {
			if _, err := CheckParam(p, v); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("rollback document %s: %w", rollback.Path, errors.Join(errs...))
	}
	return nil
}
