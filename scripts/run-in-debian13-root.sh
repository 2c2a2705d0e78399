#!/usr/bin/env bash
# Runs one program of the Debian 13 root (scripts/ensure-debian13-root.sh) as if it were installed here, e.g.
# `scripts/run-in-debian13-root.sh /usr/sbin/kamailio -v`. The root sees this machine's /dev, /proc and /tmp and
# this checkout at their own paths: the tests hand Kamailio files under /tmp and the checkout and reach it over
# loopback and unix sockets under /tmp. The bind mounts live in a private mount namespace (unshare -m): they end
# with the program however it ends, and an `rm -rf` of the root outside cannot follow them.
# Every step execs the next (unshare, this script again, chroot, env, the program): the program keeps the pid its
# caller spawned and gets the signals sent to it (the crash tests kill -9 Kamailio by pid).
set -euo pipefail
PATH=$PATH:/usr/sbin:/sbin # chroot lives in /usr/sbin
root=${PUSHER_DEBIAN13_ROOT:-/var/cache/kamailio-pusher/trixie}
self=$(readlink -f "$0")
if [ "${1:-}" != --in-namespace ]; then
  if [ ! -x "$root${1:-/}" ] || [ -d "$root${1:-/}" ]; then
    echo "$(basename "$0"): no ${1:-program} in $root: run scripts/ensure-debian13-root.sh" >&2
    exit 127
  fi
  exec unshare --mount --propagation private -- "$self" --in-namespace "$@"
fi
shift
checkout=$(cd "$(dirname "$self")/.." && pwd -P)
mount --rbind /dev "$root/dev"
mount --rbind /proc "$root/proc"
mount --rbind /tmp "$root/tmp"
mkdir -p "$root$checkout"
mount --bind "$checkout" "$root$checkout"
# chroot starts the program in /: keep the caller's directory when the root sees it (relative paths in arguments).
cwd=$(pwd -P)
case "$cwd/" in "$checkout"/* | /tmp/*) ;; *) cwd=/ ;; esac
exec chroot "$root" /usr/bin/env --chdir="$cwd" "$@"
