// Package sshdtest starts real OpenSSH sshd servers on loopback ports for
// tests and benchmarks: throwaway host keys, one throwaway client key
// authorised for the current user, configuration and logs in a temp dir.
//
// Tests call Start; programs (the bench harness) call Launch and Stop.
// sshd must be installed (/usr/sbin/sshd, Debian's openssh-server;
// scripts/test.sh installs it).
package sshdtest

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/opsbook/opsbook/internal/runbook"
	"github.com/skeema/knownhosts"
	"golang.org/x/crypto/ssh"
)

// SSHDPath is where Debian installs sshd; sshd refuses to start unless
// invoked by absolute path.
const SSHDPath = "/usr/sbin/sshd"

// Server is one listening address of a running sshd. Several Servers share
// one sshd process when Launch is asked for more than one port per process.
type Server struct {
	Host        runbook.Host  // Name "hostN", Address 127.0.0.1, Port, User
	HostKey     ssh.PublicKey // the key the server presents
	HostKeyFile string        // private host key file (its .pub beside it)
	proc        *process
}

// Addr is "127.0.0.1:port".
func (s Server) Addr() string {
	return net.JoinHostPort(s.Host.Address, strconv.Itoa(s.Host.Port))
}

// KnownHostsLine is the known_hosts line that trusts this server.
func (s Server) KnownHostsLine() string {
	return knownhosts.Line([]string{s.Addr()}, s.HostKey)
}

// Cluster is a set of sshd processes started together.
type Cluster struct {
	Dir           string   // temp dir holding keys, configs and logs
	ClientKeyFile string   // private key authorised on every server
	Servers       []Server // in port order of creation
	procs         []*process
}

type process struct {
	dir       string
	ports     []int
	hostKey   string
	cmd       *exec.Cmd
	log       *syncBuffer
	exited    chan struct{}
	exitErr   error
	authKeys  string
	clientKey string
	extra     []string
	wrap      []string
}

// syncBuffer collects sshd's stderr for error messages.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Start starts n hosts, each its own sshd with its own host key, and stops
// them when the test ends. It fails the test when sshd is missing.
func Start(t testing.TB, n int) []Server {
	t.Helper()
	// SHLVL=1 makes bash skip ~/.bashrc for sshd commands: a developer's
	// heavy .bashrc (pyenv init forks ~100 processes) would otherwise cost
	// every session hundreds of milliseconds and say nothing about opsbook.
	c, err := Launch(t.TempDir(), n, Config{Extra: []string{SkipBashrc}})
	if err != nil {
		t.Fatalf("start sshd: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			for _, p := range c.procs {
				if log := p.log.String(); log != "" {
					t.Logf("sshd log (%s):\n%s", p.dir, log)
				}
			}
		}
		c.Stop()
	})
	return c.Servers
}

// ClientKey is the private key file the servers of a test authorise; every
// Server of one Start call shares it.
func ClientKey(s Server) string {
	return s.proc.clientKey
}

// SkipBashrc is an sshd_config line that keeps bash from sourcing ~/.bashrc
// for SSH commands: bash does so only as a top-level shell, SHLVL < 2 after
// its own increment.
const SkipBashrc = "SetEnv SHLVL=1"

// Config tunes Launch.
type Config struct {
	// PortsPerProcess is how many hosts one sshd serves (default 1, at
	// most 16: sshd's limit of listen sockets).
	PortsPerProcess int
	// Extra are sshd_config lines appended to the harness's own.
	Extra []string
	// Process, when set, gives sshd process i (from 0) sshd_config lines
	// of its own (after Extra) and a command it runs under: sshd's
	// command line is appended to wrap, which must exec it (unshare, for
	// a mount namespace of its own). Use one port per process.
	Process func(i int) (extra, wrap []string)
}

// Launch starts sshd processes under dir listening on n free 127.0.0.1
// ports in total, logging in the current user.
func Launch(dir string, n int, cfg Config) (*Cluster, error) {
	portsPerProcess := cfg.PortsPerProcess
	if _, err := os.Stat(SSHDPath); err != nil {
		return nil, fmt.Errorf("%s not found: install openssh-server (apt-get install openssh-server) or run scripts/test.sh", SSHDPath)
	}
	if n < 1 {
		return nil, fmt.Errorf("sshdtest: need at least one host, got %d", n)
	}
	portsPerProcess = max(1, min(portsPerProcess, 16))
	u, err := user.Current()
	if err != nil {
		return nil, fmt.Errorf("current user: %w", err)
	}
	if os.Geteuid() == 0 {
		// sshd started as root insists on its privilege separation directory.
		if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
			return nil, fmt.Errorf("create /run/sshd: %w", err)
		}
	}
	c := &Cluster{Dir: dir, ClientKeyFile: filepath.Join(dir, "client_ed25519")}
	if err := keygen(c.ClientKeyFile, "opsbook-test-client"); err != nil {
		return nil, err
	}
	clientPub, err := os.ReadFile(c.ClientKeyFile + ".pub")
	if err != nil {
		return nil, fmt.Errorf("read client key: %w", err)
	}
	authKeys := filepath.Join(dir, "authorized_keys")
	if err := os.WriteFile(authKeys, clientPub, 0o600); err != nil {
		return nil, fmt.Errorf("write authorized_keys: %w", err)
	}
	for i := 0; len(c.Servers) < n; i++ {
		ports := min(portsPerProcess, n-len(c.Servers))
		p := &process{dir: filepath.Join(dir, fmt.Sprintf("sshd%d", i)), authKeys: authKeys, clientKey: c.ClientKeyFile, extra: cfg.Extra}
		if cfg.Process != nil {
			extra, wrap := cfg.Process(i)
			p.extra = append(append([]string(nil), cfg.Extra...), extra...)
			p.wrap = wrap
		}
		if err := os.MkdirAll(p.dir, 0o700); err != nil {
			c.Stop()
			return nil, fmt.Errorf("create sshd dir: %w", err)
		}
		p.hostKey = filepath.Join(p.dir, "ssh_host_ed25519_key")
		if err := keygen(p.hostKey, fmt.Sprintf("sshd%d", i)); err != nil {
			c.Stop()
			return nil, err
		}
		if err := p.start(ports); err != nil {
			c.Stop()
			return nil, err
		}
		c.procs = append(c.procs, p)
		key, err := readPublicKey(p.hostKey + ".pub")
		if err != nil {
			c.Stop()
			return nil, err
		}
		for _, port := range p.ports {
			c.Servers = append(c.Servers, Server{
				Host: runbook.Host{
					Name:    fmt.Sprintf("host%d", len(c.Servers)+1),
					Address: "127.0.0.1",
					Port:    port,
					User:    u.Username,
				},
				HostKey:     key,
				HostKeyFile: p.hostKey,
				proc:        p,
			})
		}
	}
	return c, nil
}

// Stop terminates every sshd of the cluster and the sessions they started.
func (c *Cluster) Stop() {
	for _, p := range c.procs {
		p.stop()
	}
}

// WriteKnownHosts writes a known_hosts file trusting the given servers and
// returns its path.
func WriteKnownHosts(path string, servers ...Server) error {
	var b strings.Builder
	for _, s := range servers {
		b.WriteString(s.KnownHostsLine())
		b.WriteByte('\n')
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		return fmt.Errorf("write known_hosts: %w", err)
	}
	return nil
}

// KnownHosts writes a known_hosts file trusting servers into a test temp
// dir and returns its path.
func KnownHosts(t testing.TB, servers ...Server) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "known_hosts")
	if err := WriteKnownHosts(path, servers...); err != nil {
		t.Fatal(err)
	}
	return path
}

// ChangeHostKey gives the server's sshd a new host key and restarts it on
// the same ports, as a reinstalled (or impersonated) host would look. It
// returns the server with its new key; other Servers sharing the process
// change too.
func ChangeHostKey(t testing.TB, s Server) Server {
	t.Helper()
	p := s.proc
	p.stop()
	for _, f := range []string{p.hostKey, p.hostKey + ".pub"} {
		if err := os.Remove(f); err != nil {
			t.Fatalf("remove old host key: %v", err)
		}
	}
	if err := keygen(p.hostKey, "changed"); err != nil {
		t.Fatal(err)
	}
	ports := p.ports
	p.ports = nil
	if err := p.listen(ports); err != nil {
		t.Fatal(err)
	}
	key, err := readPublicKey(p.hostKey + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	s.HostKey = key
	return s
}

// Run executes a command on the server with the system's ssh client, for
// tests that inspect the server side (pgrep) independently of the code
// under test.
func Run(s Server, command string) (string, error) {
	cmd := exec.Command("ssh",
		"-i", ClientKey(s),
		"-p", strconv.Itoa(s.Host.Port),
		"-o", "BatchMode=yes",
		"-o", "StrictHostKeyChecking=no",
		"-o", "UserKnownHostsFile=/dev/null",
		"-o", "LogLevel=ERROR",
		s.Host.User+"@"+s.Host.Address, command)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("ssh %s %q: %w: %s", s.Addr(), command, err, out)
	}
	return string(out), nil
}

func (p *process) start(nPorts int) error {
	// A free port found by listening on :0 can be taken by someone else
	// before sshd binds it; try a few times.
	var lastErr error
	for range 5 {
		ports := make([]int, 0, nPorts)
		for range nPorts {
			port, err := freePort()
			if err != nil {
				return err
			}
			ports = append(ports, port)
		}
		if lastErr = p.listen(ports); lastErr == nil {
			return nil
		}
	}
	return lastErr
}

func (p *process) listen(ports []int) error {
	config := filepath.Join(p.dir, "sshd_config")
	var b strings.Builder
	for _, port := range ports {
		fmt.Fprintf(&b, "ListenAddress 127.0.0.1:%d\n", port)
	}
	fmt.Fprintf(&b, `HostKey %s
AuthorizedKeysFile %s
PidFile %s
UsePAM no
StrictModes no
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
MaxStartups 2000:30:4000
MaxSessions 200
MaxAuthTries 10
LoginGraceTime 30
LogLevel ERROR
PrintMotd no
Banner none
`, p.hostKey, p.authKeys, filepath.Join(p.dir, "sshd.pid"))
	for _, line := range p.extra {
		b.WriteString(line + "\n")
	}
	if err := os.WriteFile(config, []byte(b.String()), 0o600); err != nil {
		return fmt.Errorf("write sshd_config: %w", err)
	}
	p.log = &syncBuffer{}
	argv := append(append([]string(nil), p.wrap...), SSHDPath, "-D", "-e", "-f", config)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout = p.log
	cmd.Stderr = p.log
	// Own process group so Stop can also end the session processes sshd
	// forked (they stay in sshd's group).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// Connection children inherit the log pipe; do not let one that
	// outlives the listener block Wait.
	cmd.WaitDelay = 2 * time.Second
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start sshd: %w", err)
	}
	p.cmd = cmd
	p.exited = make(chan struct{})
	go func() {
		p.exitErr = cmd.Wait()
		close(p.exited)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for _, port := range ports {
		if err := p.waitReady(port, deadline); err != nil {
			p.stop()
			return err
		}
	}
	p.ports = ports
	return nil
}

// waitReady waits until the port answers with an SSH banner.
func (p *process) waitReady(port int, deadline time.Time) error {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	for {
		select {
		case <-p.exited:
			return fmt.Errorf("sshd exited (%v): %s", p.exitErr, strings.TrimSpace(p.log.String()))
		default:
		}
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			_ = conn.SetReadDeadline(time.Now().Add(2 * time.Second))
			line, rerr := bufio.NewReader(conn).ReadString('\n')
			conn.Close()
			if rerr == nil && strings.HasPrefix(line, "SSH-2.0-") {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("sshd on %s not ready after 10s: %s", addr, strings.TrimSpace(p.log.String()))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (p *process) stop() {
	if p.cmd == nil || p.cmd.Process == nil {
		return
	}
	// Each connection's sshd child runs in its own session, out of reach
	// of a group kill, and would keep serving a client that never closed
	// (and its commands) after the listener is gone: kill them first.
	for _, pid := range descendants(p.cmd.Process.Pid) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.exited
	}
	p.cmd = nil
}

// descendants lists the processes below pid, read from /proc.
func descendants(pid int) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	children := map[int][]int{}
	for _, e := range entries {
		child, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// Fields after the command name, which may hold spaces: state ppid …
		s := string(stat)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(f) < 2 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		children[ppid] = append(children[ppid], child)
	}
	var out []int
	queue := []int{pid}
	for len(queue) > 0 {
		next := queue[0]
		queue = queue[1:]
		for _, c := range children[next] {
			out = append(out, c)
			queue = append(queue, c)
		}
	}
	return out
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func keygen(path, comment string) error {
	out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", path).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ssh-keygen %s: %w: %s", path, err, out)
	}
	return nil
}

func readPublicKey(path string) (ssh.PublicKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read host key: %w", err)
	}
	key, _, _, _, err := ssh.ParseAuthorizedKey(data)
	if err != nil {
		return nil, fmt.Errorf("parse host key %s: %w", path, err)
	}
	return key, nil
}
