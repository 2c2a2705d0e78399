#!/usr/bin/env bash
# Installs what the benchmarks need beyond scripts/ensure-deps.sh: tshark (Debian package; brings dumpcap) for
# the loopback capture that times SIP packets. Does nothing when it is there.
set -euo pipefail
if ! command -v tshark >/dev/null || ! command -v dumpcap >/dev/null; then
  echo "installing Debian package: tshark"
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  # wireshark-common asks whether non-root users may capture: the default (no) is right, root runs the bench.
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq tshark >/dev/null
fi
