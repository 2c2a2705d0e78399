// `npm run bench`: the five benchmarks against the real Kamailio built from kamailio/, sipp and the mock
// providers on loopback. Writes bench/results/<date>.json (and latest.json) and prints a Markdown table.
//   --quick            tiny counts (what the smoke test in npm test runs; figures not meaningful)
//   --only a,b         some of: wake, register, helper, memory
//   --no-write         print only
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { benchHelperThroughput } from "./helper-throughput";
import { benchMemory } from "./memory";
import { RESULTS_DIR } from "./lib/paths";
import { benchRegisterCost } from "./register-cost";
import { evaluate, GOALS, machineAndVersions, markdownTable, type BenchResults } from "./report";
import { benchWakeLatency } from "./wake-latency";

export const BENCHMARKS = ["wake", "register", "helper", "memory"] as const;
export type BenchmarkName = (typeof BENCHMARKS)[number];

/** Sizes of a full run (the issue's) and of a quick one (the smoke test's). */
export const SIZES = {
  full: {
    wake: { calls: 100, rate: 200, warmUpCalls: 10 },
    register: { registers: 20_000, rounds: 3, rate: 2000 },
    // Best of 3 alternated rounds per client: on a shared 2-core machine one round moves by ±20%.
    helper: { pushes: 100_000, concurrency: 100, rounds: 3 },
    // Closed loop (at most 50 REGISTERs in flight): the plugin costs about 0.3 ms of CPU per REGISTER (benchmark 3),
    // and an open-loop rate Kamailio cannot follow ends in retransmission timeouts.
    memory: { devices: 100_000, rate: 5000, limit: 50 },
  },
  quick: {
    wake: { calls: 5, rate: 100, warmUpCalls: 1 },
    register: { registers: 200, rounds: 1, rate: 1000 },
    helper: { pushes: 300, concurrency: 20, rounds: 1 },
    memory: { devices: 300, rate: 1000, limit: 50 },
  },
};

export async function runBenchmarks(options: { quick: boolean; only: BenchmarkName[]; log: (line: string) => void }): Promise<BenchResults> {
  const sizes = options.quick ? SIZES.quick : SIZES.full;
  const { machine, versions } = machineAndVersions();
  const results: BenchResults = { date: new Date().toISOString(), quick: options.quick, machine, versions, goals: GOALS, met: {}, details: {}, errors: {}, notes: [] };
  const log = options.log;
  // One failing benchmark is recorded (errors, notes) and the others still run: a product change that breaks one
  // figure must not hide the other four.
  const attempt = async (name: BenchmarkName, body: () => Promise<void>) => {
    if (!options.only.includes(name)) return;
    try {
      await body();
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      results.errors[name] = message.slice(0, 4000);
      results.notes.push(`${name}: failed: ${message.split("\n")[0]}`);
      log(`${name}: FAILED: ${message.slice(0, 2000)}`);
    }
  };
  await attempt("wake", async () => {
    const wake = await benchWakeLatency(sizes.wake, log);
    results.details.wake = wake;
    results.wakeLatencyMs = wake.wakeLatencyMs;
    results.dispatchLatencyMs = wake.dispatchLatencyMs;
  });
  await attempt("register", async () => {
    const register = await benchRegisterCost(sizes.register, log);
    results.details.register = register;
    results.registerCpuRatio = register.registerCpuRatio;
    results.registerCpuRatioRefresh = register.registerCpuRatioRefresh;
  });
  await attempt("helper", async () => {
    const helper = await benchHelperThroughput(sizes.helper, log);
    results.details.helper = helper;
    results.helperPushesPerSec = helper.helperPushesPerSec;
    if (helper.helperAuth !== "token") results.notes.push(`the helper ran with ${helper.helperAuth} auth: its config does not accept token auth yet`);
  });
  await attempt("memory", async () => {
    const memory = await benchMemory(sizes.memory, log);
    results.details.memory = memory;
    results.shmBytesPerDevice = memory.shmBytesPerDevice;
  });
  evaluate(results);
  return results;
}

// With the versions they were measured on: a run on Kamailio 6.0 after one on 5.6 says so in `previous`.
const KEY_FIGURES = ["date", "versions", "wakeLatencyMs", "dispatchLatencyMs", "registerCpuRatio", "registerCpuRatioRefresh", "helperPushesPerSec", "shmBytesPerDevice", "met"] as const;

/** Writes bench/results/<date>.json and latest.json; the previous latest's key figures go in as `previous`. */
export function writeResults(results: BenchResults): string {
  mkdirSync(RESULTS_DIR, { recursive: true });
  const latest = join(RESULTS_DIR, "latest.json");
  if (existsSync(latest)) {
    const before = JSON.parse(readFileSync(latest, "utf8")) as Record<string, unknown>;
    if (!before.quick) results.previous = Object.fromEntries(KEY_FIGURES.map((key) => [key, before[key]]));
  }
  const file = join(RESULTS_DIR, `${results.date.replace(/:/g, "-").replace(/\.\d+Z$/, "Z")}.json`);
  writeFileSync(file, JSON.stringify(results, null, 2) + "\n");
  copyFileSync(file, latest);
  return file;
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { quick: { type: "boolean" }, only: { type: "string" }, "no-write": { type: "boolean" } }, strict: true });
  const only = (values.only ? values.only.split(",") : [...BENCHMARKS]) as BenchmarkName[];
  for (const name of only) if (!BENCHMARKS.includes(name)) throw new Error(`--only: unknown benchmark ${JSON.stringify(name)}; use ${BENCHMARKS.join(", ")}`);
  const started = Date.now();
  const results = await runBenchmarks({ quick: values.quick ?? false, only, log: (line) => console.log(`[bench] ${line}`) });
  console.log("\n" + markdownTable(results) + "\n");
  // Quick runs only prove the code works: they never replace a real run's latest.json.
  if (!values["no-write"] && !values.quick) console.log(`results: ${writeResults(results)} (and bench/results/latest.json)`);
  console.log(`bench: done in ${Math.round((Date.now() - started) / 1000)} s`);
  if (Object.keys(results.errors).length) process.exitCode = 1;
}

// Run as the entry (bench/run.mjs imports the bundle), not when the smoke test imports runBenchmarks.
if (process.argv[1] && /bench[\\/]run\.mjs$/.test(process.argv[1])) {
  main().catch((error: unknown) => {
    console.error(error instanceof Error ? (error.stack ?? error.message) : String(error));
    process.exitCode = 1;
  });
}
