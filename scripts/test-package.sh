#!/usr/bin/env bash
# Installs the Debian package on this machine the way an operator would and checks that the
# service user can read and validate the installed config:
#   scripts/package-deb.sh --binary BINARY   (the debug build CI already made: no second build)
#   dpkg -i, then  runuser -u gatehouse -- gatehouse check-config /etc/gatehouse/gatehouse.yaml
# and systemd-analyze verify on the installed unit. Afterwards the package is purged, so a reused
# CI machine is left as it was (only the system user `gatehouse` and an empty /var/lib/gatehouse,
# which the package deliberately keeps, remain; both are reused by the next run).
#
# Needs root, dpkg and runuser; skipped with a notice otherwise (a developer's machine). A
# gatehouse package that this script did not install (a real installation) is never touched.
set -euo pipefail
cd "$(dirname "$0")/.."
binary="${1:-$PWD/.build/debug/gatehouse}"
# The version marks packages this script installed, so it may replace and purge them.
version="0.0.0+scripts.test.package"

if [ "$(id -u)" != 0 ] || ! command -v dpkg >/dev/null || ! command -v runuser >/dev/null; then
  echo "test-package: skipped (needs root, dpkg and runuser)"
  exit 0
fi

# Agents and CI jobs sharing the machine take turns: dpkg has one database.
exec 9>/var/lock/gatehouse-test-package.lock
flock 9

# Installed, or removed with its config kept (status ?c): another version is someone's real install.
status=$(dpkg-query -W -f '${db:Status-Abbrev}' gatehouse 2>/dev/null || true)
current=$(dpkg-query -W -f '${Version}' gatehouse 2>/dev/null || true)
if [ -n "$status" ] && [ "${status:1:1}" != n ] && [ "$current" != "$version" ]; then
  echo "test-package: skipped: gatehouse $current is on this machine (dpkg status '$status') and was not installed by this script" >&2
  exit 0
fi

out=$(mktemp -d)
purge() {
  dpkg --purge gatehouse >/dev/null || echo "test-package: warning: dpkg --purge gatehouse failed" >&2
  rm -rf "$out"
}
trap purge EXIT

# Uncompressed: xz on a 150 MB debug binary would cost minutes of a busy CI box for nothing.
deb=$(scripts/package-deb.sh --binary "$binary" --version "$version" --output "$out" --compress none)
info=$(dpkg-deb --info "$deb")
grep -q '^ Package: gatehouse' <<<"$info" || { echo "test-package: $deb has no control file" >&2; exit 1; }
contents=$(dpkg-deb --contents "$deb")
for path in ./usr/bin/gatehouse ./lib/systemd/system/gatehouse.service ./etc/gatehouse/gatehouse.yaml \
  ./usr/share/gatehouse/adapters/zhenshi-lpr/profile.yaml ./usr/share/doc/gatehouse/gatehouse.example.yaml; do
  grep -q " $path\$" <<<"$contents" || { echo "test-package: $deb lacks $path" >&2; exit 1; }
done

DEBIAN_FRONTEND=noninteractive dpkg -i "$deb" >/dev/null
getent passwd gatehouse >/dev/null || { echo "test-package: the package did not create the user gatehouse" >&2; exit 1; }
[ "$(stat -c '%U:%G %a' /etc/gatehouse/gatehouse.yaml)" = "root:gatehouse 640" ] \
  || { echo "test-package: /etc/gatehouse/gatehouse.yaml is $(stat -c '%U:%G %a' /etc/gatehouse/gatehouse.yaml), expected root:gatehouse 640" >&2; exit 1; }

# As the service user, exactly as the unit's ExecStartPre= runs it.
runuser -u gatehouse -- gatehouse check-config /etc/gatehouse/gatehouse.yaml
# The shipped vendor profiles, from where the installed config points.
runuser -u gatehouse -- gatehouse adapters test --directory /usr/share/gatehouse/adapters >/dev/null
if command -v systemd-analyze >/dev/null; then
  verify=$(systemd-analyze verify /lib/systemd/system/gatehouse.service 2>&1 || true)
  [ -z "$verify" ] || { echo "test-package: systemd-analyze verify on the installed unit:" >&2; echo "$verify" >&2; exit 1; }
fi
# A second install over the first (an upgrade, or a re-run) keeps working.
DEBIAN_FRONTEND=noninteractive dpkg -i "$deb" >/dev/null
runuser -u gatehouse -- gatehouse check-config /etc/gatehouse/gatehouse.yaml >/dev/null
echo "test-package: $(basename "$deb") installs; the gatehouse user validates /etc/gatehouse/gatehouse.yaml"
