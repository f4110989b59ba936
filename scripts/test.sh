#!/usr/bin/env bash
# The whole test suite, on a fresh machine: installs what the tests need
# (OpenSSH server, Chromium, PostgreSQL, nginx), then vets and tests every package. Tests start
# their own throwaway PostgreSQL, sshd, nginx and Chromium on loopback and stop them
# (internal/labs runs the built-in library's runbooks against them).
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
[ -x /usr/sbin/sshd ] || need+=(openssh-server openssh-client)
command -v pgrep >/dev/null 2>&1 || need+=(procps) # sshexec tests look for leftover remote processes
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v tmux >/dev/null 2>&1 || need+=(tmux) # internal/cli drives the live view in a real pseudo-terminal
# internal/labs runs the library's runbooks for real: nginx with an openssl CA, curl.
command -v nginx >/dev/null 2>&1 || need+=(nginx)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
command -v curl >/dev/null 2>&1 || need+=(curl)
# internal/store/pgtest runs initdb/postgres from PATH or /usr/lib/postgresql/*/bin.
command -v initdb >/dev/null 2>&1 || compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || need+=(postgresql)
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

unformatted=$(gofmt -l cmd internal bench 2>/dev/null || true)
if [ -n "$unformatted" ]; then
	echo "test.sh: gofmt would change:" >&2
	echo "$unformatted" >&2
	exit 1
fi
go vet ./...
go build -o /dev/null ./cmd/opsbook
go test -count=1 -timeout 15m ./...
