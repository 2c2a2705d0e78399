#!/usr/bin/env bash
# Makes the Debian 13 (trixie) root that Kamailio 6.0 runs from in the tests (scripts/kamailio-6.0/), once per
# machine and outside the checkout: $PUSHER_DEBIAN13_ROOT, default /var/cache/kamailio-pusher/trixie. Does nothing
# when the root is there with the same package list; rebuilds it (about a minute) when the list below changed.
# On success prints the Kamailio version the root runs; when the root cannot be made or run (not root, no
# debootstrap, no network, no permission to mount) prints one line saying why and exits 1;
# `--otherwise TEXT` ends that line with what the caller does then (scripts/test.sh: "running on 5.6 only").
set -euo pipefail
cd "$(dirname "$0")/.."
# debootstrap and chroot live in /usr/sbin, which a root shell from `su` may not have in PATH.
PATH=$PATH:/usr/sbin:/sbin

# The same Kamailio packages scripts/ensure-deps.sh installs on Debian 12, one a line: adding one is one line.
PACKAGES=(
  kamailio
  kamailio-extra-modules
  kamailio-utils-modules
  kamailio-sqlite-modules
  kamailio-tls-modules
)
ROOT=${PUSHER_DEBIAN13_ROOT:-/var/cache/kamailio-pusher/trixie}
# Written last: a root without it (a build that was killed) is built again.
STAMP="$ROOT/.kamailio-pusher-packages"
WANTED=$(printf '%s\n' "${PACKAGES[@]}")

otherwise=""
[ "${1:-}" != --otherwise ] || otherwise="; ${2:-}"

cannot() {
  echo "Kamailio 6.0: cannot use the Debian 13 root $ROOT: $*$otherwise" >&2
  exit 1
}

[ "$(id -u)" -eq 0 ] || cannot "making and entering it needs root (debootstrap, unshare -m, chroot)"
mkdir -p "$(dirname "$ROOT")" 2>/dev/null || cannot "cannot create $(dirname "$ROOT")"
# Two test runs on one machine build the root once.
{ exec {lock}>"$(dirname "$ROOT")/.lock"; } 2>/dev/null || cannot "cannot write $(dirname "$ROOT")"
flock "$lock"

if [ "$(cat "$STAMP" 2>/dev/null)" != "$WANTED" ]; then
  command -v debootstrap >/dev/null || cannot "debootstrap is not installed (scripts/ensure-deps.sh --test installs it)"
  building="$ROOT.building"
  log="$(dirname "$ROOT")/debootstrap.log"
  echo "Kamailio 6.0: building the Debian 13 root $ROOT (once per machine, about a minute)" >&2
  # Nothing is ever mounted in these paths outside a private mount namespace (scripts/run-in-debian13-root.sh),
  # so removing them cannot reach into /tmp or the checkout.
  rm -rf "$building"
  # debootstrap's default mirror; DEBIAN_MIRROR picks another (a local mirror or proxy).
  debootstrap --variant=minbase --include="$(IFS=,; echo "${PACKAGES[*]}")" trixie "$building" ${DEBIAN_MIRROR:+"$DEBIAN_MIRROR"} >"$log" 2>&1 ||
    cannot "debootstrap failed, see $log"
  rm -f "$building"/var/cache/apt/archives/*.deb
  rm -rf "$ROOT"
  mv "$building" "$ROOT"
  echo "$WANTED" >"$STAMP"
fi

# Proves the namespace, the mounts and the chroot work here, and names the version.
output=$(scripts/kamailio-6.0/kamailio -v 2>&1) || cannot "running Kamailio in it failed: ${output%%$'\n'*}"
version=${output%%$'\n'*}
version=${version%% }
case "$version" in
  "version: kamailio 6.0."*) echo "Kamailio 6.0: ${version#version: } from $ROOT" ;;
  *) cannot "it runs \"$version\", not Kamailio 6.0" ;;
esac
