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
  // tshark (the loopback capture) is not among npm test's own dependencies: install it when missing.
  execFileSync("bash", [join(import.meta.dirname, "..", "..", "bench", "ensure-bench-deps.sh")], { stdio: "inherit" });
  results = await runBenchmarks({ quick: true, only: [...BENCHMARKS], log: () => {} });
}, 300_000);

it("runs every benchmark without an error", () => {
  expect(results.errors).toEqual({});
});

function isNumber(value: unknown): boolean {
  return typeof value === "number" && Number.isFinite(value);
}

describe("npm run bench, with tiny counts", () => {
  it("measures wake latency from the capture: p50, p99 and max", () => {
    for (const field of ["p50", "p99", "max"] as const) expect(isNumber(results.wakeLatencyMs?.[field]), field).toBe(true);
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

  it("measures pushes per second for the helper, node-apn and a bare node:http2 loop", () => {
    const perSec = results.helperPushesPerSec;
    for (const client of ["pusher", "nodeApn", "bareHttp2"] as const) expect(isNumber(perSec?.[client]), client).toBe(true);
    expect(["token", "certificate"]).toContain(results.details.helper?.helperAuth);
  });

  it("measures shared memory per stored device", () => {
    expect(isNumber(results.shmBytesPerDevice)).toBe(true);
    expect(results.shmBytesPerDevice).toBeGreaterThan(0);
  });

  it("records the Kamailio it ran on (the kamailio in PATH) and names it on the table's first line", () => {
    const inPath = execFileSync("kamailio", ["-v"], { encoding: "utf8" }).split("\n")[0].replace(/^version:\s*/, "").trim();
    expect(results.versions.kamailio).toBe(inPath);
    expect(markdownTable(results).split("\n")[0]).toMatch(new RegExp(`^Benchmarks \\S+ on ${inPath.replace(/[().]/g, "\\$&")} \\(quick`));
  });

  it("prints every figure next to its goal, with the core count and tool versions", () => {
    const table = markdownTable(results);
    expect(table).toMatch(/\d+ cores/);
    for (const tool of ["kamailio", "sipp", "tshark", "node", "@parse/node-apn"]) expect(table).toContain(tool);
    for (const goal of ["p99 ≤ 5 ms", "p99 ≤ 10 ms", "≤ 1.15", "≥ 2×", "≥ 0.8×", "≤ 1024 bytes"]) expect(table).toContain(goal);
  });
});
