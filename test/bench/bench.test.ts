// The benchmark code's smoke test: every benchmark of `npm run bench` runs with tiny counts against the real
// Kamailio, sipp and the mock providers, and produces every field the results file promises. Figures are not
// checked (shared, noisy machines): only that they exist and are numbers.
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { runBenchmarks, BENCHMARKS } from "../../bench/main";
import { markdownTable, type BenchResults } from "../../bench/report";
import { testCaDir } from "../support/mock-apns";

let results: BenchResults;

beforeAll(async () => {
  testCaDir(); // fails with the commands to run when the test CA is not trusted
  // tshark (the loopback capture) is not among npm test's own dependencies: install it when missing (and PostgreSQL
  // for the cluster benchmark, which ensure-deps.sh --test installs too).
  execFileSync("bash", [join(import.meta.dirname, "..", "..", "bench", "ensure-bench-deps.sh")], { stdio: "inherit" });
  // The restart and storm benchmarks (8, 9) take about 50 s of it.
  results = await runBenchmarks({ quick: true, only: [...BENCHMARKS], log: () => {} });
}, 420_000);

it("runs every benchmark without an error", () => {
  expect(results.errors).toEqual({});
});

function isNumber(value: unknown): boolean {
  return typeof value === "number" && Number.isFinite(value);
}

describe("npm run bench, with tiny counts", () => {
  it("measures wake latency from the capture: p50, p99 and max", () => {
    for (const field of ["p50", "p99", "max"] as const)
      expect(isNumber(results.wakeLatencyMs?.[field]), field).toBe(true);
    expect(results.details.wake?.wakeLatencyMs.count).toBe(results.details.wake?.calls);
  });

  it("measures push dispatch latency for every held call: p50 and p99", () => {
    for (const field of ["p50", "p99"] as const) expect(isNumber(results.dispatchLatencyMs?.[field]), field).toBe(true);
    expect(results.details.wake?.dispatchLatencyMs.count).toBe(results.details.wake?.calls);
  });

  it("compares the REGISTER CPU time with and without the plugin's hook", () => {
    expect(isNumber(results.registerCpuRatio)).toBe(true);
    const variants = results.details.register?.rounds.map((round) => round.variant).sort();
    expect(variants).toEqual(["empty-plugin", "no-hook", "plugin"]);
    expect(isNumber(results.details.register?.emptyPluginCpuRatio)).toBe(true);
    expect(isNumber(results.registerCpuRatioRefresh)).toBe(true);
  });

  it("measures pushes per second to 10 apps' tokens for the helper and a bare node:http2 loop, and counts their connections at the mock", () => {
    const perSec = results.helperPushesPerSec;
    for (const client of ["pusher", "bareHttp2"] as const) expect(isNumber(perSec?.[client]), client).toBe(true);
    const helper = results.details.helper;
    // One connection per app and host (10 apps, production and sandbox), each carrying one app's key.
    for (const pool of [helper?.pools.pusher, helper?.pools.bareHttp2]) {
      expect(pool?.byHost).toEqual({ production: 10, sandbox: 10 });
      expect(pool?.maxKeysPerConnection).toBe(1);
      expect(pool?.maxActiveStreams).toBeLessThanOrEqual(helper!.maxConcurrentStreams);
    }
    expect(helper?.samePool).toBe(true);
  });

  it("measures shared memory per stored device", () => {
    expect(isNumber(results.shmBytesPerDevice)).toBe(true);
    expect(results.shmBytesPerDevice).toBeGreaterThan(0);
  });

  it("measures the Kamailio CPU of hostile REGISTERs and INVITEs next to normal ones", () => {
    const hostile = results.details.hostile;
    for (const cpu of [hostile?.registerCpuUs, hostile?.inviteCpuUs]) {
      expect(Object.keys(cpu ?? {}).length, "kinds measured").toBeGreaterThan(1);
      for (const [kind, us] of Object.entries(cpu ?? {})) expect(isNumber(us), kind).toBe(true);
    }
    expect(isNumber(results.hostileRegisterCpuRatio)).toBe(true);
    expect(isNumber(results.hostileInviteCpuRatio)).toBe(true);
  });

  it("measures a three-node cluster: cross-node wake latency, record propagation, REGISTER CPU with PostgreSQL", () => {
    const cluster = results.details.cluster;
    for (const field of ["p50", "p99", "max"] as const) {
      expect(isNumber(results.crossNodeWakeLatencyMs?.[field]), `wake ${field}`).toBe(true);
      expect(isNumber(results.recordPropagationMs?.[field]), `propagation ${field}`).toBe(true);
    }
    expect(results.crossNodeWakeLatencyMs?.count).toBe(cluster?.calls);
    expect(cluster?.holdingNodeInviteMs.count).toBe(cluster?.calls);
    // One sample per phone and other node.
    expect(results.recordPropagationMs?.count).toBe(2 * cluster!.propagationPhones);
    for (const field of ["postgresUs", "sqliteUs", "ratio"] as const)
      expect(isNumber(results.registerCpuPostgres?.[field]), field).toBe(true);
    expect(cluster?.registerCpuPostgres.rounds.map((round) => round.database).sort()).toEqual([
      "no-hook",
      "postgres",
      "sqlite",
    ]);
    expect(isNumber(cluster?.registerCpuPostgres.postgresServerUsPerRegister)).toBe(true);
  });

  it("restarts with device records seeded in sqlite and in PostgreSQL: seconds to a pushed call and to every record loaded, and the calls meanwhile", () => {
    const sqlite = results.restartWithDevices;
    for (const restart of [sqlite, sqlite?.postgres]) {
      for (const field of ["firstPushSeconds", "allLoadedSeconds"] as const)
        expect(isNumber(restart?.[field]), field).toBe(true);
      const calls = restart!.callsDuringLoad;
      expect(calls.pushed + calls.refusedWithoutPush + calls.wrongPush + calls.unanswered).toBe(calls.sent);
      // Never a push to another phone's token.
      expect(calls.wrongPush).toBe(0);
    }
    const details = results.details.restart;
    expect([details?.sqlite.database, details?.postgres?.database]).toEqual(["sqlite", "postgres"]);
    expect(isNumber(details?.sqlite.loadCpuSeconds)).toBe(true);
    expect(details?.postgres?.databaseCpuSeconds).toBeGreaterThan(0);
    expect(results.met).toHaveProperty("restartFirstPushPostgres");
  });

  it("runs a registration storm of known phones after a restart: answered, lost, response p99, CPU, and calls' latencies", () => {
    const storm = results.registrationStorm;
    expect(storm!.answered + storm!.lost).toBe(storm!.phones);
    for (const field of ["responseP99Ms", "cpuUsPerRegister"] as const)
      expect(isNumber(storm?.[field]), field).toBe(true);
    expect(storm?.wakeLatencyMs.count).toBe(results.details.storm?.calls);
    expect(storm?.dispatchLatencyMs.count).toBe(results.details.storm?.calls);
  });

  it("records the Kamailio it ran on (the kamailio in PATH) and names it on the table's first line", () => {
    const inPath = execFileSync("kamailio", ["-v"], { encoding: "utf8" })
      .split("\n")[0]
      .replace(/^version:\s*/, "")
      .trim();
    expect(results.versions.kamailio).toBe(inPath);
    expect(markdownTable(results).split("\n")[0]).toMatch(
      new RegExp(`^Benchmarks \\S+ on ${inPath.replace(/[().]/g, "\\$&")} \\(quick`),
    );
  });

  it("prints every figure next to its goal, with the core count and tool versions", () => {
    const table = markdownTable(results);
    expect(table).toMatch(/\d+ cores/);
    for (const tool of ["kamailio", "sipp", "tshark", "node"]) expect(table).toContain(tool);
    for (const goal of [
      "p99 ≤ 5 ms",
      "p99 ≤ 10 ms",
      "≤ 2.5",
      "≤ 1.2",
      "≥ 0.9×",
      "≤ 1024 bytes",
      "≤ 10×",
      "p99 ≤ 100 ms",
      "≤ 30 s, pushed correctly",
      "0 lost",
    ])
      expect(table).toContain(goal);
  });
});
