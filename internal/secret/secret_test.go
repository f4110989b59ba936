package secret

import (
	"bytes"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func key(b byte) []byte { return bytes.Repeat([]byte{b}, KeySize) }

// tamper changes one character well inside the sealed text's last part, to
// a different one, so every bit it stands for is used. (Replacing the last
// two characters with "AA" changed nothing when they already decoded to
// the same bytes: a flaky test, 1 run in a few hundred.)
func tamper(sealed string) string {
	i := len(sealed) - 6
	c := byte('A')
	if sealed[i] == 'A' {
		c = 'B'
	}
	return sealed[:i] + string(c) + sealed[i+1:]
}

func TestSealOpen(t *testing.T) {
	k, err := NewKeyring("k1", key(1))
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := k.Seal([]byte("hunter2"), []byte("var:prod:DB_PASSWORD"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(sealed, "hunter2") || !strings.HasPrefix(sealed, "obs1.k1.") {
		t.Fatalf("sealed = %q", sealed)
	}
	tests := []struct {
		name    string
		sealed  string
		aad     string
		wantErr bool
	}{
		{"same aad opens", sealed, "var:prod:DB_PASSWORD", false},
		{"other aad fails", sealed, "var:dev:DB_PASSWORD", true},
		{"tampered ciphertext fails", tamper(sealed), "var:prod:DB_PASSWORD", true},
		{"garbage fails", "hunter2", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pt, err := k.Open(tt.sealed, []byte(tt.aad))
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if !tt.wantErr && string(pt) != "hunter2" {
				t.Fatalf("plaintext = %q", pt)
			}
		})
	}
	// Two seals of the same value differ (fresh data key and nonce).
	again, _ := k.Seal([]byte("hunter2"), nil)
	if again == sealed {
		t.Fatal("sealing twice gave the same text")
	}
}

func TestRotation(t *testing.T) {
	old, _ := NewKeyring("k1", key(1))
	sealed, _ := old.Seal([]byte("v"), []byte("a"))

	rotated, _ := NewKeyring("k2", key(2))
	if _, err := rotated.Open(sealed, []byte("a")); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("open without old key: err = %v, want ErrUnknownKey", err)
	}
	if err := rotated.Add("k1", key(1)); err != nil {
		t.Fatal(err)
	}
	re, err := rotated.Rewrap(sealed)
	if err != nil {
		t.Fatal(err)
	}
	if id, _ := KeyID(re); id != "k2" {
		t.Fatalf("rewrapped key id = %q", id)
	}
	onlyNew, _ := NewKeyring("k2", key(2))
	pt, err := onlyNew.Open(re, []byte("a"))
	if err != nil || string(pt) != "v" {
		t.Fatalf("open rewrapped with new key only: %q, %v", pt, err)
	}
}

func TestLoadKeyring(t *testing.T) {
	b64 := base64.StdEncoding.EncodeToString(key(7))
	t.Run("generates 0600 file on first start and reuses it", func(t *testing.T) {
		dir := t.TempDir()
		env := func(string) string { return "" }
		k1, src, err := LoadKeyring(dir, env)
		if err != nil {
			t.Fatal(err)
		}
		info, err := os.Stat(filepath.Join(dir, KeyFileName))
		if err != nil || info.Mode().Perm() != 0o600 || src != filepath.Join(dir, KeyFileName) {
			t.Fatalf("key file: %v %v %q", info, err, src)
		}
		sealed, _ := k1.Seal([]byte("x"), nil)
		k2, _, err := LoadKeyring(dir, env)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := k2.Open(sealed, nil); err != nil {
			t.Fatalf("second start cannot open first start's value: %v", err)
		}
	})
	t.Run("env var with id", func(t *testing.T) {
		k, _, err := LoadKeyring(t.TempDir(), func(n string) string {
			if n == "OPSBOOK_MASTER_KEY" {
				return "prod-2026:" + b64
			}
			return ""
		})
		if err != nil || k.Primary() != "prod-2026" {
			t.Fatalf("%v %v", k, err)
		}
	})
	t.Run("short env key rejected", func(t *testing.T) {
		_, _, err := LoadKeyring(t.TempDir(), func(n string) string {
			if n == "OPSBOOK_MASTER_KEY" {
				return "c2hvcnQ="
			}
			return ""
		})
		if err == nil || !strings.Contains(err.Error(), "head -c32") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("key file with two keys, first is primary", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "keys")
		os.WriteFile(path, []byte("# keys\nk2 "+b64+"\nk1 "+base64.StdEncoding.EncodeToString(key(1))+"\n"), 0o600)
		k, _, err := LoadKeyring("", func(n string) string {
			if n == "OPSBOOK_MASTER_KEY_FILE" {
				return path
			}
			return ""
		})
		if err != nil || k.Primary() != "k2" || len(k.keys) != 2 {
			t.Fatalf("%v %v", k, err)
		}
	})
	t.Run("world-readable key file refused", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "keys")
		os.WriteFile(path, []byte("k1 "+b64+"\n"), 0o644)
		os.Chmod(path, 0o644)
		if _, err := ReadKeyFile(path); err == nil || !strings.Contains(err.Error(), "chmod 600") {
			t.Fatalf("err = %v", err)
		}
	})
}

// FuzzValidKeyID: the hand-written key id check accepts exactly what the
// regexp it replaced accepted (fault class: a start-up optimisation that
// widens or narrows what is valid).
func FuzzValidKeyID(f *testing.F) {
	re := regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
	for _, s := range []string{"", "k1", "prod-2026_a", strings.Repeat("a", 64), strings.Repeat("a", 65), "a b", "ключ", "a\n", "-"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		if got, want := validKeyID(id), re.MatchString(id); got != want {
			t.Fatalf("validKeyID(%q) = %v, the regexp says %v", id, got, want)
		}
	})
}
