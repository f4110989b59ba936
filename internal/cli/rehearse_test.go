package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// deployRunbook is a four-step runbook over files in $DIR: each step's
// action makes a file and its check looks at it, except that enableCheck is
// the second step's verification.
func deployRunbook(enableCheck string) string {
	return "---\nkind: runbook\ntitle: Deploy a version\nrollback: deploy-rollback.md\n" +
		"params:\n  DIR: {type: path, required: true}\n  VERSION: {type: string, default: \"2\"}\n---\n\n" +
		"# Deploy a version\n\n## Steps\n\n" +
		"### Write the version\n\n```sh {id=write}\necho \"$VERSION\" > \"$DIR/version\"\n```\n\n" +
		"```sh {verify}\ntest \"$(cat \"$DIR/version\")\" = \"$VERSION\"\n```\n\n" +
		"### Enable it\n\n```sh {id=enable}\ntouch \"$DIR/enabled\"\n```\n\n" +
		"```sh {verify}\n" + enableCheck + "\n```\n\n" +
		"### Announce\n\n```sh {id=announce}\necho \"version $VERSION is live\"\n```\n\n" +
		"```text {expect}\nversion 2 is live\n```\n\n" +
		"### Mark ready\n\n```sh {id=ready}\ntouch \"$DIR/ready\"\n```\n\n" +
		"```sh {until interval=100ms timeout=1s}\ntest -e \"$DIR/ready\"\n```\n"
}

const mutateRollback = "---\nkind: rollback\ntitle: Undo the deploy\nparams:\n  DIR: {type: path, required: true}\n---\n\n" +
	"# Undo the deploy\n\n## Rollback steps\n\n### Remove the files\n\n" +
	"```sh {id=remove}\nrm -f \"$DIR/version\" \"$DIR/enabled\" \"$DIR/ready\"\n```\n\n" +
	"```sh {verify}\n! ls \"$DIR/version\" \"$DIR/enabled\" \"$DIR/ready\" 2>/dev/null\n```\n"

func mutateWorkspace(t *testing.T, enableCheck string) (dir, target string) {
	t.Helper()
	dir, target = t.TempDir(), t.TempDir()
	writeFile(t, filepath.Join(dir, "opsbook.yaml"), "name: m\nenvironments:\n  - name: staging\n  - name: production\n    protected: true\n")
	writeFile(t, filepath.Join(dir, "deploy.md"), deployRunbook(enableCheck))
	writeFile(t, filepath.Join(dir, "deploy-rollback.md"), mutateRollback)
	return dir, target
}

// Fault class: a check that cannot fail. The second step's verification
// looks at the directory, which exists whatever the action did; --mutate
// must name it and exit 1.
func TestRehearseMutateReportsCheckThatCannotFail(t *testing.T) {
	dir, target := mutateWorkspace(t, `test -d "$DIR"`)
	code, out, errOut := runCLI(t, dir, "rehearse", "deploy.md", "--env", "staging", "--mutate", "--param", "DIR="+target)
	if code != ExitFailed {
		t.Fatalf("exit %d, want %d (a mutant survived)\nstdout:\n%s\nstderr:\n%s", code, ExitFailed, out, errOut)
	}
	want := "SURVIVED: step `enable`: its verification passed although the action did nothing"
	if !strings.Contains(out, want) {
		t.Errorf("stdout lacks %q:\n%s", want, out)
	}
	for _, id := range []string{"write", "announce", "ready"} {
		if !strings.Contains(out, "step `"+id+"` a no-op: caught") {
			t.Errorf("mutant of %s not reported as caught:\n%s", id, out)
		}
	}
	if !strings.Contains(errOut, "1 of 4 mutant(s) of deploy.md were not caught: enable survived") {
		t.Errorf("stderr: %s", errOut)
	}
}

// The same runbook with a verification that looks at what the action made:
// every mutant is caught. The rollback document restores the files between
// mutants; without it the first mutant would find the rehearsal's version
// file and survive.
func TestRehearseMutateRealChecksNoSurvivors(t *testing.T) {
	dir, target := mutateWorkspace(t, `test -e "$DIR/enabled"`)
	code, out, errOut := runCLI(t, dir, "rehearse", "deploy.md", "--env", "staging", "--mutate", "--param", "DIR="+target, "--output", "json")
	if code != ExitOK {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	rep := parseReport(t, out)
	if len(rep.Mutants) != 4 {
		t.Fatalf("mutants: %+v", rep.Mutants)
	}
	kinds := map[string]string{"write": "verify", "enable": "verify", "announce": "expect", "ready": "until"}
	for _, m := range rep.Mutants {
		if m.Result != mutantKilled || !strings.HasPrefix(m.Detail, kinds[m.Step]+" failed") {
			t.Errorf("mutant %+v, want killed by its %s", m, kinds[m.Step])
		}
	}
	// The environment is left as the last restore left it.
	if _, err := os.Stat(filepath.Join(target, "version")); !os.IsNotExist(err) {
		t.Errorf("version file after the mutants: %v", err)
	}
	// Mutants are never recorded in the workspace's run store: only the
	// rehearsal is.
	code, runs, _ := runCLI(t, dir, "runs", "--output", "json")
	var list []map[string]any
	if code != 0 || json.Unmarshal([]byte(runs), &list) != nil || len(list) != 1 || list[0]["status"] != "succeeded" {
		t.Errorf("runs in the workspace store (exit %d): %s", code, runs)
	}
}

// A rehearsal happens outside production: a protected environment is bad
// input and nothing runs.
func TestRehearseRefusesProtectedEnvironment(t *testing.T) {
	dir, target := mutateWorkspace(t, `test -e "$DIR/enabled"`)
	code, _, errOut := runCLI(t, dir, "rehearse", "deploy.md", "--env", "production", "--param", "DIR="+target)
	if code != ExitBadInput || !strings.Contains(errOut, "environment production is protected") {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if _, err := os.Stat(filepath.Join(target, "version")); !os.IsNotExist(err) {
		t.Errorf("a step ran: %v", err)
	}
}

// Fault class: an environment the mutants cannot restore. Without a
// rollback document, the rehearsal's directory is still there: the first
// step's check passes on what the rehearsal made (a survivor, rightly: it
// cannot tell), and the second mutant never reaches its step because the
// first step cannot run twice. Both are failures, and the second says why.
func TestRehearseMutateWithoutRollbackReportsUnreachedStep(t *testing.T) {
	dir, target := t.TempDir(), t.TempDir()
	writeFile(t, filepath.Join(dir, "opsbook.yaml"), "name: m\nenvironments:\n  - name: staging\n")
	writeFile(t, filepath.Join(dir, "once.md"), "---\nkind: runbook\ntitle: Once\nparams:\n  DIR: {type: path, required: true}\n---\n\n# Once\n\n## Steps\n\n"+
		"### Make the directory\n\n```sh {id=make}\nmkdir \"$DIR/d\"\n```\n\n```sh {verify}\ntest -d \"$DIR/d\"\n```\n\n"+
		"### Fill it\n\n```sh {id=fill}\ntouch \"$DIR/d/f\"\n```\n\n```sh {verify}\ntest -e \"$DIR/d/f\"\n```\n")
	code, out, errOut := runCLI(t, dir, "rehearse", "once.md", "--env", "staging", "--mutate", "--param", "DIR="+target, "-o", "json")
	if code != ExitFailed {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	rep := parseReport(t, out)
	if len(rep.Mutants) != 2 || rep.Mutants[0].Result != mutantSurvived || rep.Mutants[1].Result != mutantNoReach ||
		!strings.Contains(rep.Mutants[1].Detail, "step make failed") {
		t.Errorf("mutants: %+v", rep.Mutants)
	}
	if !strings.Contains(errOut, "2 of 2 mutant(s) of once.md were not caught: make survived, fill not reached") {
		t.Errorf("stderr: %s", errOut)
	}
}

// A step that publishes outputs: its no-op publishes what the rehearsal's
// step published, so the mutant is judged by the step's checks, not by
// the engine's "promised output not published" (which would report every
// such step as not reached). Fault class: a check that cannot fail hidden
// behind an output — `publish`'s check looks only at its own output, which
// the no-op publishes too, so it survives; `make`'s check looks at the
// file and catches its no-op.
func TestRehearseMutateStepsWithOutputs(t *testing.T) {
	dir, target := t.TempDir(), t.TempDir()
	writeFile(t, filepath.Join(dir, "opsbook.yaml"), "name: m\nenvironments:\n  - name: staging\n")
	writeFile(t, filepath.Join(dir, "out.md"), "---\nkind: runbook\ntitle: Outputs\nrollback: out-rollback.md\nparams:\n  DIR: {type: path, required: true}\n---\n\n# Outputs\n\n## Steps\n\n"+
		"### Make the file\n\n```sh {id=make outputs=FILE}\necho made > \"$DIR/f\"\necho \"FILE=$DIR/f\" >> \"$OPSBOOK_OUTPUT\"\n```\n\n```sh {verify}\ngrep -qx made \"$FILE\"\n```\n\n"+
		"### Publish a count\n\n```sh {id=publish outputs=COUNT}\nwc -l < \"$FILE\" > \"$DIR/count\"\necho \"COUNT=it's $(cat \"$DIR/count\")\" >> \"$OPSBOOK_OUTPUT\"\n```\n\n```sh {verify}\ntest -n \"$COUNT\"\n```\n")
	writeFile(t, filepath.Join(dir, "out-rollback.md"), "---\nkind: rollback\ntitle: Undo\nparams:\n  DIR: {type: path, required: true}\n---\n\n# Undo\n\n## Rollback steps\n\n### Remove\n\n```sh {id=remove}\nrm -f \"$DIR/f\" \"$DIR/count\"\n```\n\n```sh {verify}\n! test -e \"$DIR/f\"\n```\n")
	code, out, errOut := runCLI(t, dir, "rehearse", "out.md", "--env", "staging", "--mutate", "--param", "DIR="+target, "-o", "json")
	if code != ExitFailed {
		t.Fatalf("exit %d, want %d (publish survives)\n%s\n%s", code, ExitFailed, out, errOut)
	}
	rep := parseReport(t, out)
	if len(rep.Mutants) != 2 || rep.Mutants[0].Result != mutantKilled || !strings.HasPrefix(rep.Mutants[0].Detail, "verify failed") ||
		rep.Mutants[1].Result != mutantSurvived {
		t.Errorf("mutants: %+v, want make killed by its verify and publish survived", rep.Mutants)
	}
}

// parseReport reads the mutation report `rehearse --mutate -o json` prints.
func parseReport(t *testing.T, out string) mutationReport {
	t.Helper()
	var rep mutationReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	return rep
}
