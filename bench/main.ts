// `npm run bench`: the nine benchmarks against the real Kamailio built from kamailio/, sipp and the mock
// providers on loopback. Writes bench/results/<date>.json (and latest.json) and prints a Markdown table.
//   --quick            tiny counts (what the smoke test in npm test runs; figures not meaningful)
//   --only a,b         some of: wake, register, helper, memory, hostile, cluster, restart, storm (merged into latest.json)
//   --no-write         print only
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { benchCluster } from "./cluster";
import { benchHelperThroughput } from "./helper-throughput";
import { benchHostileCost } from "./hostile-cost";
import { benchMemory } from "./memory";
import { RESULTS_DIR } from "./lib/paths";
import { benchRegisterCost } from "./register-cost";
import { benchRegistrationStorm } from "./registration-storm";
import { evaluate, GOALS, machineAndVersions, markdownTable, type BenchResults, type RestartFigures } from "./report";
import { benchRestartWithDevices, type RestartWithDevicesResult } from "./restart-with-devices";
import { benchWakeLatency } from "./wake-latency";

export const BENCHMARKS = ["wake", "register", "helper", "memory", "hostile", "cluster", "restart", "storm"] as const;
export type BenchmarkName = (typeof BENCHMARKS)[number];

/** Sizes of a full run (the issue's) and of a quick one (the smoke test's). */
export const SIZES = {
  full: {
    wake: { calls: 100, rate: 200, warmUpCalls: 10 },
    register: { registers: 20_000, rounds: 3, rate: 2000 },
    // Best of 3 alternated rounds per client: on a shared 2-core machine one round moves by ±20%. 2 000 in flight,
    // two per token: more than one connection's 1 000 streams, so a pool of one connection would queue half of them.
    helper: { pushes: 100_000, concurrency: 2000, rounds: 3 },
    // Closed loop (at most 50 REGISTERs in flight): the plugin costs about 0.3 ms of CPU per REGISTER (benchmark 3),
    // and an open-loop rate Kamailio cannot follow ends in retransmission timeouts.
    memory: { devices: 100_000, rate: 5000, limit: 50 },
    hostile: { requests: 300, rounds: 3 },
    // Wakes at 20/s: a wake on another node costs every node CPU (a changed record written to PostgreSQL and
    // replicated, the binding replicated, a KDMQ request, the INVITE relayed twice), and at benchmark 1's 200/s three
    // nodes on 2 cores queued the REGISTERs (p50 196 ms in one run on a loaded machine): throughput, not latency. Propagation at a
    // steady 200 new devices per second; REGISTER CPU as benchmark 3, in a closed loop as benchmark 5.
    cluster: {
      calls: 100,
      rate: 20,
      warmUpCalls: 10,
      propagationPhones: 1000,
      propagationRate: 200,
      registers: 20_000,
      registerRounds: 3,
      registerRate: 2000,
      registerLimit: 50,
    },
    // A million rows need 2 GB of shared memory and htables of 2^20 slots (pusher.cfg PUSHER_*_HTABLE_SIZE).
    restart: { devices: 1_000_000, callRate: 20, sharedMemoryMb: 2048, htableSize: 20 },
    // 100 000 phones within 60 s: 1667 REGISTERs per second.
    storm: { phones: 100_000, seconds: 60, calls: 100, callRate: 10, sharedMemoryMb: 1024, htableSize: 17 },
  },
  quick: {
    wake: { calls: 5, rate: 100, warmUpCalls: 1 },
    register: { registers: 200, rounds: 1, rate: 1000 },
    helper: { pushes: 300, concurrency: 50, rounds: 1 },
    memory: { devices: 300, rate: 1000, limit: 50 },
    hostile: { requests: 5, rounds: 1 },
    cluster: {
      calls: 3,
      rate: 100,
      warmUpCalls: 1,
      propagationPhones: 10,
      propagationRate: 100,
      registers: 200,
      registerRounds: 1,
      registerRate: 1000,
      registerLimit: 50,
    },
    restart: { devices: 5000, callRate: 20, sharedMemoryMb: 256, htableSize: 14 },
    storm: { phones: 300, seconds: 3, calls: 3, callRate: 10, sharedMemoryMb: 256, htableSize: 14 },
  },
};

export async function runBenchmarks(options: {
  quick: boolean;
  only: BenchmarkName[];
  log: (line: string) => void;
}): Promise<BenchResults> {
  const sizes = options.quick ? SIZES.quick : SIZES.full;
  const { machine, versions } = machineAndVersions();
  const results: BenchResults = {
    date: new Date().toISOString(),
    quick: options.quick,
    benchmarks: BENCHMARKS.filter((name) => options.only.includes(name)),
    machine,
    versions,
    goals: GOALS,
    met: {},
    details: {},
    errors: {},
    notes: [],
  };
  const log = options.log;
  // One failing benchmark is recorded (errors, notes) and the others still run: a product change that breaks one
  // figure must not hide the others.
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
    if (!helper.samePool)
      results.notes.push(
        "helper: the helper's pool is not the bare loop's (one connection per app and host): see details.helper.pools",
      );
  });
  await attempt("memory", async () => {
    const memory = await benchMemory(sizes.memory, log);
    results.details.memory = memory;
    results.shmBytesPerDevice = memory.shmBytesPerDevice;
  });
  await attempt("hostile", async () => {
    const hostile = await benchHostileCost(sizes.hostile, log);
    results.details.hostile = hostile;
    results.hostileRegisterCpuRatio = hostile.hostileRegisterCpuRatio;
    results.hostileInviteCpuRatio = hostile.hostileInviteCpuRatio;
  });
  await attempt("cluster", async () => {
    const cluster = await benchCluster(sizes.cluster, log);
    results.details.cluster = cluster;
    results.crossNodeWakeLatencyMs = cluster.crossNodeWakeLatencyMs;
    results.recordPropagationMs = cluster.recordPropagationMs;
    const postgres = cluster.registerCpuPostgres;
    results.registerCpuPostgres = {
      postgresUs: postgres.pluginPostgresUsPerRegister,
      sqliteUs: postgres.pluginSqliteUsPerRegister,
      ratio: postgres.postgresVsSqlite,
    };
  });
  await attempt("restart", async () => {
    // sqlite first, then PostgreSQL: the same restart, figures and goal; sqlite's stay when PostgreSQL's fail.
    const sqlite = await benchRestartWithDevices({ ...sizes.restart, database: "sqlite" }, log);
    results.details.restart = { sqlite };
    results.restartWithDevices = restartFigures(sqlite);
    const postgres = await benchRestartWithDevices({ ...sizes.restart, database: "postgres" }, log);
    results.details.restart.postgres = postgres;
    results.restartWithDevices.postgres = restartFigures(postgres);
  });
  await attempt("storm", async () => {
    const storm = await benchRegistrationStorm(sizes.storm, log);
    results.details.storm = storm;
    results.registrationStorm = {
      phones: storm.phones,
      answered: storm.registersAnswered,
      lost: storm.registersLost,
      responseP99Ms: storm.registerResponseMs.p99,
      cpuUsPerRegister: storm.cpuUsPerRegister,
      calls: storm.calls,
      callsPushed: storm.callsPushed,
      callsWoken: storm.callsWoken,
      wakeLatencyMs: storm.wakeLatencyMs,
      dispatchLatencyMs: storm.dispatchLatencyMs,
    };
  });
  evaluate(results);
  return results;
}

/** Benchmark 8's key figures of one device database (latest.json `restartWithDevices`, and its `postgres`). */
function restartFigures(restart: RestartWithDevicesResult): RestartFigures {
  return {
    devices: restart.devices,
    firstPushSeconds: restart.firstPushSeconds,
    allLoadedSeconds: restart.allLoadedSeconds,
    callsDuringLoad: restart.callsDuringLoad,
  };
}

// With the versions they were measured on: a run on Kamailio 6.0 after one on 5.6 says so in `previous`.
const KEY_FIGURES = [
  "date",
  "versions",
  "wakeLatencyMs",
  "dispatchLatencyMs",
  "registerCpuRatio",
  "registerCpuRatioRefresh",
  "helperPushesPerSec",
  "shmBytesPerDevice",
  "hostileRegisterCpuRatio",
  "hostileInviteCpuRatio",
  "crossNodeWakeLatencyMs",
  "recordPropagationMs",
  "registerCpuPostgres",
  "restartWithDevices",
  "registrationStorm",
  "met",
  "mergedRuns",
] as const;

/** The top-level figures each benchmark writes (its details go under details.<name>). */
const FIGURES_OF: Record<BenchmarkName, (keyof BenchResults)[]> = {
  wake: ["wakeLatencyMs", "dispatchLatencyMs"],
  register: ["registerCpuRatio", "registerCpuRatioRefresh"],
  helper: ["helperPushesPerSec"],
  memory: ["shmBytesPerDevice"],
  hostile: ["hostileRegisterCpuRatio", "hostileInviteCpuRatio"],
  cluster: ["crossNodeWakeLatencyMs", "recordPropagationMs", "registerCpuPostgres"],
  restart: ["restartWithDevices"],
  storm: ["registrationStorm"],
};

/**
 * What latest.json becomes after a run of some benchmarks only (--only): the latest results with this run's
 * benchmarks replaced (figures, details, errors), the goals evaluated again, and the run listed in `mergedRuns`
 * with its date, machine and versions; date, machine and versions stay those of the run the rest comes from.
 */
export function mergeResults(latest: BenchResults, run: BenchResults): BenchResults {
  const merged: BenchResults = {
    ...latest,
    details: { ...latest.details },
    errors: { ...latest.errors },
    goals: run.goals,
  };
  const figures = merged as unknown as Record<string, unknown>;
  const ran = run.benchmarks ?? [];
  for (const name of ran as BenchmarkName[]) {
    for (const key of FIGURES_OF[name]) figures[key] = run[key];
    (merged.details as Record<string, unknown>)[name] = run.details[name];
    if (run.errors[name]) merged.errors[name] = run.errors[name];
    else delete merged.errors[name];
  }
  merged.notes = [...latest.notes, ...run.notes.map((note) => `${run.date}: ${note}`)];
  merged.previous = run.previous;
  merged.mergedRuns = [
    ...(latest.mergedRuns ?? []).filter((entry) => !entry.benchmarks.every((name) => ran.includes(name))),
    { benchmarks: ran, date: run.date, machine: run.machine, versions: run.versions },
  ];
  evaluate(merged);
  return merged;
}

/**
 * Writes bench/results/<date>.json and latest.json; the previous latest's key figures go in as `previous`. A run of
 * some benchmarks only (--only) is merged into latest.json (mergeResults), so it keeps the other benchmarks' figures.
 */
export function writeResults(results: BenchResults): string {
  mkdirSync(RESULTS_DIR, { recursive: true });
  const latest = join(RESULTS_DIR, "latest.json");
  const before = existsSync(latest) ? (JSON.parse(readFileSync(latest, "utf8")) as BenchResults) : null;
  if (before && !before.quick) results.previous = Object.fromEntries(KEY_FIGURES.map((key) => [key, before[key]]));
  const file = join(RESULTS_DIR, `${results.date.replace(/:/g, "-").replace(/\.\d+Z$/, "Z")}.json`);
  writeFileSync(file, JSON.stringify(results, null, 2) + "\n");
  const partial = results.benchmarks !== undefined && results.benchmarks.length < BENCHMARKS.length;
  if (partial && before && !before.quick)
    writeFileSync(latest, JSON.stringify(mergeResults(before, results), null, 2) + "\n");
  else copyFileSync(file, latest);
  return file;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { quick: { type: "boolean" }, only: { type: "string" }, "no-write": { type: "boolean" } },
    strict: true,
  });
  const only = (values.only ? values.only.split(",") : [...BENCHMARKS]) as BenchmarkName[];
  for (const name of only)
    if (!BENCHMARKS.includes(name))
      throw new Error(`--only: unknown benchmark ${JSON.stringify(name)}; use ${BENCHMARKS.join(", ")}`);
  const started = Date.now();
  const results = await runBenchmarks({
    quick: values.quick ?? false,
    only,
    log: (line) => console.log(`[bench] ${line}`),
  });
  console.log("\n" + markdownTable(results) + "\n");
  // Quick runs only prove the code works: they never replace a real run's latest.json.
  if (!values["no-write"] && !values.quick)
    console.log(
      `results: ${writeResults(results)} (and bench/results/latest.json${results.benchmarks!.length < BENCHMARKS.length ? ", merged" : ""})`,
    );
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
