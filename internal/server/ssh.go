package server

import (
	"context"
	"fmt"
	"sync"

	"github.com/opsbook/opsbook/internal/executor"
	"github.com/opsbook/opsbook/internal/executor/sshexec"
	"github.com/opsbook/opsbook/internal/runbook"
	"github.com/opsbook/opsbook/internal/workspace"
)

// sshHosts reaches the inventory hosts of the served workspace for the
// engine. The pool is made on first use, so a server whose runbooks never
// leave the local host needs no SSH credentials; host keys are checked
// against every environment's known_hosts file and the user's.
type sshHosts struct {
	dir string

	mu   sync.Mutex
	pool *sshexec.Pool
}

// Executor is engine.Config.Remote.
func (s *sshHosts) Executor(ctx context.Context, h runbook.Host) (executor.Executor, error) {
	pool, err := s.get()
	if err != nil {
		return nil, err
	}
	return pool.Executor(ctx, h)
}

func (s *sshHosts) get() (*sshexec.Pool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pool != nil {
		return s.pool, nil
	}
	ws, err := workspace.Load(s.dir)
	if err != nil {
		return nil, fmt.Errorf("load the inventory: %w", err)
	}
	var files []string
	for _, e := range ws.Config.Environments {
		if e.KnownHosts != "" {
			files = append(files, ws.Path(e.KnownHosts))
		}
	}
	// Bastions are looked up by name across environments: a jump host is
	// usually declared once, in the environment that uses it.
	resolve := func(name string) (runbook.Host, bool) {
		for _, e := range ws.Config.Environments {
			if h, ok := e.Host(name); ok {
				return h, true
			}
		}
		return runbook.Host{}, false
	}
	pool, err := sshexec.NewPool(sshexec.Options{KnownHostsFiles: files, ResolveHost: resolve})
	if err != nil {
		return nil, fmt.Errorf("prepare SSH: %w", err)
	}
	s.pool = pool
	return pool, nil
}

// Close closes the pool's connections.
func (s *sshHosts) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pool == nil {
		return nil
	}
	err := s.pool.Close()
	s.pool = nil
	return err
}
