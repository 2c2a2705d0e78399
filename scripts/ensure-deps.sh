#!/usr/bin/env bash
# Installs what `npm start` and `npm test` need and a fresh Debian 12 + Node 20 machine lacks:
# Kamailio 5.6 with the modules the plugin uses, sipp (package sip-tester), duk (duktape), openssl, sqlite3
# (`pusher users` writes the users database with it), and the npm dependencies; with --test also linphonec
# (package linphone-cli: the tests' real SIP client), debootstrap (as root only: it makes the Debian 13 root for
# Kamailio 6.0, which only root can make and enter), and PostgreSQL with Kamailio's db_postgres. Does nothing when
# everything is there.
set -euo pipefail
cd "$(dirname "$0")/.."

MODULES=/usr/lib/x86_64-linux-gnu/kamailio/modules
packages=()
[ -x /usr/sbin/kamailio ] && [ -f "$MODULES/app_jsdt.so" ] || packages+=(kamailio)
[ -f "$MODULES/evapi.so" ] || packages+=(kamailio-extra-modules)
[ -f "$MODULES/http_client.so" ] || packages+=(kamailio-utils-modules)
[ -f "$MODULES/db_sqlite.so" ] || packages+=(kamailio-sqlite-modules)
[ -f "$MODULES/tls.so" ] || packages+=(kamailio-tls-modules)
command -v sipp >/dev/null || packages+=(sip-tester)
command -v duk >/dev/null || packages+=(duktape)
command -v sqlite3 >/dev/null || packages+=(sqlite3)
command -v openssl >/dev/null || packages+=(openssl)
if [ "${1:-}" = "--test" ]; then
  command -v linphonec >/dev/null || packages+=(linphone-cli)
  # Builds the Debian 13 root the integration suite also runs Kamailio 6.0 from (scripts/ensure-debian13-root.sh),
  # which needs root to make and enter: without root it is no use.
  if [ ! -x /usr/sbin/debootstrap ]; then
    if [ "$(id -u)" -eq 0 ]; then
      packages+=(debootstrap)
    else
      echo "not root: debootstrap not installed (only the Debian 13 root for Kamailio 6.0 needs it, and making that root needs root; the tests run on Kamailio 5.6 only)"
    fi
  fi
  # Device records in PostgreSQL: a throwaway cluster per test file (test/support/postgres.ts), and Kamailio's driver.
  compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || packages+=(postgresql)
  [ -f "$MODULES/db_postgres.so" ] || packages+=(kamailio-postgres-modules)
fi

if [ ${#packages[@]} -gt 0 ]; then
  echo "installing Debian packages: ${packages[*]}"
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "${packages[@]}" >/dev/null
fi

# npm ci when node_modules is missing or older than the lock file.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
