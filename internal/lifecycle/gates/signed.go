package gates

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/opsbook/opsbook/internal/lifecycle"
)

// Reviews and ticks in lifecycle.jsonl name whoever git's user.email
// claims. When opsbook.yaml lists signers (name: the user.email, key: an
// SSH public key), a record counts as verified if the commit that added
// its line — as `git blame` finds it in the workspace's repository — is
// signed with that person's key: git verifies the signature against an
// allowed-signers file made from signers: alone, and the principal it
// finds must be the record's actor.

// signedRecords returns the Review, Check and Uncheck records of the task
// that signed commits vouch for, marked Data["verified"] = "ssh" and
// Data["signer"] = the key's fingerprint. A workspace without signers
// returns nil, nil; git's failures are errors (the records stay
// unverified).
func (t *Task) signedRecords() ([]lifecycle.Record, error) {
	signers := t.ws.Config.Signers
	if len(signers) == 0 {
		return nil, nil
	}
	var candidates []lifecycle.Record
	for _, r := range t.Records {
		if (r.Type == lifecycle.Review || r.Type == lifecycle.Check || r.Type == lifecycle.Uncheck) && r.Line > 0 {
			candidates = append(candidates, r)
		}
	}
	if len(candidates) == 0 {
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	commits, err := blame(ctx, t.Dir, lifecycle.FileName)
	if err != nil {
		return nil, err
	}
	allowed, err := os.CreateTemp("", "opsbook-allowed-signers-*")
	if err != nil {
		return nil, err
	}
	defer os.Remove(allowed.Name())
	for _, s := range signers {
		fmt.Fprintf(allowed, "%s namespaces=\"git\" %s\n", s.Name, s.Key)
	}
	if err := allowed.Close(); err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var shas []string
	for _, sha := range commits {
		if !seen[sha] && strings.Trim(sha, "0") != "" { // 000…: not committed yet
			seen[sha] = true
			shas = append(shas, sha)
		}
	}
	principals, err := verifyCommits(ctx, t.Dir, allowed.Name(), shas)
	if err != nil {
		return nil, err
	}
	var out []lifecycle.Record
	for _, r := range candidates {
		sig, ok := principals[commits[r.Line]]
		if !ok || sig.principal != r.Actor {
			continue
		}
		r.Data = maps.Clone(r.Data)
		if r.Data == nil {
			r.Data = map[string]string{}
		}
		r.Data["verified"], r.Data["signer"] = "ssh", sig.key
		out = append(out, r)
	}
	return out, nil
}

var blameHeader = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^([0-9a-f]{40,64}) [0-9]+ ([0-9]+)`) })

// blame maps each line of file (in dir) to the commit that added it.
func blame(ctx context.Context, dir, file string) (map[int]string, error) {
	out, err := git(ctx, dir, "blame", "--porcelain", "--", file)
	if err != nil {
		return nil, err
	}
	lines := map[int]string{}
	for _, l := range strings.Split(string(out), "\n") {
		if m := blameHeader().FindStringSubmatch(l); m != nil {
			n, _ := strconv.Atoi(m[2])
			lines[n] = m[1]
		}
	}
	return lines, nil
}

type signature struct{ principal, key string }

// verifyCommits returns the commits among shas whose signature git accepts
// against the allowed-signers file (%G? = G), with the principal found.
func verifyCommits(ctx context.Context, dir, allowed string, shas []string) (map[string]signature, error) {
	out := map[string]signature{}
	if len(shas) == 0 {
		return out, nil
	}
	args := []string{"-c", "gpg.ssh.allowedSignersFile=" + allowed, "-c", "gpg.ssh.program=ssh-keygen", "-c", "gpg.ssh.revocationFile=",
		"log", "--no-walk=unsorted", "--format=%H%x00%G?%x00%GS%x00%GK"}
	b, err := git(ctx, dir, append(args, shas...)...)
	if err != nil {
		return nil, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Split(l, "\x00")
		if len(f) == 4 && f[1] == "G" && f[2] != "" {
			out[f[0]] = signature{principal: f[2], key: f[3]}
		}
	}
	return out, nil
}

func git(ctx context.Context, dir string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("git %s in %s: %v: %s", args[len(args)-1], filepath.Base(dir), err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}
