// Where things are. Bench code runs both from source (vitest smoke test) and bundled into build/bench/ by
// bench/run.mjs, so the package root is found by walking up to kamailio/pusher.cfg, not by a fixed depth.
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";

function findRoot(start: string): string {
  let dir = start;
  while (!existsSync(join(dir, "kamailio", "pusher.cfg"))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`bench: cannot find kamailio/pusher.cfg above ${start}`);
    dir = parent;
  }
  return dir;
}

export const ROOT = findRoot(import.meta.dirname);
export const BENCH_DIR = join(ROOT, "bench");
export const SCENARIO_DIR = join(BENCH_DIR, "sipp");
export const RESULTS_DIR = join(BENCH_DIR, "results");
export const TEST_CA_DIR = join(ROOT, "build", "test-ca");
