package runbook

import (
	"errors"
	"maps"
	"strings"
	"testing"
)

func TestResolveParams(t *testing.T) {
	defs := []Param{
		{Name: "count", Type: ParamInt, Required: true},
		{Name: "dry", Type: ParamBool, Default: "no", HasDefault: true},
		{Name: "mode", Type: ParamEnum, Allowed: []string{"fast", "safe"}, Default: "safe", HasDefault: true},
		{Name: "dir", Type: ParamPath},
		{Name: "note", Type: ParamString},
		{Name: "region", Type: ParamString, Allowed: []string{"eu", "us"}},
		{Name: "token", Type: ParamSecret, Required: true},
	}
	tests := []struct {
		name    string
		given   map[string]string
		want    map[string]string
		wantErr []string // substrings, one per expected problem
	}{
		{
			name:  "defaults and canonical forms",
			given: map[string]string{"count": " 007", "token": "s3cr3t", "dry": "YES"},
			want:  map[string]string{"count": "7", "dry": "true", "mode": "safe", "token": "s3cr3t"},
		},
		{
			name:  "optional without default stays unset, allowed values on a string",
			given: map[string]string{"count": "-3", "token": "xxxx", "region": "eu", "dir": "/tmp"},
			want:  map[string]string{"count": "-3", "dry": "false", "mode": "safe", "token": "xxxx", "region": "eu", "dir": "/tmp"},
		},
		{
			name:    "missing required",
			given:   map[string]string{"token": "xxxx"},
			wantErr: []string{"parameter count: required int value is missing (an integer)"},
		},
		{
			name:    "missing secret says how to give it",
			given:   map[string]string{"count": "1"},
			wantErr: []string{"parameter token: required secret value is missing (a secret: set OPSBOOK_PARAM_TOKEN or answer the prompt)"},
		},
		{
			name:  "every problem at once",
			given: map[string]string{"count": "ten", "token": "xxxx", "dry": "maybe", "mode": "turbo", "region": "asia", "dir": " ", "extra": "1"},
			wantErr: []string{
				`parameter count: "ten" is not an integer`,
				`parameter dry: "maybe" is not a boolean (true or false; yes/no, y/n, on/off and 1/0 are accepted too)`,
				`parameter mode: "turbo" is not allowed (one of: fast, safe)`,
				`parameter dir: a path cannot be empty`,
				`parameter region: "asia" is not allowed (one of: eu, us)`,
				`parameter extra: the runbook declares no such parameter (it declares count, dry, mode, dir, note, region, token)`,
			},
		},
		{
			name:    "required but empty",
			given:   map[string]string{"count": "1", "token": ""},
			wantErr: []string{"parameter token: required value is empty"},
		},
		{
			name:    "NUL byte",
			given:   map[string]string{"count": "1", "token": "abcd", "note": "a\x00b"},
			wantErr: []string{"parameter note: value contains a NUL byte"},
		},
		{
			// Fault class: a secret so short that masking it rewrites
			// ordinary words of the log and the UI.
			name:    "secret shorter than 4 characters",
			given:   map[string]string{"count": "1", "token": "密码x"},
			wantErr: []string{"parameter token: a secret value must be at least 4 characters long (this one has 3)"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ResolveParams(defs, tt.given)
			if len(tt.wantErr) == 0 {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				if !maps.Equal(got, tt.want) {
					t.Fatalf("got %v, want %v", got, tt.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error, want %q", tt.wantErr)
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != len(tt.wantErr) {
				t.Fatalf("got %d problems, want %d:\n%v", len(lines), len(tt.wantErr), err)
			}
			for i, w := range tt.wantErr {
				if !strings.Contains(lines[i], w) {
					t.Errorf("problem %d = %q, want it to contain %q", i, lines[i], w)
				}
			}
			var pe *ParamError
			if !errors.As(err, &pe) {
				t.Errorf("error is not a *ParamError: %T", err)
			}
		})
	}
}

func TestEnvName(t *testing.T) {
	for in, want := range map[string]string{"db_host": "DB_HOST", "db-host": "DB_HOST", "x.y": "X_Y", "A1": "A1"} {
		if got := EnvName(in); got != want {
			t.Errorf("EnvName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestCheckParamBool(t *testing.T) {
	p := Param{Name: "DRY", Type: ParamBool}
	for in, want := range map[string]string{"true": "true", "YES": "true", "y": "true", "On": "true", "1": "true",
		"false": "false", "no": "false", "N": "false", "off": "false", "0": "false", " yes ": "true"} {
		got, err := CheckParam(p, in)
		if err != nil || got != want {
			t.Errorf("CheckParam(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "maybe", "2", "tru"} {
		if _, err := CheckParam(p, in); err == nil {
			t.Errorf("CheckParam(%q) accepted it", in)
		}
	}
}
