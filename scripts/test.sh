#!/usr/bin/env bash
# The whole test suite, on a fresh machine: installs what the tests need
# (OpenSSH server, Chromium, PostgreSQL, nginx), then vets and tests every package. Tests start
# their own throwaway PostgreSQL, sshd, nginx and Chromium on loopback and stop them
# (internal/labs runs the built-in library's runbooks against them).
set -euo pipefail
cd "$(dirname "$0")/.."

# Tests that need a real component (PostgreSQL, sshd, Chromium, tmux) skip
# when it is missing on a developer's machine, but fail when CI is set: here
# a missing component is a failure, never a silent green.
export CI=true

need=()
[ -x /usr/sbin/sshd ] || need+=(openssh-server openssh-client)
command -v pgrep >/dev/null 2>&1 || need+=(procps) # sshexec tests look for leftover remote processes
command -v chromium >/dev/null 2>&1 || need+=(chromium)
# The Chinese UI screenshots (TestScreenshots -screenshots) need a CJK font, or Chromium draws boxes.
fc-list :lang=zh 2>/dev/null | grep -q . || need+=(fonts-wqy-microhei)
command -v tmux >/dev/null 2>&1 || need+=(tmux) # internal/cli drives the live view in a real pseudo-terminal
command -v git >/dev/null 2>&1 || need+=(git) # workspace archive tests commit with git
command -v python3 >/dev/null 2>&1 || need+=(python3) # executor tests run a python3 step
# internal/labs runs the library's runbooks for real: nginx with an openssl CA, curl.
command -v nginx >/dev/null 2>&1 || need+=(nginx)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
command -v curl >/dev/null 2>&1 || need+=(curl)
# internal/store/pgtest runs initdb/postgres from PATH or /usr/lib/postgresql/*/bin.
command -v initdb >/dev/null 2>&1 || compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || need+=(postgresql)
# The DR lab's switchback rewinds with pg_rewind (the postgresql package); its two hosts are sshd
# in mount namespaces (unshare, mount) running commands as postgres (runuser): util-linux, mount.
compgen -G '/usr/lib/postgresql/*/bin/pg_rewind' >/dev/null || need+=(postgresql)
command -v unshare >/dev/null 2>&1 && command -v runuser >/dev/null 2>&1 || need+=(util-linux)
command -v mount >/dev/null 2>&1 || need+=(mount)
# The point-in-time restore lab verifies base backups with pg_verifybackup (postgresql), runs
# commands as postgres (runuser, above) and damages a table file with perl (perl-base).
compgen -G '/usr/lib/postgresql/*/bin/pg_verifybackup' >/dev/null || need+=(postgresql)
command -v perl >/dev/null 2>&1 || need+=(perl-base)
# The two-host TLS lab gives each web host a network namespace (ip netns, veth) entered with nsenter.
command -v ip >/dev/null 2>&1 || need+=(iproute2)
command -v nsenter >/dev/null 2>&1 || need+=(util-linux)
if [ ${#need[@]} -gt 0 ]; then
	if [ "$(id -u)" = 0 ]; then
		echo "test.sh: installing ${need[*]}"
		export DEBIAN_FRONTEND=noninteractive
		apt-get update -qq
		apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
	else
		echo "test.sh: not root, cannot install ${need[*]}; tests that need them will fail" >&2
	fi
fi

# The major-upgrade lab upgrades PostgreSQL 13 to 15: 13 comes from bullseye (install-pg13.sh).
if [ "$(id -u)" = 0 ]; then scripts/install-pg13.sh; fi

unformatted=$(gofmt -l cmd internal bench 2>/dev/null || true)
if [ -n "$unformatted" ]; then
	echo "test.sh: gofmt would change:" >&2
	echo "$unformatted" >&2
	exit 1
fi
# go.mod and go.sum must be what `go mod tidy` makes of the code (-e: the
# module proxy here is a partial mirror; a module it lacks is not an error).
tidy=$(mktemp -d)
cp go.mod go.sum "$tidy/"
go mod tidy -e
if ! cmp -s go.mod "$tidy/go.mod" || ! cmp -s go.sum "$tidy/go.sum"; then
	echo "test.sh: go mod tidy changes go.mod/go.sum; run go mod tidy -e and commit:" >&2
	diff -u "$tidy/go.mod" go.mod >&2 || true
	diff -u "$tidy/go.sum" go.sum >&2 || true
	cp "$tidy/go.mod" "$tidy/go.sum" .
	exit 1
fi
rm -rf "$tidy"
go vet ./...
# The documented build: one static binary, no cgo.
CGO_ENABLED=0 go build -o /dev/null ./cmd/opsbook
go test -count=1 -timeout 25m ./...
