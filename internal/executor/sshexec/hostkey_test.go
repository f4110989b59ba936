package sshexec

import (
	"crypto/ed25519"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/crypto/ssh"
	xknownhosts "golang.org/x/crypto/ssh/knownhosts"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func fixedKey(t *testing.T, seed byte) ssh.PublicKey {
	t.Helper()
	s := make([]byte, ed25519.SeedSize)
	s[0] = seed
	key, err := ssh.NewPublicKey(ed25519.NewKeyFromSeed(s).Public())
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// TestHostKeyErrorMessages pins the wording operators read when a key is
// refused: fingerprint, the command and the line to accept it.
func TestHostKeyErrorMessages(t *testing.T) {
	old, presented := fixedKey(t, 1), fixedKey(t, 2)
	tests := []struct {
		name string
		err  *HostKeyError
	}{
		{"unknown", &HostKeyError{Host: "db1", Addr: "10.0.0.5:2222", Key: presented, AddTo: "ops/known_hosts"}},
		{"unknown-default-port-no-workspace-file", &HostKeyError{Host: "web1", Addr: "web1.example.com:22", Key: presented}},
		{"changed", &HostKeyError{Host: "db1", Addr: "10.0.0.5:2222", Key: presented, Changed: true, AddTo: "ops/known_hosts",
			Known: []xknownhosts.KnownKey{{Key: old, Filename: "ops/known_hosts", Line: 7}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.err.Error() + "\n"
			golden := filepath.Join("testdata", "hostkey-"+tt.name+".golden")
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("message changed (go test -update to accept):\n--- got\n%s--- want\n%s", got, want)
			}
		})
	}
}
