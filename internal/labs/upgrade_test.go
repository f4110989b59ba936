package labs

import "testing"

// TestMajorUpgradeLab is the one library lab not built yet, and says why.
// Fetching a second major works on this Debian 12 machine: bullseye's
// postgresql-13 with libicu67, libssl1.1, libldap-2.4-2 and libllvm11,
// downloaded with a private apt source list (apt-get -o
// Dir::Etc::sourcelist=… download), unpacked with dpkg -x and pointed at
// its libraries with patchelf --force-rpath (a RUNPATH is not enough: the
// libraries' own dependencies, liblber and libicudata, are not found) runs
// `postgres --version` = 13.16. What is missing is the runbook's side: it
// drives Debian's postgresql-common (pg_lsclusters, pg_upgradecluster,
// pg_ctlcluster, /etc/postgresql/<version>/<cluster>), which finds server
// binaries only under /usr/lib/postgresql/<version>/bin and clusters only
// in the system-wide configuration tree, so a throwaway lab needs either
// postgresql-13 installed system-wide by scripts/test.sh and clusters under
// PG_CLUSTER_CONF_ROOT, or a pg_upgrade-based variant of the runbook. The
// upgrade runbook's fixes (user objects only in the count, conf.d carried
// over, ANALYZE checked in every database, sessions other than its own)
// are therefore reviewed, linted and dry-run planned, but not run here.
func TestMajorUpgradeLab(t *testing.T) {
	t.Skip("major upgrade lab (13 → 15) not built: the runbook drives postgresql-common, which needs PostgreSQL 13 installed under /usr/lib/postgresql/13 and clusters in /etc/postgresql; see this test's comment")
}
