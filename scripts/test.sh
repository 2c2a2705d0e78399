#!/usr/bin/env bash
# `npm test`: installs what is missing, builds, type-checks (the plugin against the generated KSR types),
# makes the test CA the mock providers use, and runs every test. Trust in the test CA goes only through
# NODE_EXTRA_CA_CERTS, read by Node at start: exported here, before vitest and the helpers it spawns start.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-deps.sh --test
node build.mjs
npx tsc --noEmit -p tsconfig.json
npx tsc --noEmit -p src/plugin/tsconfig.json
node test/support/make-test-ca.mjs build/test-ca
export NODE_EXTRA_CA_CERTS="$PWD/build/test-ca/ca.pem"
status=0
npx vitest run --reporter=default --reporter=json --outputFile.json=build/vitest-results.json "$@" || status=$?
# One plain closing line CI can read whatever the runner.
node -e '
  const r = JSON.parse(require("fs").readFileSync("build/vitest-results.json", "utf8"));
  console.log(`tests: ${r.numPassedTests} passed, ${r.numFailedTests} failed, ${r.numPendingTests + r.numTodoTests} skipped`);
' || true
exit $status
