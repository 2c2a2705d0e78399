// Where things are. Bench code runs both from source (vitest smoke test) and bundled into build/bench/ by
// bench/run.mjs, so the package root is found as the CLI finds it: by walking up to kamailio/pusher.cfg.
import { join } from "node:path";
import { packageRoot } from "../../src/cli/kamailio-runtime";

export const ROOT = packageRoot();
export const BENCH_DIR = join(ROOT, "bench");
export const SCENARIO_DIR = join(BENCH_DIR, "sipp");
export const RESULTS_DIR = join(BENCH_DIR, "results");
export const TEST_CA_DIR = join(ROOT, "build", "test-ca");
