package sshexec

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strings"

	"github.com/skeema/knownhosts"
	"golang.org/x/crypto/ssh"
	xknownhosts "golang.org/x/crypto/ssh/knownhosts"
)

// HostKeyError is a refused host key: unknown (no known_hosts line for the
// address) or changed (lines exist, none matches).
type HostKeyError struct {
	Host    string // inventory name
	Addr    string // host:port dialled
	Key     ssh.PublicKey
	Changed bool
	// Known are the keys known_hosts holds for the address, with file and
	// line, when Changed.
	Known []xknownhosts.KnownKey
	// AddTo is the known_hosts file the message suggests appending to.
	AddTo string
}

func (e *HostKeyError) Error() string {
	host, port, err := net.SplitHostPort(e.Addr)
	if err != nil {
		host, port = e.Addr, "22"
	}
	addTo := e.AddTo
	if addTo == "" {
		addTo = "~/.ssh/known_hosts"
	}
	line := knownhosts.Line([]string{e.Addr}, e.Key)
	var b strings.Builder
	if e.Changed {
		fmt.Fprintf(&b, "ssh %s (%s): REMOTE HOST IDENTIFICATION HAS CHANGED — refusing to connect.\n", e.Host, e.Addr)
		b.WriteString("Someone could be intercepting the connection (man-in-the-middle), or the host was reinstalled.\n")
		fmt.Fprintf(&b, "  presented: %s %s\n", e.Key.Type(), ssh.FingerprintSHA256(e.Key))
		for _, k := range e.Known {
			fmt.Fprintf(&b, "  expected:  %s %s (%s:%d)\n", k.Key.Type(), ssh.FingerprintSHA256(k.Key), k.Filename, k.Line)
		}
		b.WriteString("Only if the host owner confirms the new fingerprint: remove the old line(s) with\n")
		for _, f := range knownFiles(e.Known) {
			fmt.Fprintf(&b, "  ssh-keygen -R '%s' -f %s\n", knownhosts.Normalize(e.Addr), f)
		}
		fmt.Fprintf(&b, "and add the new one to %s:\n  %s", addTo, line)
		return b.String()
	}
	fmt.Fprintf(&b, "ssh %s (%s): host key is not known: %s %s is in no known_hosts file.\n", e.Host, e.Addr, e.Key.Type(), ssh.FingerprintSHA256(e.Key))
	fmt.Fprintf(&b, "Check the fingerprint with the host's owner (ssh-keygen -lf /etc/ssh/ssh_host_%s_key.pub on the host), then accept it with\n", keyFileKind(e.Key.Type()))
	fmt.Fprintf(&b, "  ssh-keyscan -p %s %s >> %s\n", port, host, addTo)
	fmt.Fprintf(&b, "or add this line to %s:\n  %s", addTo, line)
	return b.String()
}

// keyFileKind names the host key file OpenSSH keeps a key type in.
func keyFileKind(keyType string) string {
	switch {
	case strings.Contains(keyType, "ed25519"):
		return "ed25519"
	case strings.HasPrefix(keyType, "ecdsa"):
		return "ecdsa"
	case strings.Contains(keyType, "rsa"):
		return "rsa"
	default:
		return "*"
	}
}

func knownFiles(keys []xknownhosts.KnownKey) []string {
	var files []string
	seen := map[string]bool{}
	for _, k := range keys {
		if !seen[k.Filename] {
			seen[k.Filename] = true
			files = append(files, k.Filename)
		}
	}
	return files
}

// hostKeys is the loaded known_hosts database.
type hostKeys struct {
	db    *knownhosts.HostKeyDB
	addTo string
}

// loadHostKeys reads the workspace's known_hosts files (missing ones count
// as empty: a fresh workspace has none yet) and, unless skipped, the user's.
func loadHostKeys(files []string, skipUser bool) (*hostKeys, error) {
	var existing []string
	for _, f := range files {
		if _, err := os.Stat(f); err == nil {
			existing = append(existing, f)
		} else if !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("read known_hosts %s: %w", f, err)
		}
	}
	if !skipUser {
		if home, err := os.UserHomeDir(); err == nil {
			f := home + "/.ssh/known_hosts"
			if _, err := os.Stat(f); err == nil {
				existing = append(existing, f)
			}
		}
	}
	db, err := knownhosts.NewDB(existing...)
	if err != nil {
		return nil, fmt.Errorf("load known_hosts (%s): %w; fix or remove the malformed line", strings.Join(existing, ", "), err)
	}
	hk := &hostKeys{db: db}
	if len(files) > 0 {
		hk.addTo = files[0]
	}
	return hk, nil
}

// callback verifies the presented key and turns knownhosts' errors into a
// HostKeyError that tells the operator what to do.
func (hk *hostKeys) callback(name string) ssh.HostKeyCallback {
	inner := hk.db.HostKeyCallback()
	return func(hostname string, remote net.Addr, key ssh.PublicKey) error {
		err := inner(hostname, remote, key)
		if err == nil {
			return nil
		}
		var keyErr *xknownhosts.KeyError
		if errors.As(err, &keyErr) {
			return &HostKeyError{Host: name, Addr: hostname, Key: key, Changed: len(keyErr.Want) > 0, Known: keyErr.Want, AddTo: hk.addTo}
		}
		return fmt.Errorf("verify host key of %s: %w", hostname, err)
	}
}

// algorithms lists the host key algorithms known_hosts holds for addr, so
// the server is asked for the key type we can verify (an ed25519 line must
// not lose to the server's preferred RSA key). Nil means the defaults.
func (hk *hostKeys) algorithms(addr string) []string {
	return hk.db.HostKeyAlgorithms(addr)
}
