#!/usr/bin/env bash
# Installs what the benchmarks need beyond scripts/ensure-deps.sh: tshark (Debian package; brings dumpcap) for
# the loopback capture that times SIP packets, and for the cluster benchmark PostgreSQL with Kamailio's db_postgres
# (as scripts/ensure-deps.sh --test does). Does nothing when they are there.
set -euo pipefail
MODULES=/usr/lib/x86_64-linux-gnu/kamailio/modules
packages=()
command -v tshark >/dev/null && command -v dumpcap >/dev/null || packages+=(tshark)
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || packages+=(postgresql)
[ -f "$MODULES/db_postgres.so" ] || packages+=(kamailio-postgres-modules)
if [ ${#packages[@]} -gt 0 ]; then
  echo "installing Debian packages: ${packages[*]}"
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  # wireshark-common asks whether non-root users may capture: the default (no) is right, root runs the bench.
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "${packages[@]}" >/dev/null
fi
