// `npm run bench -- --only …` runs some benchmarks: bench/results/latest.json must keep the others' figures
// (bench/main.ts mergeResults), and say which figures came from which run.
import { describe, expect, it } from "vitest";
import { mergeResults } from "../../bench/main";
import { GOALS, type BenchResults } from "../../bench/report";

function results(fields: Partial<BenchResults>): BenchResults {
  return {
    date: "2026-01-01T00:00:00.000Z",
    quick: false,
    machine: { cores: 2, cpuModel: "test", loadAverageAtStart: [0, 0, 0] },
    versions: { kamailio: "kamailio 5.6.3" },
    goals: GOALS,
    met: {},
    details: {},
    errors: {},
    notes: [],
    ...fields,
  };
}

const latency = (p99: number) => ({ count: 1, p50: p99, p99, max: p99, min: p99, mean: p99 });

describe("a run of some benchmarks merged into latest.json", () => {
  const latest = results({
    wakeLatencyMs: latency(2),
    dispatchLatencyMs: latency(4),
    registerCpuRatio: 4.7,
    errors: { cluster: "failed before" },
    met: { wakeLatency: true },
  });
  const run = results({
    date: "2026-02-02T00:00:00.000Z",
    benchmarks: ["cluster"],
    versions: { kamailio: "kamailio 6.0.1" },
    crossNodeWakeLatencyMs: latency(12),
    recordPropagationMs: latency(30),
    registerCpuPostgres: { postgresUs: 400, sqliteUs: 350, ratio: 1.14 },
    notes: ["one note"],
    previous: { date: "2026-01-01T00:00:00.000Z" },
  });
  const merged = mergeResults(latest, run);

  it("keeps the other benchmarks' figures, date and versions", () => {
    expect(merged.wakeLatencyMs).toEqual(latency(2));
    expect(merged.registerCpuRatio).toBe(4.7);
    expect(merged.date).toBe(latest.date);
    expect(merged.versions.kamailio).toBe("kamailio 5.6.3");
  });

  it("takes the run's figures, drops the benchmark's old error and evaluates every goal again", () => {
    expect(merged.crossNodeWakeLatencyMs).toEqual(latency(12));
    expect(merged.registerCpuPostgres?.ratio).toBe(1.14);
    expect(merged.errors).toEqual({});
    expect(merged.met).toMatchObject({
      wakeLatency: true,
      dispatchLatency: true,
      crossNodeWakeLatency: false,
      recordPropagation: true,
    });
  });

  it("lists the run with its date and versions, and dates its notes", () => {
    expect(merged.mergedRuns).toEqual([
      { benchmarks: ["cluster"], date: run.date, machine: run.machine, versions: run.versions },
    ]);
    expect(merged.notes).toEqual([`${run.date}: one note`]);
    expect(merged.previous).toEqual(run.previous);
  });

  it("replaces an earlier merged run of the same benchmarks", () => {
    const again = mergeResults(merged, { ...run, date: "2026-03-03T00:00:00.000Z" });
    expect(again.mergedRuns?.map((entry) => entry.date)).toEqual(["2026-03-03T00:00:00.000Z"]);
  });
});
