package gates

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opsbook/opsbook/internal/lifecycle"
	"github.com/opsbook/opsbook/internal/workspace"
)

// signedRepo is a git repository holding a workspace with one task, whose
// opsbook.yaml lists bob and carol as signers; keys holds each person's
// SSH key pair (private key path; the .pub beside it).
type signedRepo struct {
	t    *testing.T
	dir  string
	task string
	keys map[string]string
}

func newSignedRepo(t *testing.T) *signedRepo {
	t.Helper()
	for _, tool := range []string{"git", "ssh-keygen"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s is not installed", tool)
			}
			t.Skipf("%s is not installed", tool)
		}
	}
	t.Setenv("GIT_CONFIG_GLOBAL", "/dev/null")
	t.Setenv("GIT_CONFIG_NOSYSTEM", "1")
	r := &signedRepo{t: t, dir: t.TempDir(), task: "2026-03-01-postgres-upgrade-v12-to-v15", keys: map[string]string{}}
	keyDir := t.TempDir()
	for _, who := range []string{"bob", "carol", "mallory"} {
		p := filepath.Join(keyDir, who)
		if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", who, "-f", p).CombinedOutput(); err != nil {
			t.Fatalf("ssh-keygen: %v %s", err, out)
		}
		r.keys[who] = p
	}
	pub := func(who string) string {
		b, err := os.ReadFile(r.keys[who] + ".pub")
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(b))
	}
	cfg := "name: signed\nenvironments:\n  - name: staging\n  - name: production\n    protected: true\n    reviewers: 2\n    rehearsal: false\n" +
		"signers:\n  - name: bob@example.com\n    key: " + pub("bob") + "\n  - name: carol@example.com\n    key: " + pub("carol") + "\n"
	r.write("opsbook.yaml", cfg)
	r.write("ops/active/"+r.task+"/"+r.task+"-runbook.md", "---\nkind: runbook\ntitle: Upgrade\n---\n\n## Steps\n\n### One\n\n```sh {id=one}\necho one\n```\n")
	r.git("init", "-q")
	r.append(lifecycle.Record{Type: lifecycle.Created, Actor: "ann@example.com"})
	r.commit("", "the task")
	return r
}

func (r *signedRepo) write(rel, content string) {
	p := filepath.Join(r.dir, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		r.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		r.t.Fatal(err)
	}
}

func (r *signedRepo) git(args ...string) {
	r.t.Helper()
	cmd := exec.Command("git", append([]string{"-c", "user.name=t", "-c", "user.email=t@example.com"}, args...)...)
	cmd.Dir = r.dir
	if out, err := cmd.CombinedOutput(); err != nil {
		r.t.Fatalf("git %v: %v %s", args, err, out)
	}
}

func (r *signedRepo) recordPath() string {
	return filepath.Join(r.dir, "ops/active", r.task, lifecycle.FileName)
}

func (r *signedRepo) append(rec lifecycle.Record) {
	r.t.Helper()
	if rec.Time.IsZero() {
		rec.Time = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	}
	if err := lifecycle.Append(r.recordPath(), rec); err != nil {
		r.t.Fatal(err)
	}
}

// commit commits everything, signed with signer's key ("" unsigned).
func (r *signedRepo) commit(signer, msg string) {
	r.t.Helper()
	r.git("add", "-A")
	if signer == "" {
		r.git("commit", "-q", "-m", msg)
		return
	}
	r.git("-c", "gpg.format=ssh", "-c", "user.signingkey="+r.keys[signer]+".pub", "commit", "-q", "-S", "-m", msg)
}

func (r *signedRepo) load() *Task {
	r.t.Helper()
	ws, err := workspace.Load(r.dir)
	if err != nil {
		r.t.Fatal(err)
	}
	tk, err := Load(ws, r.task)
	if err != nil {
		r.t.Fatal(err)
	}
	if tk.SignedErr != nil {
		r.t.Fatalf("signed commits not checked: %v", tk.SignedErr)
	}
	return tk
}

func (r *signedRepo) reviewsGate(o Options) (Gate, *Report) {
	r.t.Helper()
	rep, err := r.load().Evaluate("production", time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC), o)
	if err != nil {
		r.t.Fatal(err)
	}
	return gateOf(r.t, rep, GateReviews), rep
}

// TestSignedReviews: with signers: in opsbook.yaml, a review in
// lifecycle.jsonl is verified when the commit that added its line is
// signed with the key listed for the person it names, and in a protected
// environment only verified reviews count. Faults: a commit signed with a
// key nobody listed, a listed key vouching for another person's name, an
// unsigned commit, a line not yet committed, and a signed line edited
// afterwards in an unsigned commit.
func TestSignedReviews(t *testing.T) {
	r := newSignedRepo(t)
	snap := r.load().Snapshot
	review := func(actor string) lifecycle.Record {
		return lifecycle.Record{Type: lifecycle.Review, Actor: actor, Verdict: lifecycle.Approve, Snapshot: snap, Note: "ok"}
	}
	r.append(review("bob@example.com"))
	r.commit("bob", "bob approves")
	r.append(review("carol@example.com"))
	r.commit("mallory", "mallory approves as carol, signed with her own key")
	r.append(review("carol@example.com"))
	r.commit("bob", "bob's key vouches for carol")
	r.append(review("dave@example.com"))
	r.commit("", "unsigned")
	r.append(review("carol@example.com")) // not committed

	g, rep := r.reviewsGate(Options{})
	if g.Met || !strings.Contains(g.Detail, "1 of 2") || !strings.Contains(g.Detail, "(bob@example.com)") {
		t.Fatalf("one signed review among forgeries: %+v, want 1 of 2 (bob@example.com)", g)
	}
	if rep.Unverified == nil || len(rep.Unverified.Approvers) != 2 { // carol@ (latest line) and dave@
		t.Errorf("unverified approvers: %+v", rep.Unverified)
	}
	if a := rep.Reviews.Approvers[0]; a.Data["verified"] != "ssh" || !strings.HasPrefix(a.Data["signer"], "SHA256:") {
		t.Errorf("bob's review is not marked as SSH-verified: %+v", a.Data)
	}
	// Staging is not protected: every review counts there, signed or not.
	rep2, err := r.load().Evaluate("staging", time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep2.Reviews.Approvers) != 3 {
		t.Errorf("staging approvers: %+v, want bob, carol and dave", rep2.Reviews.Approvers)
	}

	// A server's verified review counts beside the signed ones.
	server := verified(approve("erin"))
	server.Records[0].Snapshot = snap
	if g, _ := r.reviewsGate(Options{Verified: server}); !g.Met {
		t.Errorf("bob signed and erin on the server: %+v, want met", g)
	}

	// Bob on the server as bob, and signed as bob@example.com: one person.
	server = verified(approve("bob"))
	server.Records[0].Snapshot = snap
	if g, _ := r.reviewsGate(Options{Verified: server}); g.Met {
		t.Errorf("bob on the server and bob@example.com signed counted as two: %+v", g)
	}

	// Carol signs her own line: two verified reviewers.
	r.commit("carol", "carol approves")
	if g, _ := r.reviewsGate(Options{}); !g.Met || !strings.Contains(g.Detail, "2 of 2") {
		t.Fatalf("bob and carol signed: %+v, want met", g)
	}

	// Bob's signed line edited in an unsigned commit is no longer his.
	b, err := os.ReadFile(r.recordPath())
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(b), "\n")
	var rec map[string]any
	if err := json.Unmarshal([]byte(lines[1]), &rec); err != nil {
		t.Fatal(err)
	}
	rec["note"] = "ok, and more"
	edited, _ := json.Marshal(rec)
	lines[1] = string(edited)
	r.write(strings.TrimPrefix(r.recordPath(), r.dir+"/"), strings.Join(lines, "\n"))
	r.commit("", "edit bob's line")
	if g, _ := r.reviewsGate(Options{}); g.Met || !strings.Contains(g.Detail, "1 of 2") {
		t.Errorf("after bob's line was edited unsigned: %+v, want 1 of 2 (carol)", g)
	}
}

// TestSignedReviewsWithoutGit: a workspace with signers: that is not a git
// repository verifies nothing, and says why.
func TestSignedReviewsWithoutGit(t *testing.T) {
	r := newSignedRepo(t)
	if err := os.RemoveAll(filepath.Join(r.dir, ".git")); err != nil {
		t.Fatal(err)
	}
	r.append(lifecycle.Record{Type: lifecycle.Review, Actor: "bob@example.com", Verdict: lifecycle.Approve, Snapshot: "x"})
	ws, err := workspace.Load(r.dir)
	if err != nil {
		t.Fatal(err)
	}
	tk, err := Load(ws, r.task)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := tk.Evaluate("production", time.Now(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if g := gateOf(t, rep, GateReviews); g.Met || !strings.Contains(g.Detail, "signed commits could not be checked") {
		t.Errorf("no repository: %+v", g)
	}
}
