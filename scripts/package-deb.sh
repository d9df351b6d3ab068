#!/usr/bin/env bash
# Builds the Debian package: the gatehouse binary in /usr/bin, the systemd unit, the vendor
# profiles in /usr/share/gatehouse/adapters, a starting config as a conffile
# (/etc/gatehouse/gatehouse.yaml, valid as installed), the docs and the example config, and
# maintainer scripts that create the system user `gatehouse`.
#
#   scripts/package-deb.sh                          release build with the Swift runtime linked in
#   scripts/package-deb.sh --binary .build/debug/gatehouse --version 0.0.0+ci   package a built binary
#   options: --output DIR (default .build/deb), --compress xz|gzip|zstd|none (default xz)
#
# Prints the path of the .deb (under .build/deb unless --output says otherwise).
set -euo pipefail
cd "$(dirname "$0")/.."

usage() { sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }

binary=""
strip_binary=no   # only our own release build: a --binary is packaged as given
version="0.1.0"
output=".build/deb"
compress="xz"
while [ $# -gt 0 ]; do
  case "$1" in
    --binary) binary="${2:?--binary needs a path}"; shift 2 ;;
    --version) version="${2:?--version needs a value}"; shift 2 ;;
    --output) output="${2:?--output needs a directory}"; shift 2 ;;
    --compress) compress="${2:?--compress needs xz, gzip, zstd or none}"; shift 2 ;;
    -h|--help) usage 0 ;;
    *) echo "package-deb: unknown argument '$1'" >&2; usage 2 ;;
  esac
done
if ! [[ "$version" =~ ^[0-9][A-Za-z0-9.+~-]*$ ]]; then
  echo "package-deb: '$version' is not a Debian version (expected e.g. 0.1.0 or 0.0.0+ci)" >&2
  exit 2
fi
command -v dpkg-deb >/dev/null || { echo "package-deb: dpkg-deb not found (apt-get install dpkg)" >&2; exit 1; }

if [ -z "$binary" ]; then
  # The Swift runtime is linked in, so the package needs no toolchain on the box.
  swift build -c release --product gatehouse --static-swift-stdlib >&2
  binary=".build/release/gatehouse"
  strip_binary=yes
fi
[ -x "$binary" ] || { echo "package-deb: '$binary' is not an executable file" >&2; exit 1; }
libraries=$(ldd "$binary" 2>/dev/null || true)
if grep -q 'libswiftCore' <<<"$libraries"; then
  # A debug build (as CI packages it) finds the runtime through its RUNPATH into the toolchain.
  echo "package-deb: note: $binary links the Swift runtime dynamically; the package runs only where that toolchain is installed" >&2
fi

arch=$(dpkg --print-architecture)
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
root="$stage/gatehouse_${version}_${arch}"

install -D -m 0755 "$binary" "$root/usr/bin/gatehouse"
# As Debian packages do: symbols roughly double the size of the release binary.
if [ "$strip_binary" = yes ] && command -v strip >/dev/null; then strip --strip-unneeded "$root/usr/bin/gatehouse"; fi
# The unit as shipped names the manual install's /usr/local/bin; the package puts it in /usr/bin.
install -d "$root/lib/systemd/system"
sed 's#/usr/local/bin/gatehouse#/usr/bin/gatehouse#g' systemd/gatehouse.service > "$root/lib/systemd/system/gatehouse.service"
chmod 0644 "$root/lib/systemd/system/gatehouse.service"
install -d "$root/usr/share/gatehouse"
cp -r adapters "$root/usr/share/gatehouse/adapters"
install -D -m 0640 packaging/deb/gatehouse.yaml "$root/etc/gatehouse/gatehouse.yaml"
doc="$root/usr/share/doc/gatehouse"
install -d "$doc/docs"
install -m 0644 README.md CHANGELOG.md "$doc/"
install -m 0644 config/gatehouse.example.yaml "$doc/gatehouse.example.yaml"
install -m 0644 docs/*.md docs/event.schema.json "$doc/docs/"
find "$root/usr/share" -type d -exec chmod 0755 {} +
find "$root/usr/share" -type f -exec chmod 0644 {} +

install -d "$root/DEBIAN"
install -m 0755 packaging/deb/postinst packaging/deb/prerm packaging/deb/postrm "$root/DEBIAN/"
echo /etc/gatehouse/gatehouse.yaml > "$root/DEBIAN/conffiles"
size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
cat > "$root/DEBIAN/control" <<EOF
Package: gatehouse
Version: $version
Architecture: $arch
Maintainer: Gatehouse maintainers <gatehouse@localhost>
Installed-Size: $size
Depends: adduser, libc6, libgcc-s1, libstdc++6, libsqlite3-0, libmosquitto1, libjpeg62-turbo, libxml2, zlib1g
Section: net
Priority: optional
Description: edge gateway for community gates, plate cameras and door controllers
 Gatehouse takes events from barrier gates, licence-plate cameras, door-access
 controllers and IP cameras of many brands, normalizes them into one event
 schema, keeps them in a durable SQLite queue and forwards them to central
 stores. Runs as a hardened systemd service under the system user gatehouse.
EOF

mkdir -p "$output"
dpkg-deb --build --root-owner-group -Z"$compress" "$root" "$output" >&2
echo "$output/gatehouse_${version}_${arch}.deb"
