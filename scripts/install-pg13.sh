#!/usr/bin/env bash
# Installs PostgreSQL 13 under /usr/lib/postgresql/13 (and /usr/share/postgresql/13)
# on Debian 12, whose own suite has only PostgreSQL 15, so the major-upgrade lab
# (internal/labs/upgrade_test.go) can upgrade a real 13 cluster to 15 with
# postgresql-common, which finds a version's binaries only at that path.
#
# The packages come from the same Debian archive's bullseye suite through a
# private apt source list (the machine's own sources are left alone), are
# unpacked with dpkg -x (not installed: their dependencies would replace
# bookworm's libraries), and bullseye's libraries the binaries need (ICU 67,
# OpenSSL 1.1, OpenLDAP 2.4, LLVM 11, libffi 7) go to
# /usr/lib/postgresql/13/compat-lib. Every binary and library gets that
# directory as its DT_RPATH (patchelf --force-rpath): a DT_RUNPATH applies to an
# object's own dependencies only, and liblber or libicudata, needed by the
# libraries, would not be found.
#
# Idempotent: does nothing when /usr/lib/postgresql/13/bin/postgres runs. Quiet
# on success; any failure stops it with a message. Needs root.
set -euo pipefail

prefix=/usr/lib/postgresql/13
if [ -x "$prefix/bin/postgres" ] && "$prefix/bin/postgres" --version 2>/dev/null | grep -q ' 13\.'; then
	exit 0
fi
fail() { echo "install-pg13.sh: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || fail "must run as root to install under $prefix"
[ -d /usr/lib/postgresql ] || fail "/usr/lib/postgresql is missing: install Debian's postgresql (and postgresql-common) first"
export DEBIAN_FRONTEND=noninteractive
if ! command -v patchelf >/dev/null 2>&1; then
	{ apt-get install -y -qq --no-install-recommends patchelf >/dev/null 2>&1 ||
		{ apt-get update -qq && apt-get install -y -qq --no-install-recommends patchelf >/dev/null; }; } ||
		fail "cannot install patchelf"
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/lists/partial" "$work/debs" "$work/root"
echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bullseye main" >"$work/sources.list"
apt=(-o "Dir::Etc::sourcelist=$work/sources.list" -o Dir::Etc::sourceparts=- -o "Dir::State::Lists=$work/lists"
	-o Dir::Cache::pkgcache= -o Dir::Cache::srcpkgcache= -o APT::Sandbox::User=root)
apt-get "${apt[@]}" -qq update >"$work/update.log" 2>&1 || { cat "$work/update.log" >&2; fail "apt-get update of bullseye failed"; }
pkgs=(postgresql-13 postgresql-client-13 libicu67 libssl1.1 libldap-2.4-2 libllvm11 libffi7)
(cd "$work/debs" && apt-get "${apt[@]}" -qq download "${pkgs[@]}") >"$work/download.log" 2>&1 ||
	{ cat "$work/download.log" >&2; fail "download of ${pkgs[*]} from bullseye failed"; }
for deb in "$work"/debs/*.deb; do
	dpkg -x "$deb" "$work/root"
done

stage=$work/root
compat=$prefix/compat-lib
mkdir -p "$stage$compat"
cp -a "$stage"/usr/lib/x86_64-linux-gnu/*.so* "$stage$compat/"
# Every ELF file under the prefix: binaries, server modules, the libraries.
while IFS= read -r -d '' f; do
	if [ ! -L "$f" ] && head -c4 "$f" | grep -q 'ELF'; then
		patchelf --force-rpath --set-rpath "$compat" "$f" || fail "patchelf $f"
	fi
done < <(find "$stage$prefix" -type f -print0)

mkdir -p /usr/share/postgresql
rm -rf "$prefix.new" /usr/share/postgresql/13.new
cp -a "$stage$prefix" "$prefix.new"
cp -a "$stage/usr/share/postgresql/13" /usr/share/postgresql/13.new
rm -rf "$prefix" /usr/share/postgresql/13
mv /usr/share/postgresql/13.new /usr/share/postgresql/13
mv "$prefix.new" "$prefix"

version=$("$prefix/bin/postgres" --version) || fail "$prefix/bin/postgres does not run after installing: check ldd $prefix/bin/postgres"
case "$version" in
*" 13."*) ;;
*) fail "$prefix/bin/postgres --version says '$version', want 13.x" ;;
esac
missing=$(for f in "$prefix"/bin/* "$prefix"/lib/*.so "$compat"/*.so*; do ldd "$f" 2>/dev/null | grep 'not found' || true; done | sort -u)
[ -z "$missing" ] || fail "libraries not found after installing: $missing"
