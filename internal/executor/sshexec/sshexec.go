// Package sshexec runs step commands on inventory hosts over SSH, with the
// same semantics as the local executor: exit status, a timeout or
// cancellation that kills the remote process group, streamed stdout and
// stderr, parameters as environment variables, $OPSBOOK_OUTPUT outputs.
//
// Use a Pool for a run: it dials each host once, on first use, and hands out
// the same *Executor (one connection, one session per command, safe for
// concurrent Run calls) to every later step:
//
//	pool, err := sshexec.NewPool(sshexec.Options{
//		KnownHostsFiles: []string{filepath.Join(ws.Root, env.KnownHosts)}, // the workspace's file first
//		ResolveHost:     env.Host,                                         // for bastions
//	})
//	defer pool.Close()
//	results := fanout.Run(ctx, hosts, policy, func(ctx context.Context, h runbook.Host) error {
//		ex, err := pool.Get(ctx, h)
//		if err != nil {
//			return err // unreachable host, refused host key, failed login
//		}
//		res, err := ex.Run(ctx, cmd)
//		...
//	})
//
// Host keys are always verified against known_hosts (the workspace's files
// and ~/.ssh/known_hosts); an unknown or changed key is a *HostKeyError whose
// message shows the fingerprint and the line to add.
//
// How a command runs remotely: the SSH command line is fixed ("exec sh
// -s"); stdin carries a generated wrapper that makes a private temp dir
// (mktemp -d, umask 077) for $OPSBOOK_OUTPUT, exports one variable per line
// with the value in single quotes, and starts the interpreter (with
// executor.ShellOptions: sh -e, bash -e -o pipefail) on the script,
// which it reads from a quoted here-document on fd 3. No value ever appears
// on the remote command line (visible in ps) or on disk, none is
// interpreted by a shell, and sshd's AcceptEnv is not needed. The
// interpreter runs under setsid, in its own process group, whose id the
// wrapper records; on timeout or cancellation a second session kills the
// group (TERM, then KILL after the grace period). When the command wrote
// outputs, the wrapper keeps its temp dir and ends itself with SIGUSR2,
// and a last session reads the outputs and removes the dir; otherwise one
// session is all a command costs.
//
// Differences from the local executor: a command killed by a signal on its
// own (not by opsbook) reports the shell's 128+N status, and $0 is
// /dev/fd/3 rather than a file path.
package sshexec

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/opsbook/opsbook/internal/executor"
	"github.com/opsbook/opsbook/internal/runbook"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

// Options configure how hosts are reached. The zero value uses the local
// user name, ~/.ssh's default keys, $SSH_AUTH_SOCK and ~/.ssh/known_hosts.
type Options struct {
	// User logs in when the host names none; "" means the local user.
	User string
	// IdentityFiles are private keys (unencrypted; load protected ones in
	// ssh-agent). Empty means ~/.ssh/id_ed25519, id_ecdsa and id_rsa, those
	// that exist.
	IdentityFiles []string
	// AgentSocket is the ssh-agent socket; "" means $SSH_AUTH_SOCK.
	AgentSocket string
	// KnownHostsFiles are the workspace's known_hosts files; the first is
	// where error messages suggest adding keys. Missing files count as empty.
	KnownHostsFiles []string
	// SkipUserKnownHosts leaves ~/.ssh/known_hosts out (hermetic tests, CI).
	SkipUserKnownHosts bool
	// ResolveHost finds a bastion named by Host.Bastion.
	ResolveHost func(name string) (runbook.Host, bool)
	// ConnectTimeout bounds TCP connect plus SSH handshake and login, per
	// hop. Default 10s.
	ConnectTimeout time.Duration
	// KeepAlive is the interval of keepalive requests; a connection that
	// misses two is closed, failing its running commands. Default 15s;
	// negative disables.
	KeepAlive time.Duration
	// KillGrace is how long a timed-out command's process group has between
	// SIGTERM and SIGKILL. Default 5s.
	KillGrace time.Duration
}

func (o Options) withDefaults() Options {
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = 10 * time.Second
	}
	if o.KeepAlive == 0 {
		o.KeepAlive = 15 * time.Second
	}
	if o.KillGrace <= 0 {
		o.KillGrace = 5 * time.Second
	}
	return o
}

// Pool dials hosts on demand and keeps one connection per host for reuse.
// It is safe for concurrent use.
type Pool struct {
	opts    Options
	auth    []ssh.AuthMethod
	keys    *hostKeys
	closeFn func()

	mu    sync.Mutex
	conns map[string]*poolEntry
}

type poolEntry struct {
	ready chan struct{}
	ex    *Executor
	err   error
}

// NewPool loads credentials and known_hosts once for all hosts.
func NewPool(opts Options) (*Pool, error) {
	opts = opts.withDefaults()
	keys, err := loadHostKeys(opts.KnownHostsFiles, opts.SkipUserKnownHosts)
	if err != nil {
		return nil, err
	}
	auth, closeAgent, err := authMethods(opts)
	if err != nil {
		return nil, err
	}
	return &Pool{opts: opts, auth: auth, keys: keys, closeFn: closeAgent, conns: map[string]*poolEntry{}}, nil
}

// Dial connects to one host with its own pool; closing the Executor closes
// the connection and any bastion connection it went through.
func Dial(ctx context.Context, host runbook.Host, opts Options) (*Executor, error) {
	p, err := NewPool(opts)
	if err != nil {
		return nil, err
	}
	ex, err := p.Get(ctx, host)
	if err != nil {
		p.Close()
		return nil, err
	}
	ex.onClose = p.Close
	return ex, nil
}

// Get returns the executor for host, dialling it (and its bastion chain)
// the first time. Concurrent callers for the same host share one dial. A
// failed dial is not cached: the next Get tries again.
func (p *Pool) Get(ctx context.Context, host runbook.Host) (*Executor, error) {
	return p.get(ctx, host, nil)
}

// Executor is Get typed as the interface, for engine.Config.Remote: it never
// returns a non-nil interface holding a nil *Executor.
func (p *Pool) Executor(ctx context.Context, host runbook.Host) (executor.Executor, error) {
	ex, err := p.Get(ctx, host)
	if err != nil {
		return nil, err
	}
	return ex, nil
}

func (p *Pool) get(ctx context.Context, host runbook.Host, chain []string) (*Executor, error) {
	key := poolKey(host)
	p.mu.Lock()
	if p.conns == nil {
		p.mu.Unlock()
		return nil, errors.New("ssh pool is closed")
	}
	e, ok := p.conns[key]
	if ok {
		p.mu.Unlock()
		select {
		case <-e.ready:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if e.err == nil && !e.ex.isClosed() {
			return e.ex, nil
		}
		p.mu.Lock()
		if p.conns[key] == e {
			delete(p.conns, key)
		}
		p.mu.Unlock()
		return p.get(ctx, host, chain)
	}
	e = &poolEntry{ready: make(chan struct{})}
	p.conns[key] = e
	p.mu.Unlock()

	e.ex, e.err = p.dial(ctx, host, chain)
	close(e.ready)
	if e.err != nil {
		p.mu.Lock()
		if p.conns[key] == e {
			delete(p.conns, key)
		}
		p.mu.Unlock()
		return nil, e.err
	}
	return e.ex, nil
}

func poolKey(h runbook.Host) string {
	return h.Name + "\x00" + h.User + "@" + h.Address + ":" + strconv.Itoa(h.Port)
}

// Close closes every connection of the pool.
func (p *Pool) Close() error {
	p.mu.Lock()
	conns := p.conns
	p.conns = nil
	p.mu.Unlock()
	for _, e := range conns {
		<-e.ready
		if e.err == nil {
			e.ex.closeConn()
		}
	}
	if p.closeFn != nil {
		p.closeFn()
	}
	return nil
}

func (p *Pool) dial(ctx context.Context, host runbook.Host, chain []string) (*Executor, error) {
	port := host.Port
	if port == 0 {
		port = 22
	}
	addr := net.JoinHostPort(host.Address, strconv.Itoa(port))
	name := host.Name
	if name == "" {
		name = host.Address
	}
	if host.Address == "" {
		return nil, fmt.Errorf("ssh %s: host has no address; set address in the inventory", name)
	}
	login := host.User
	if login == "" {
		login = p.opts.User
	}
	if login == "" {
		u, err := user.Current()
		if err != nil {
			return nil, fmt.Errorf("ssh %s: no user given and the local user is unknown (%v); set user in the inventory", name, err)
		}
		login = u.Username
	}

	var dialConn func(ctx context.Context) (net.Conn, error)
	via := ""
	if host.Bastion != "" {
		for _, c := range chain {
			if c == host.Bastion {
				return nil, fmt.Errorf("ssh %s: bastion loop %s -> %s; fix the bastion fields in the inventory", name, strings.Join(chain, " -> "), host.Bastion)
			}
		}
		if p.opts.ResolveHost == nil {
			return nil, fmt.Errorf("ssh %s: bastion %q cannot be looked up (no inventory given)", name, host.Bastion)
		}
		bh, ok := p.opts.ResolveHost(host.Bastion)
		if !ok {
			return nil, fmt.Errorf("ssh %s: bastion %q is not in the environment's inventory; add it or fix the bastion field", name, host.Bastion)
		}
		bastion, err := p.get(ctx, bh, append(chain, name))
		if err != nil {
			return nil, fmt.Errorf("ssh %s via bastion %s: %w", name, host.Bastion, err)
		}
		via = " via " + host.Bastion
		dialConn = func(ctx context.Context) (net.Conn, error) {
			return bastion.client.DialContext(ctx, "tcp", addr)
		}
	} else {
		d := net.Dialer{Timeout: p.opts.ConnectTimeout}
		dialConn = func(ctx context.Context) (net.Conn, error) {
			return d.DialContext(ctx, "tcp", addr)
		}
	}

	conn, err := dialConn(ctx)
	if err != nil {
		return nil, connectError(name, addr+via, err, p.opts.ConnectTimeout)
	}
	cfg := &ssh.ClientConfig{
		User:              login,
		Auth:              p.auth,
		HostKeyCallback:   p.keys.callback(name),
		HostKeyAlgorithms: p.keys.algorithms(addr),
		Timeout:           p.opts.ConnectTimeout,
	}
	// The handshake has no timeout of its own and a tunnelled conn has no
	// deadlines, so a silent peer is cut off by closing the conn.
	var timedOut, canceled bool
	var mu sync.Mutex
	timer := time.AfterFunc(p.opts.ConnectTimeout, func() {
		mu.Lock()
		timedOut = true
		mu.Unlock()
		conn.Close()
	})
	stop := context.AfterFunc(ctx, func() {
		mu.Lock()
		canceled = true
		mu.Unlock()
		conn.Close()
	})
	c, chans, reqs, err := ssh.NewClientConn(conn, addr, cfg)
	timer.Stop()
	stop()
	mu.Lock()
	defer mu.Unlock()
	if err != nil {
		conn.Close()
		var hkErr *HostKeyError
		switch {
		case errors.As(err, &hkErr):
			return nil, hkErr
		case canceled:
			return nil, fmt.Errorf("ssh %s (%s%s): %w", name, addr, via, ctx.Err())
		case timedOut:
			return nil, fmt.Errorf("ssh %s (%s%s): no SSH handshake within %s: the host accepts TCP but does not answer (hung sshd, wrong port or a proxy); check it with ssh -v -p %d %s",
				name, addr, via, p.opts.ConnectTimeout, port, host.Address)
		case strings.Contains(err.Error(), "unable to authenticate"):
			return nil, fmt.Errorf("ssh %s (%s%s): login as %q refused (%v): add your public key to the host's ~/.ssh/authorized_keys, or load the right key in ssh-agent", name, addr, via, login, err)
		default:
			return nil, fmt.Errorf("ssh %s (%s%s): %w", name, addr, via, err)
		}
	}
	client := ssh.NewClient(c, chans, reqs)
	ex := &Executor{name: name, client: client, grace: p.opts.KillGrace, done: make(chan struct{}), slots: make(chan struct{}, maxConcurrentRuns)}
	go func() {
		_ = client.Wait()
		ex.markClosed()
	}()
	if p.opts.KeepAlive > 0 {
		go ex.keepAlive(p.opts.KeepAlive)
	}
	return ex, nil
}

func connectError(name, addr string, err error, timeout time.Duration) error {
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("ssh %s (%s): connection refused: sshd is not running there or the port is wrong; check the inventory's address and port", name, addr)
	case errors.As(err, &ne) && ne.Timeout():
		return fmt.Errorf("ssh %s (%s): no TCP connection within %s: the host is down or a firewall drops the traffic", name, addr, timeout)
	default:
		return fmt.Errorf("ssh %s (%s): connect: %w", name, addr, err)
	}
}

// authMethods gathers keys from identity files and ssh-agent.
func authMethods(opts Options) ([]ssh.AuthMethod, func(), error) {
	var signers []ssh.Signer
	files := opts.IdentityFiles
	explicit := len(files) > 0
	if !explicit {
		if home, err := os.UserHomeDir(); err == nil {
			for _, n := range []string{"id_ed25519", "id_ecdsa", "id_rsa"} {
				files = append(files, filepath.Join(home, ".ssh", n))
			}
		}
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			if !explicit && errors.Is(err, os.ErrNotExist) {
				continue
			}
			return nil, nil, fmt.Errorf("read identity file: %w", err)
		}
		s, err := ssh.ParsePrivateKey(data)
		if err != nil {
			var pp *ssh.PassphraseMissingError
			if errors.As(err, &pp) {
				if !explicit {
					continue // the agent may hold it
				}
				return nil, nil, fmt.Errorf("identity file %s is passphrase-protected: load it into ssh-agent (ssh-add %s) and leave it out of the identity files", f, f)
			}
			return nil, nil, fmt.Errorf("parse identity file %s: %w", f, err)
		}
		signers = append(signers, s)
	}
	closeAgent := func() {}
	sock := opts.AgentSocket
	if sock == "" {
		sock = os.Getenv("SSH_AUTH_SOCK")
	}
	var agentSigners func() ([]ssh.Signer, error)
	if sock != "" {
		conn, err := net.Dial("unix", sock)
		if err == nil {
			ag := agent.NewClient(conn)
			agentSigners = ag.Signers
			closeAgent = func() { conn.Close() }
		} else if opts.AgentSocket != "" {
			return nil, nil, fmt.Errorf("connect to ssh-agent at %s: %w", sock, err)
		}
	}
	if len(signers) == 0 && agentSigners == nil {
		return nil, nil, errors.New("no SSH credentials: no key in ~/.ssh (id_ed25519, id_ecdsa, id_rsa) and no ssh-agent ($SSH_AUTH_SOCK); create a key with ssh-keygen or start ssh-agent")
	}
	// One callback so agent keys are asked for lazily, once per login.
	cb := func() ([]ssh.Signer, error) {
		all := append([]ssh.Signer(nil), signers...)
		if agentSigners != nil {
			if as, err := agentSigners(); err == nil {
				all = append(all, as...)
			}
		}
		return all, nil
	}
	return []ssh.AuthMethod{ssh.PublicKeysCallback(cb)}, closeAgent, nil
}

// maxConcurrentRuns bounds the commands running at once on one connection.
// A run may hold two sessions (command and kill) and OpenSSH's default
// MaxSessions is 10; further Run calls wait for a slot.
const maxConcurrentRuns = 4

// Executor runs commands on one connected host.
type Executor struct {
	name    string
	client  *ssh.Client
	grace   time.Duration
	onClose func() error
	slots   chan struct{}

	closeOnce sync.Once
	done      chan struct{} // closed when the connection ends
}

var _ executor.Executor = (*Executor)(nil)

// Host is the inventory name.
func (e *Executor) Host() string { return e.name }

// Close closes the connection; running commands fail.
func (e *Executor) Close() error {
	e.closeConn()
	if e.onClose != nil {
		return e.onClose()
	}
	return nil
}

func (e *Executor) closeConn() {
	_ = e.client.Close()
	e.markClosed()
}

func (e *Executor) markClosed() {
	e.closeOnce.Do(func() { close(e.done) })
}

func (e *Executor) isClosed() bool {
	select {
	case <-e.done:
		return true
	default:
		return false
	}
}

// keepAlive closes the connection when the server stops answering, so a
// host that vanished fails its running command instead of hanging it.
func (e *Executor) keepAlive(every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-e.done:
			return
		case <-t.C:
		}
		reply := make(chan error, 1)
		go func() {
			_, _, err := e.client.SendRequest("keepalive@openssh.com", true, nil)
			reply <- err
		}()
		select {
		case err := <-reply:
			if err != nil {
				e.closeConn()
				return
			}
		case <-time.After(2 * every):
			e.closeConn()
			return
		case <-e.done:
			return
		}
	}
}
