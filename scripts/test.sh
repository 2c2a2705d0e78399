#!/usr/bin/env bash
# `npm test`: installs what is missing, builds, lints (`npm run lint`: type-checks, the plugin against the KSR types
# of Kamailio 5.6 and 6.0, and the formatter's check), makes the test CA the mock providers use, and runs every test
# on the kamailio in PATH (Debian 12's 5.6) and, at the same time, the integration suite (test/integration) on
# Debian 13's Kamailio 6.0, run from the root scripts/ensure-debian13-root.sh makes once per machine (docs/kamailio-versions.md). Trust in the test CA goes
# only through NODE_EXTRA_CA_CERTS, read by Node at start: exported here, before vitest and the helpers it spawns.
#   npm test -- <vitest args>           those tests only, on 5.6
#   npm test -- --kamailio 6.0 [args]   on 6.0 only (test/integration unless args name others);
#                                       npm run test:faults -- --kamailio 6.0 runs the fault suite on 6.0
set -euo pipefail
cd "$(dirname "$0")/.."

kamailio=""
args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --kamailio) kamailio=${2:-}; shift 2 || { echo "test.sh: --kamailio needs 5.6 or 6.0" >&2; exit 2; } ;;
    *) args+=("$1"); shift ;;
  esac
done
case "$kamailio" in
  "" | 5.6 | 6.0) ;;
  *) echo "test.sh: --kamailio $kamailio: use 5.6 (the kamailio in PATH) or 6.0 (the Debian 13 root)" >&2; exit 2 ;;
esac
# The plain `npm test` runs both; named tests or a version run once.
on_host=yes
on_6_0=no
if [ "$kamailio" = 6.0 ]; then on_host=no; on_6_0=yes; elif [ -z "$kamailio" ] && [ ${#args[@]} -eq 0 ]; then on_6_0=both; fi

bash scripts/ensure-deps.sh --test
node build.mjs
# The three type-checks (the plugin against the KSR types of 5.6 and 6.0) and the formatter's check (Prettier, 120
# columns: `npm run format` fixes what it finds).
npm run --silent lint
node test/support/make-test-ca.mjs build/test-ca
export NODE_EXTRA_CA_CERTS="$PWD/build/test-ca/ca.pem"
rm -f build/vitest-results.json
status=0
not_on_6_0=""

# Without the root a developer's run goes on with 5.6 only, saying so in the root script's one line; CI must not.
if [ "$on_6_0" = both ]; then
  if [ "${CI:-}" = true ]; then otherwise="CI=true: the integration suite must run on 6.0 too: failing"; else otherwise="running on Kamailio 5.6 only"; fi
  if ! bash scripts/ensure-debian13-root.sh --otherwise "$otherwise"; then
    on_6_0=no
    if [ "${CI:-}" = true ]; then not_on_6_0="Kamailio 6.0 not tested ($otherwise; why: above)"; status=1; fi
  fi
elif [ "$on_6_0" = yes ]; then
  bash scripts/ensure-debian13-root.sh
fi

# The 6.0 pass: the same files and topology with scripts/kamailio-6.0/ first in PATH; PUSHER_TEST_KAMAILIO makes
# test/integration/kamailio-in-path.test.ts fail if Kamailio were not 6.0. Beside the 5.6 pass, it writes to a log
# printed after that pass, so neither's output is interleaved. Its files are this run's own: people share checkouts.
pass_6_0=$(mktemp -d build/kamailio-6.0-pass.XXXXXX)
trap 'rm -rf "$pass_6_0"' EXIT
run_6_0() {
  local files=("${args[@]}")
  [ ${#files[@]} -gt 0 ] || files=(test/integration)
  PATH="$PWD/scripts/kamailio-6.0:$PATH" PUSHER_TEST_KAMAILIO=6.0 npx vitest run --reporter=default --reporter=json \
    --outputFile.json="$pass_6_0/results.json" "${files[@]}"
}
pid_6_0=""
if [ "$on_6_0" = both ]; then
  # Its own process group (job control on for this one job), so a stopped `npm test` stops it too.
  set -m
  run_6_0 >"$pass_6_0/output.log" 2>&1 &
  pid_6_0=$!
  set +m
  trap 'kill -TERM -- "-$pid_6_0" 2>/dev/null; rm -rf "$pass_6_0"' EXIT
fi
if [ "$on_host" = yes ]; then
  # The host pass is Debian 12's 5.6 (the lowest supported): kamailio-in-path.test.ts fails if PATH gave another.
  PUSHER_TEST_KAMAILIO=5.6 npx vitest run --reporter=default --reporter=json --outputFile.json=build/vitest-results.json "${args[@]}" || status=$?
fi
if [ "$on_6_0" = yes ]; then
  run_6_0 || status=$?
fi
if [ -n "$pid_6_0" ]; then
  wait "$pid_6_0" || status=1
  trap 'rm -rf "$pass_6_0"' EXIT
  echo
  echo "=== the integration suite on Kamailio 6.0 (Debian 13 root), run beside the tests above ==="
  cat "$pass_6_0/output.log"
fi

[ -z "$not_on_6_0" ] || echo "$not_on_6_0" >&2
# One line per Kamailio, then one plain closing line CI can read whatever the runner.
node -e '
  const { existsSync, readFileSync } = require("fs");
  const total = { passed: 0, failed: 0, skipped: 0 };
  for (const [label, file] of [["kamailio-" + (process.argv[1] || "in-PATH") + ":", "build/vitest-results.json"], ["kamailio-6.0:", process.argv[2]]]) {
    if (!existsSync(file)) continue;
    const r = JSON.parse(readFileSync(file, "utf8"));
    const line = { passed: r.numPassedTests, failed: r.numFailedTests, skipped: r.numPendingTests + r.numTodoTests };
    for (const key in total) total[key] += line[key];
    console.log(`${label} ${line.passed} passed, ${line.failed} failed, ${line.skipped} skipped`);
  }
  console.log(`tests: ${total.passed} passed, ${total.failed} failed, ${total.skipped} skipped`);
' "$(kamailio -v 2>/dev/null | sed -n 's/^version: kamailio \([0-9]*\.[0-9]*\).*/\1/p')" "$pass_6_0/results.json" || true
exit $status
