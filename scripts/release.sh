#!/usr/bin/env bash
# Release archives: a static opsbook binary (CGO_ENABLED=0) for linux and
# darwin on amd64 and arm64, with its version, commit and build date from
# git in `opsbook --version`, packed as dist/opsbook_<version>_<os>_<arch>.tar.gz
# beside dist/SHA256SUMS.
#
#   scripts/release.sh              # version from `git describe`
#   VERSION=v1.2.0 scripts/release.sh
#   TARGETS="linux/amd64" scripts/release.sh
set -euo pipefail
cd "$(dirname "$0")/.."

version=${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}
commit=$(git rev-parse HEAD 2>/dev/null || echo unknown)
# The commit's date, not the clock's: the same commit builds the same binary.
date=$(git log -1 --format=%cI 2>/dev/null || date -u +%Y-%m-%dT%H:%M:%SZ)
targets=${TARGETS:-"linux/amd64 linux/arm64 darwin/amd64 darwin/arm64"}
pkg=github.com/opsbook/opsbook/internal/cli
ldflags="-s -w -X $pkg.Version=$version -X $pkg.Commit=$commit -X $pkg.Date=$date"

rm -rf dist
mkdir -p dist
for t in $targets; do
	os=${t%/*} arch=${t#*/}
	name=opsbook_${version}_${os}_${arch}
	echo "release.sh: $name"
	mkdir -p "dist/$name"
	CGO_ENABLED=0 GOOS=$os GOARCH=$arch go build -trimpath -buildvcs=false -ldflags "$ldflags" -o "dist/$name/opsbook" ./cmd/opsbook
	cp README.md "dist/$name/"
	tar -C dist -czf "dist/$name.tar.gz" "$name"
	rm -rf "dist/$name"
done
(cd dist && sha256sum -- *.tar.gz >SHA256SUMS)
cat dist/SHA256SUMS
