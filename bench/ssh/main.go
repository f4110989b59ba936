// Command ssh benchmarks running one step, `true`, on many loopback SSH
// hosts with opsbook (fanout + sshexec), parallel-ssh (Debian's pssh) and
// ansible (`ansible all -m shell -a true`), at the same parallelism, and
// prints wall time and peak memory for each.
//
//	go run ./bench/ssh -hosts 50,200 -parallel 50 -reps 3
//
// The hosts are ports of real sshd processes started by sshdtest (sshd
// listens on at most 16 ports, so 200 hosts are 13 processes); every tool
// sees distinct 127.0.0.1:port entries, verifies host keys against the same
// known_hosts and logs in with the same key. Each tool runs as a child
// process, so every figure includes process start-up. Memory is reported two
// ways: the largest single process (getrusage maxrss, as /usr/bin/time -v
// reports it) and the peak sum of RSS over the tool's whole process tree
// (sampled from /proc every 20ms), which counts pssh's ssh children and
// ansible's forks.
//
// Needs sshd, parallel-ssh and ansible installed (apt-get install
// openssh-server pssh ansible-core); a missing tool is skipped with a note.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/opsbook/opsbook/internal/executor"
	"github.com/opsbook/opsbook/internal/executor/sshexec"
	"github.com/opsbook/opsbook/internal/executor/sshexec/sshdtest"
	"github.com/opsbook/opsbook/internal/fanout"
	"github.com/opsbook/opsbook/internal/runbook"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "worker" {
		if err := worker(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "worker:", err)
			os.Exit(1)
		}
		return
	}
	hostsFlag := flag.String("hosts", "50,200", "comma-separated host counts")
	parallelFlag := flag.Int("parallel", 50, "hosts at once, for every tool")
	reps := flag.Int("reps", 3, "runs per tool and host count; the median wall time is reported")
	toolsFlag := flag.String("tools", "opsbook,pssh,ansible", "tools to run")
	skipRC := flag.Bool("skip-bashrc", false, "make bash skip ~/.bashrc in SSH sessions (sshd SetEnv SHLVL=1), so a heavy .bashrc (pyenv init) does not dominate every tool's figures")
	flag.Parse()
	var extra []string
	if *skipRC {
		extra = append(extra, sshdtest.SkipBashrc)
	}
	if err := bench(*hostsFlag, *parallelFlag, *reps, strings.Split(*toolsFlag, ","), extra); err != nil {
		fmt.Fprintln(os.Stderr, "bench/ssh:", err)
		os.Exit(1)
	}
}

type tool struct {
	name string
	cmd  func(env *benchEnv, n, parallel int) *exec.Cmd
	bin  string // required program
}

type benchEnv struct {
	dir        string
	servers    []sshdtest.Server
	key        string
	knownHosts string
	self       string
}

func bench(hostsList string, parallel, reps int, toolNames []string, sshdConfig []string) error {
	var counts []int
	for _, s := range strings.Split(hostsList, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			return fmt.Errorf("-hosts %q: want counts like 50,200", hostsList)
		}
		counts = append(counts, n)
	}
	dir, err := os.MkdirTemp("", "opsbook-bench-ssh-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	self, err := os.Executable()
	if err != nil {
		return err
	}
	cluster, err := sshdtest.Launch(dir, slices.Max(counts), sshdtest.Config{PortsPerProcess: 16, Extra: sshdConfig})
	if err != nil {
		return err
	}
	defer cluster.Stop()
	env := &benchEnv{dir: dir, servers: cluster.Servers, key: cluster.ClientKeyFile, knownHosts: filepath.Join(dir, "known_hosts"), self: self}
	if err := sshdtest.WriteKnownHosts(env.knownHosts, cluster.Servers...); err != nil {
		return err
	}
	all := map[string]tool{
		"opsbook": {name: "opsbook", cmd: opsbookCmd},
		"pssh":    {name: "parallel-ssh", cmd: psshCmd, bin: "parallel-ssh"},
		"ansible": {name: "ansible", cmd: ansibleCmd, bin: "ansible"},
	}
	fmt.Printf("%d sshd processes, %d loopback hosts, parallelism %d, %d run(s) each, %d CPU(s), extra sshd config %q\n\n",
		(slices.Max(counts)+15)/16, slices.Max(counts), parallel, reps, numCPU(), sshdConfig)
	fmt.Printf("%-6s %-13s %10s %10s %14s %16s\n", "hosts", "tool", "wall(med)", "wall(min)", "maxrss/proc", "peak tree RSS")
	for _, n := range counts {
		for _, name := range toolNames {
			t, ok := all[strings.TrimSpace(name)]
			if !ok {
				return fmt.Errorf("unknown tool %q (opsbook, pssh, ansible)", name)
			}
			if t.bin != "" {
				if _, err := exec.LookPath(t.bin); err != nil {
					fmt.Printf("%-6d %-13s skipped: %s not installed\n", n, t.name, t.bin)
					continue
				}
			}
			var walls []time.Duration
			var maxRSS, treeRSS int64
			for range reps {
				m, err := measure(t.cmd(env, n, parallel))
				if err != nil {
					return fmt.Errorf("%s on %d hosts: %w", t.name, n, err)
				}
				walls = append(walls, m.wall)
				maxRSS, treeRSS = max(maxRSS, m.maxRSS), max(treeRSS, m.treeRSS)
			}
			slices.Sort(walls)
			fmt.Printf("%-6d %-13s %9.3fs %9.3fs %11.1f MB %13.1f MB\n", n, t.name,
				walls[len(walls)/2].Seconds(), walls[0].Seconds(), mb(maxRSS), mb(treeRSS))
		}
	}
	return nil
}

func mb(b int64) float64 { return float64(b) / (1 << 20) }

func numCPU() int {
	n := 0
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if strings.HasPrefix(s.Text(), "processor") {
			n++
		}
	}
	return n
}

type measurement struct {
	wall            time.Duration
	maxRSS, treeRSS int64 // bytes
}

func measure(cmd *exec.Cmd) (measurement, error) {
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return measurement{}, err
	}
	stop := make(chan struct{})
	peak := make(chan int64, 1)
	go func() { peak <- sampleTree(cmd.Process.Pid, stop) }()
	err := cmd.Wait()
	wall := time.Since(start)
	close(stop)
	tree := <-peak
	if err != nil {
		return measurement{}, fmt.Errorf("%v: %s", err, lastLines(out.String(), 15))
	}
	ru, _ := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	m := measurement{wall: wall, treeRSS: tree}
	if ru != nil {
		// wait4 reports the largest of the child and its reaped
		// descendants (pssh's ssh processes, ansible's forks), in KiB.
		m.maxRSS = ru.Maxrss * 1024
	}
	return m, nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// opsbookCmd re-runs this program as the worker: fanout + sshexec in one
// process, as `opsbook run` would.
func opsbookCmd(env *benchEnv, n, parallel int) *exec.Cmd {
	return exec.Command(env.self, "worker", env.key, env.knownHosts, strconv.Itoa(parallel), hostList(env.servers[:n]))
}

func hostList(servers []sshdtest.Server) string {
	var parts []string
	for _, s := range servers {
		parts = append(parts, s.Host.User+"@"+s.Addr())
	}
	return strings.Join(parts, ",")
}

func worker(args []string) error {
	if len(args) != 4 {
		return errors.New("usage: worker KEY KNOWN_HOSTS PARALLEL user@host:port,...")
	}
	parallel, err := strconv.Atoi(args[2])
	if err != nil {
		return err
	}
	var hosts []runbook.Host
	for i, h := range strings.Split(args[3], ",") {
		user, addr, _ := strings.Cut(h, "@")
		host, port, _ := strings.Cut(addr, ":")
		p, _ := strconv.Atoi(port)
		hosts = append(hosts, runbook.Host{Name: fmt.Sprintf("host%d", i+1), Address: host, Port: p, User: user})
	}
	pool, err := sshexec.NewPool(sshexec.Options{
		IdentityFiles:      []string{args[0]},
		KnownHostsFiles:    []string{args[1]},
		SkipUserKnownHosts: true,
		ConnectTimeout:     60 * time.Second,
	})
	if err != nil {
		return err
	}
	defer pool.Close()
	results := fanout.Run(context.Background(), hosts, fanout.Policy{Parallel: parallel, MaxFailures: "100%"}, func(ctx context.Context, h runbook.Host) error {
		ex, err := pool.Get(ctx, h)
		if err != nil {
			return err
		}
		res, err := ex.Run(ctx, executor.Command{Script: "true"})
		if err != nil {
			return err
		}
		if !res.Succeeded() {
			return fmt.Errorf("exit status %d", res.ExitCode)
		}
		return ex.Close()
	})
	for _, r := range results {
		if r.Err != nil {
			return fmt.Errorf("%s: %w", r.Host.Name, r.Err)
		}
	}
	return nil
}

func psshCmd(env *benchEnv, n, parallel int) *exec.Cmd {
	hostsFile := filepath.Join(env.dir, fmt.Sprintf("pssh-hosts-%d", n))
	var b strings.Builder
	for _, s := range env.servers[:n] {
		fmt.Fprintf(&b, "%s@%s:%d\n", s.Host.User, s.Host.Address, s.Host.Port)
	}
	_ = os.WriteFile(hostsFile, []byte(b.String()), 0o600)
	return exec.Command("parallel-ssh", "-h", hostsFile, "-p", strconv.Itoa(parallel), "-t", "120",
		"-O", "UserKnownHostsFile="+env.knownHosts,
		"-O", "StrictHostKeyChecking=yes",
		"-O", "IdentityFile="+env.key,
		"-O", "IdentitiesOnly=yes",
		"-O", "BatchMode=yes",
		"true")
}

func ansibleCmd(env *benchEnv, n, parallel int) *exec.Cmd {
	adir := filepath.Join(env.dir, "ansible")
	_ = os.MkdirAll(filepath.Join(adir, "cp"), 0o700)
	inv := filepath.Join(adir, fmt.Sprintf("inventory-%d.ini", n))
	var b strings.Builder
	b.WriteString("[all]\n")
	for _, s := range env.servers[:n] {
		fmt.Fprintf(&b, "%s ansible_host=%s ansible_port=%d ansible_user=%s\n", s.Host.Name, s.Host.Address, s.Host.Port, s.Host.User)
	}
	fmt.Fprintf(&b, "[all:vars]\nansible_python_interpreter=/usr/bin/python3\nansible_ssh_private_key_file=%s\n", env.key)
	_ = os.WriteFile(inv, []byte(b.String()), 0o600)
	cmd := exec.Command("ansible", "all", "-i", inv, "-m", "shell", "-a", "true", "-f", strconv.Itoa(parallel), "-o")
	cmd.Env = append(os.Environ(),
		"HOME="+adir,
		"ANSIBLE_HOST_KEY_CHECKING=True",
		"ANSIBLE_SSH_ARGS=-o UserKnownHostsFile="+env.knownHosts+" -o StrictHostKeyChecking=yes -o IdentitiesOnly=yes -o ControlMaster=no",
		"ANSIBLE_SSH_CONTROL_PATH_DIR="+filepath.Join(adir, "cp"),
		// Pipelining is ansible's fastest usual setting; no ControlMaster
		// so that, like the others, it makes one fresh connection per host
		// in every repetition.
		"ANSIBLE_PIPELINING=True",
		"ANSIBLE_LOCAL_TEMP="+filepath.Join(adir, "tmp"),
		"ANSIBLE_NOCOLOR=1",
	)
	return cmd
}
