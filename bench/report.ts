// The results file and the Markdown table: every figure next to its goal, with the machine and tool versions.
import { execFileSync } from "node:child_process";
import { cpus, loadavg } from "node:os";
import type { HelperThroughputResult } from "./helper-throughput";
import type { MemoryResult } from "./memory";
import type { RegisterCostResult } from "./register-cost";
import type { WakeLatencyResult } from "./wake-latency";

export const GOALS = {
  wakeLatencyP99Ms: 5,
  dispatchLatencyP99Ms: 10,
  registerCpuRatio: 1.15,
  pusherVsNodeApn: 2,
  pusherVsBareHttp2: 0.8,
  shmBytesPerDevice: 1024,
};

export interface BenchResults {
  date: string;
  quick: boolean;
  machine: { cores: number; cpuModel: string; loadAverageAtStart: number[] };
  versions: Record<string, string>;
  wakeLatencyMs?: WakeLatencyResult["wakeLatencyMs"];
  dispatchLatencyMs?: WakeLatencyResult["dispatchLatencyMs"];
  /** First REGISTERs of new devices (the figure). */
  registerCpuRatio?: number;
  /** The same phones refreshing their registration unchanged. */
  registerCpuRatioRefresh?: number;
  helperPushesPerSec?: HelperThroughputResult["helperPushesPerSec"];
  shmBytesPerDevice?: number;
  goals: typeof GOALS;
  met: Record<string, boolean>;
  details: { wake?: WakeLatencyResult; register?: RegisterCostResult; helper?: HelperThroughputResult; memory?: MemoryResult };
  /** Benchmarks that failed, with their error. */
  errors: Record<string, string>;
  /** The key figures of the run before this one (bench/results/latest.json), for before/after. */
  previous?: Record<string, unknown>;
  notes: string[];
}

function firstLine(command: string, args: string[], pattern?: RegExp): string {
  try {
    const output = execFileSync(command, args, { encoding: "utf8", stdio: "pipe" });
    const line = output.split("\n").find((text) => (pattern ? pattern.test(text) : text.trim())) ?? "";
    return line.trim();
  } catch (error) {
    // sipp -v exits non-zero but prints its version.
    const output = String((error as { stdout?: string }).stdout ?? "");
    return output.split("\n").find((text) => (pattern ? pattern.test(text) : text.trim()))?.trim() ?? "unknown";
  }
}

export function machineAndVersions(): { machine: BenchResults["machine"]; versions: Record<string, string> } {
  let nodeApn = "not installed";
  try {
    nodeApn = JSON.parse(execFileSync("node", ["-p", "JSON.stringify(require('@parse/node-apn/package.json').version)"], { encoding: "utf8", stdio: "pipe" }));
  } catch {
    // reported as not installed
  }
  return {
    machine: { cores: cpus().length, cpuModel: cpus()[0]?.model ?? "unknown", loadAverageAtStart: loadavg().map((value) => Math.round(value * 100) / 100) },
    versions: {
      kamailio: firstLine("kamailio", ["-v"], /^version:/).replace(/^version:\s*/, ""),
      sipp: firstLine("sipp", ["-v"], /SIPp/),
      tshark: firstLine("tshark", ["-v"], /TShark/),
      node: process.version,
      "@parse/node-apn": nodeApn,
    },
  };
}

function mark(met: boolean | undefined): string {
  return met === undefined ? "not run" : met ? "met" : "**missed**";
}

export function evaluate(results: BenchResults): void {
  const met: Record<string, boolean> = {};
  if (results.wakeLatencyMs) met.wakeLatency = results.wakeLatencyMs.p99 <= GOALS.wakeLatencyP99Ms;
  if (results.dispatchLatencyMs) met.dispatchLatency = results.dispatchLatencyMs.p99 <= GOALS.dispatchLatencyP99Ms;
  if (results.registerCpuRatio !== undefined) met.registerCpu = results.registerCpuRatio <= GOALS.registerCpuRatio;
  if (results.registerCpuRatioRefresh !== undefined) met.registerCpuRefresh = results.registerCpuRatioRefresh <= GOALS.registerCpuRatio;
  if (results.details.helper) {
    met.helperVsNodeApn = results.details.helper.pusherVsNodeApn >= GOALS.pusherVsNodeApn;
    met.helperVsBareHttp2 = results.details.helper.pusherVsBareHttp2 >= GOALS.pusherVsBareHttp2;
  }
  if (results.shmBytesPerDevice !== undefined) met.memory = results.shmBytesPerDevice <= GOALS.shmBytesPerDevice;
  results.met = met;
}

export function markdownTable(results: BenchResults): string {
  const { details, met } = results;
  const rows: string[][] = [];
  const wake = details.wake;
  if (wake) {
    rows.push([`1. Wake latency (REGISTER in → INVITE out), ${wake.calls} held calls, ${wake.rate}/s`, `p50 ${wake.wakeLatencyMs.p50} ms, p99 ${wake.wakeLatencyMs.p99} ms, max ${wake.wakeLatencyMs.max} ms`, `p99 ≤ ${GOALS.wakeLatencyP99Ms} ms`, mark(met.wakeLatency)]);
    rows.push([`2. Push dispatch latency (INVITE in → push at APNs), ${wake.calls} calls`, `p50 ${wake.dispatchLatencyMs.p50} ms, p99 ${wake.dispatchLatencyMs.p99} ms, max ${wake.dispatchLatencyMs.max} ms`, `p99 ≤ ${GOALS.dispatchLatencyP99Ms} ms`, mark(met.dispatchLatency)]);
  }
  const register = details.register;
  if (register) {
    rows.push([`3. REGISTER CPU, plugin / no hook, new devices (${register.registers} REGISTERs × ${register.rounds.length / 3} rounds each)`, `${register.registerCpuRatio} (${register.cpuMsPlugin} / ${register.cpuMsNoHook} ms CPU; +${register.pluginCpuUsPerRegister} µs per REGISTER)`, `≤ ${GOALS.registerCpuRatio}`, mark(met.registerCpu)]);
    rows.push([`   the same REGISTERs again from the same phones (unchanged refreshes, most of a real load)`, `${register.registerCpuRatioRefresh} (${register.refreshCpuMsPlugin} / ${register.refreshCpuMsNoHook} ms CPU; +${register.pluginCpuUsPerRefresh} µs per REGISTER)`, `≤ ${GOALS.registerCpuRatio}`, mark(met.registerCpuRefresh)]);
    rows.push(["   the same hooks calling empty JS functions (app_jsdt's floor)", `${register.emptyPluginCpuRatio} (+${register.emptyPluginCpuUsPerRegister} µs per REGISTER)`, "", ""]);
  }
  const helper = details.helper;
  if (helper) {
    const perSec = helper.helperPushesPerSec;
    const perCpu = helper.helperPushesPerCpuSec;
    rows.push([`4. Helper throughput (${helper.pushes} pushes, ${helper.concurrency} in flight, helper auth: ${helper.helperAuth})`, `pusher ${perSec.pusher}/s, node-apn ${perSec.nodeApn}/s, bare http2 ${perSec.bareHttp2}/s`, "", ""]);
    rows.push(["   pusher vs node-apn", `${helper.pusherVsNodeApn}× (per client CPU-second: ${perCpu.pusher} vs ${perCpu.nodeApn})`, `≥ ${GOALS.pusherVsNodeApn}×`, mark(met.helperVsNodeApn)]);
    rows.push(["   pusher vs bare node:http2", `${helper.pusherVsBareHttp2}× (per client CPU-second: ${perCpu.pusher} vs ${perCpu.bareHttp2})`, `≥ ${GOALS.pusherVsBareHttp2}×`, mark(met.helperVsBareHttp2)]);
  }
  const memory = details.memory;
  if (memory) {
    rows.push([`5. Shared memory per stored device (${memory.devices} devices)`, `${memory.shmBytesPerDevice} bytes (payload ${memory.shmPayloadBytesPerDevice})`, `≤ ${GOALS.shmBytesPerDevice} bytes`, mark(met.memory)]);
  }
  const lines = [
    // The Kamailio first: the same benchmarks run on 5.6 and 6.0 (docs/kamailio-versions.md).
    `Benchmarks ${results.date} on ${results.versions.kamailio}${results.quick ? " (quick: tiny counts, figures not meaningful)" : ""}: ${results.machine.cores} cores (${results.machine.cpuModel}), load ${results.machine.loadAverageAtStart.join(" ")} at start`,
    Object.entries(results.versions).map(([tool, version]) => `${tool} ${version}`).join("; "),
    "",
    "| Benchmark | Result | Goal | |",
    "|---|---|---|---|",
    ...rows.map((row) => `| ${row.join(" | ")} |`),
  ];
  if (results.notes.length) lines.push("", ...results.notes.map((note) => `- ${note}`));
  return lines.join("\n");
}
