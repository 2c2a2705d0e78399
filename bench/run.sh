#!/usr/bin/env bash
# `npm run bench`: installs what is missing (the project's dependencies, then tshark for the loopback capture),
# builds, makes the test CA the mock providers use (trusted only through NODE_EXTRA_CA_CERTS, read by Node at
# start), and runs the benchmarks. Arguments go to bench/main.ts (--quick, --only wake,register,helper,memory,hostile,cluster,restart,storm).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-deps.sh
bash bench/ensure-bench-deps.sh
node build.mjs
node test/support/make-test-ca.mjs build/test-ca
export NODE_EXTRA_CA_CERTS="$PWD/build/test-ca/ca.pem"
node bench/run.mjs "$@"
