// The results file and the Markdown table: every figure next to its goal, with the machine and tool versions.
import { execFileSync } from "node:child_process";
import { cpus, loadavg } from "node:os";
import type { ClusterBenchResult } from "./cluster";
import type { HelperThroughputResult } from "./helper-throughput";
import type { HostileCostResult } from "./hostile-cost";
import type { MemoryResult } from "./memory";
import type { RegisterCostResult } from "./register-cost";
import type { RegistrationStormResult } from "./registration-storm";
import type { RestartWithDevicesResult } from "./restart-with-devices";
import type { WakeLatencyResult } from "./wake-latency";

export const GOALS = {
  wakeLatencyP99Ms: 5,
  dispatchLatencyP99Ms: 10,
  /** A new device's REGISTER against the bare registrar's (the cfg without the plugin's hooks); issue 17. */
  registerCpuRatio: 2.5,
  /** An unchanged refresh (the same REGISTER again, answered by cfg without JavaScript) against the bare registrar's. */
  registerCpuRatioRefresh: 1.2,
  /** The helper's ApnsSender against a bare node:http2 loop with the same pool (1 000 tokens, 10 apps). */
  pusherVsBareHttp2: 0.9,
  shmBytesPerDevice: 1024,
  /** The costliest REGISTER (and INVITE) within the cfg's header limits, against a normal one. */
  hostileCpuRatio: 10,
  /** Three nodes on loopback: REGISTER on one node → INVITE to the phone, the call held on another (issue 14). */
  crossNodeWakeLatencyP99Ms: 10,
  /** A record stored on one node → visible on every other node. */
  recordPropagationP99Ms: 100,
  /** 1 000 000 device records on disk, in sqlite and in PostgreSQL: restart → a call to a sleeping phone pushed
   * correctly (issue 17). */
  restartFirstPushSeconds: 30,
  /** 100 000 known phones re-registering within 60 s after a restart: REGISTERs without an answer. */
  stormLostRegisters: 0,
  /** …and the wake and dispatch latencies of calls during that storm, as idle (benchmarks 1 and 2). */
  stormWakeLatencyP99Ms: 5,
  stormDispatchLatencyP99Ms: 10,
};

export interface BenchResults {
  date: string;
  quick: boolean;
  /** The benchmarks this run ran (all but with --only); absent in results written before it existed. */
  benchmarks?: string[];
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
  /** Kamailio CPU of the costliest hostile REGISTER / a normal one (benchmark 6); the same for INVITEs. */
  hostileRegisterCpuRatio?: number;
  hostileInviteCpuRatio?: number;
  /** Benchmark 7, three nodes: REGISTER on node 3 → INVITE to the phone of a call held on node 1. */
  crossNodeWakeLatencyMs?: ClusterBenchResult["crossNodeWakeLatencyMs"];
  /** A REGISTER on node 2 → its device record stored on node 1 and on node 3 (one sample each). */
  recordPropagationMs?: ClusterBenchResult["recordPropagationMs"];
  /** The plugin's Kamailio CPU per REGISTER of a new device beyond the cfg without hooks (benchmark 3's "+N µs"),
   * device records in PostgreSQL and in sqlite, µs, and postgresUs / sqliteUs. */
  registerCpuPostgres?: { postgresUs: number; sqliteUs: number; ratio: number };
  /** Benchmark 8: seconds from `pusher start` with N records on disk to a call to a sleeping phone pushed, and to
   * every record loaded; how the calls sent meanwhile ended. The records in sqlite; `postgres`: in PostgreSQL. */
  restartWithDevices?: RestartFigures & { postgres?: RestartFigures };
  /** Benchmark 9: N known phones re-registering after a restart; calls to sleeping phones meanwhile. */
  registrationStorm?: {
    phones: number;
    answered: number;
    lost: number;
    responseP99Ms: number;
    cpuUsPerRegister: number;
    calls: number;
    callsPushed: number;
    callsWoken: number;
    wakeLatencyMs: RegistrationStormResult["wakeLatencyMs"];
    dispatchLatencyMs: RegistrationStormResult["dispatchLatencyMs"];
  };
  goals: typeof GOALS;
  met: Record<string, boolean>;
  details: {
    wake?: WakeLatencyResult;
    register?: RegisterCostResult;
    helper?: HelperThroughputResult;
    memory?: MemoryResult;
    hostile?: HostileCostResult;
    cluster?: ClusterBenchResult;
    restart?: { sqlite: RestartWithDevicesResult; postgres?: RestartWithDevicesResult };
    storm?: RegistrationStormResult;
  };
  /** Benchmarks that failed, with their error. */
  errors: Record<string, string>;
  /** The key figures of the run before this one (bench/results/latest.json), for before/after. */
  previous?: Record<string, unknown>;
  /** Runs of some benchmarks only (--only) merged into latest.json since the run `date` names (bench/main.ts mergeResults). */
  mergedRuns?: {
    benchmarks: string[];
    date: string;
    machine: BenchResults["machine"];
    versions: Record<string, string>;
  }[];
  notes: string[];
}

/** Benchmark 8's key figures, for one device database. */
export type RestartFigures = Pick<
  RestartWithDevicesResult,
  "devices" | "firstPushSeconds" | "allLoadedSeconds" | "callsDuringLoad"
>;

function firstLine(command: string, args: string[], pattern?: RegExp): string {
  try {
    const output = execFileSync(command, args, { encoding: "utf8", stdio: "pipe" });
    const line = output.split("\n").find((text) => (pattern ? pattern.test(text) : text.trim())) ?? "";
    return line.trim();
  } catch (error) {
    // sipp -v exits non-zero but prints its version.
    const output = String((error as { stdout?: string }).stdout ?? "");
    return (
      output
        .split("\n")
        .find((text) => (pattern ? pattern.test(text) : text.trim()))
        ?.trim() ?? "unknown"
    );
  }
}

export function machineAndVersions(): { machine: BenchResults["machine"]; versions: Record<string, string> } {
  return {
    machine: {
      cores: cpus().length,
      cpuModel: cpus()[0]?.model ?? "unknown",
      loadAverageAtStart: loadavg().map((value) => Math.round(value * 100) / 100),
    },
    versions: {
      kamailio: firstLine("kamailio", ["-v"], /^version:/).replace(/^version:\s*/, ""),
      sipp: firstLine("sipp", ["-v"], /SIPp/),
      tshark: firstLine("tshark", ["-v"], /TShark/),
      node: process.version,
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
  if (results.registerCpuRatioRefresh !== undefined)
    met.registerCpuRefresh = results.registerCpuRatioRefresh <= GOALS.registerCpuRatioRefresh;
  if (results.details.helper) {
    met.helperVsBareHttp2 = results.details.helper.pusherVsBareHttp2 >= GOALS.pusherVsBareHttp2;
  }
  if (results.shmBytesPerDevice !== undefined) met.memory = results.shmBytesPerDevice <= GOALS.shmBytesPerDevice;
  if (results.hostileRegisterCpuRatio !== undefined)
    met.hostileRegister = results.hostileRegisterCpuRatio <= GOALS.hostileCpuRatio;
  if (results.hostileInviteCpuRatio !== undefined)
    met.hostileInvite = results.hostileInviteCpuRatio <= GOALS.hostileCpuRatio;
  if (results.crossNodeWakeLatencyMs)
    met.crossNodeWakeLatency = results.crossNodeWakeLatencyMs.p99 <= GOALS.crossNodeWakeLatencyP99Ms;
  if (results.recordPropagationMs)
    met.recordPropagation = results.recordPropagationMs.p99 <= GOALS.recordPropagationP99Ms;
  const restart = results.restartWithDevices;
  // Pushed correctly: the first call's push in time, and no call of the load's time pushed to another phone's token.
  const pushedCorrectly = (figures: RestartFigures) =>
    figures.firstPushSeconds <= GOALS.restartFirstPushSeconds && figures.callsDuringLoad.wrongPush === 0;
  if (restart) met.restartFirstPush = pushedCorrectly(restart);
  if (restart?.postgres) met.restartFirstPushPostgres = pushedCorrectly(restart.postgres);
  const storm = results.registrationStorm;
  if (storm) {
    met.stormLost = storm.lost <= GOALS.stormLostRegisters;
    // Every call counts: one never pushed or never delivered misses the goal, whatever the others' latency.
    met.stormWakeLatency = storm.callsWoken === storm.calls && storm.wakeLatencyMs.p99 <= GOALS.stormWakeLatencyP99Ms;
    met.stormDispatchLatency =
      storm.callsPushed === storm.calls && storm.dispatchLatencyMs.p99 <= GOALS.stormDispatchLatencyP99Ms;
  }
  results.met = met;
}

export function markdownTable(results: BenchResults): string {
  const { details, met } = results;
  const rows: string[][] = [];
  const wake = details.wake;
  if (wake) {
    rows.push([
      `1. Wake latency (REGISTER in → INVITE out), ${wake.calls} held calls, ${wake.rate}/s`,
      `p50 ${wake.wakeLatencyMs.p50} ms, p99 ${wake.wakeLatencyMs.p99} ms, max ${wake.wakeLatencyMs.max} ms`,
      `p99 ≤ ${GOALS.wakeLatencyP99Ms} ms`,
      mark(met.wakeLatency),
    ]);
    rows.push([
      `2. Push dispatch latency (INVITE in → push at APNs), ${wake.calls} calls`,
      `p50 ${wake.dispatchLatencyMs.p50} ms, p99 ${wake.dispatchLatencyMs.p99} ms, max ${wake.dispatchLatencyMs.max} ms`,
      `p99 ≤ ${GOALS.dispatchLatencyP99Ms} ms`,
      mark(met.dispatchLatency),
    ]);
  }
  const register = details.register;
  if (register) {
    rows.push([
      `3. REGISTER CPU, plugin / no hook, new devices (${register.registers} REGISTERs × ${register.rounds.length / 3} rounds each)`,
      `${register.registerCpuRatio} (${register.cpuMsPlugin} / ${register.cpuMsNoHook} ms CPU; +${register.pluginCpuUsPerRegister} µs per REGISTER)`,
      `≤ ${GOALS.registerCpuRatio}`,
      mark(met.registerCpu),
    ]);
    rows.push([
      `   the same REGISTERs again from the same phones (unchanged refreshes, most of a real load)`,
      `${register.registerCpuRatioRefresh} (${register.refreshCpuMsPlugin} / ${register.refreshCpuMsNoHook} ms CPU; +${register.pluginCpuUsPerRefresh} µs per REGISTER)`,
      `≤ ${GOALS.registerCpuRatioRefresh}`,
      mark(met.registerCpuRefresh),
    ]);
    rows.push([
      "   the same hooks calling empty JS functions (app_jsdt's floor)",
      `${register.emptyPluginCpuRatio} (+${register.emptyPluginCpuUsPerRegister} µs per REGISTER)`,
      "",
      "",
    ]);
  }
  const helper = details.helper;
  if (helper) {
    const perSec = helper.helperPushesPerSec;
    const perCpu = helper.helperPushesPerCpuSec;
    const pool = (summary: typeof helper.pools.pusher) =>
      `${summary.opened} connections (${summary.byHost.production} production, ${summary.byHost.sandbox} sandbox), at most ${summary.maxActiveStreams} streams open on one`;
    rows.push([
      `4. Helper throughput (${helper.pushes} pushes to ${helper.devices} tokens across ${helper.apps} apps, ${helper.concurrency} in flight, ≤ ${helper.maxConcurrentStreams} streams per connection)`,
      `pusher ${perSec.pusher}/s, bare http2 ${perSec.bareHttp2}/s`,
      "",
      "",
    ]);
    rows.push([
      "   pools, as the mock APNs counted them",
      `pusher: ${pool(helper.pools.pusher)}; bare: ${pool(helper.pools.bareHttp2)}${helper.samePool ? "" : " (**not the same pool**)"}`,
      "",
      "",
    ]);
    rows.push([
      "   pusher vs bare node:http2, same pool",
      `${helper.pusherVsBareHttp2}× (per client CPU-second: ${perCpu.pusher} vs ${perCpu.bareHttp2})`,
      `≥ ${GOALS.pusherVsBareHttp2}×`,
      mark(met.helperVsBareHttp2),
    ]);
  }
  const memory = details.memory;
  if (memory) {
    rows.push([
      `5. Shared memory per stored device (${memory.devices} devices)`,
      `${memory.shmBytesPerDevice} bytes (payload ${memory.shmPayloadBytesPerDevice})`,
      `≤ ${GOALS.shmBytesPerDevice} bytes`,
      mark(met.memory),
    ]);
  }
  const hostile = details.hostile;
  if (hostile) {
    const kinds = (cpu: Record<string, number>) =>
      Object.entries(cpu)
        .map(([kind, us]) => `${kind} ${us} µs`)
        .join("; ");
    rows.push([
      `6. Hostile REGISTER, Kamailio CPU: costliest within the header limits / normal (${hostile.requests} each × ${hostile.rounds} rounds)`,
      `${hostile.hostileRegisterCpuRatio}× (${kinds(hostile.registerCpuUs)})`,
      `≤ ${GOALS.hostileCpuRatio}×`,
      mark(met.hostileRegister),
    ]);
    rows.push([
      "   hostile INVITE, the same",
      `${hostile.hostileInviteCpuRatio}× (${kinds(hostile.inviteCpuUs)})`,
      `≤ ${GOALS.hostileCpuRatio}×`,
      mark(met.hostileInvite),
    ]);
  }
  const cluster = details.cluster;
  if (cluster) {
    const ms = (d: { p50: number; p99: number; max: number }) => `p50 ${d.p50} ms, p99 ${d.p99} ms, max ${d.max} ms`;
    rows.push([
      `7. Cross-node wake latency, ${cluster.nodes} nodes (REGISTER in at node 3 → INVITE out to the phone, held on node 1), ${cluster.calls} held calls, ${cluster.rate}/s`,
      ms(cluster.crossNodeWakeLatencyMs),
      `p99 ≤ ${GOALS.crossNodeWakeLatencyP99Ms} ms`,
      mark(met.crossNodeWakeLatency),
    ]);
    rows.push([
      "   REGISTER in at node 3 → INVITE out of node 1 (to node 3)",
      `${ms(cluster.holdingNodeInviteMs)} (node 3's KDMQ to node 1 out: p50 ${cluster.wakeRequestMs.p50} ms, p99 ${cluster.wakeRequestMs.p99} ms; the binding's replica out: p50 ${cluster.bindingReplicaMs.p50} ms, p99 ${cluster.bindingReplicaMs.p99} ms; node 3's 200 to the REGISTER out: p50 ${cluster.registerAnsweredMs.p50} ms, p99 ${cluster.registerAnsweredMs.p99} ms)`,
      "",
      "",
    ]);
    rows.push([
      `   record propagation (REGISTER in at node 2 → record stored on node 1 / node 3: their 200 to its KDMQ), ${cluster.propagationPhones} new devices, ${cluster.propagationRate}/s`,
      `${ms(cluster.recordPropagationMs)} (KDMQ in: p50 ${cluster.recordArrivalMs.p50} ms, p99 ${cluster.recordArrivalMs.p99} ms)`,
      `p99 ≤ ${GOALS.recordPropagationP99Ms} ms`,
      mark(met.recordPropagation),
    ]);
    const postgres = cluster.registerCpuPostgres;
    rows.push([
      `   REGISTER CPU, new devices, records in PostgreSQL vs sqlite (${postgres.registers} REGISTERs × ${postgres.rounds.length / 3} rounds each, as 3)`,
      `plugin +${postgres.pluginPostgresUsPerRegister} µs vs +${postgres.pluginSqliteUsPerRegister} µs per REGISTER (${postgres.postgresVsSqlite}×; Kamailio ${postgres.postgresUsPerRegister} vs ${postgres.sqliteUsPerRegister} µs, no hook ${postgres.noHookUsPerRegister} µs; ratio to no hook ${postgres.registerCpuRatioPostgres}); PostgreSQL backends ${postgres.postgresServerUsPerRegister} µs`,
      "",
      "",
    ]);
    rows.push([
      "   Kamailio CPU per new-device REGISTER in the cluster (`pusher start`, TLSF)",
      `node 2 (stores, replicates) ${cluster.clusterRegisterCpuUs.registeringNode} µs; each other node ${cluster.clusterRegisterCpuUs.otherNode} µs (idle nodes: ${cluster.idleCpuMsPerSecond.join(", ")} ms CPU per second, taken out)`,
      "",
      "",
    ]);
    if (cluster.wakeKdmqRequests) {
      const kinds = Object.entries(cluster.wakeKdmqRequests).map(([kind, count]) => `${kind} ${count}`);
      rows.push(["   KDMQ requests node 3 sent node 1 per woken phone", kinds.join(", "), "", ""]);
    }
  }
  // The same rows for the records in sqlite and in PostgreSQL.
  const restartRows = (restart: RestartWithDevicesResult, first: string, met: boolean | undefined) => {
    const calls = restart.callsDuringLoad;
    const server = restart.database === "sqlite" ? "" : `; PostgreSQL ${restart.databaseCpuSeconds} s CPU`;
    rows.push([
      `${first} with ${restart.devices} device records in ${restart.database}: \`pusher start\` → a call to the phone loaded last pushed`,
      `${restart.firstPushSeconds} s (up after ${restart.readySeconds} s)`,
      `≤ ${GOALS.restartFirstPushSeconds} s, pushed correctly`,
      mark(met),
    ]);
    rows.push([
      "   → every record loaded",
      `${restart.allLoadedSeconds} s (${restart.devicesLoaded} by the load; its worker ${restart.loadCpuSeconds} s CPU${server}; shm ${restart.shmUsedMb} MB in use, htables 2^${restart.htableSize})`,
      "",
      "",
    ]);
    rows.push([
      `   calls to random sleeping phones meanwhile (${calls.sent})`,
      `${calls.pushed} pushed to their phone (INVITE → push p50 ${restart.pushLatencyDuringLoadMs.p50} ms, p99 ${restart.pushLatencyDuringLoadMs.p99} ms), ${calls.refusedWithoutPush} refused without a push, ${calls.wrongPush} pushed to another phone, ${calls.unanswered} unanswered`,
      "",
      "",
    ]);
  };
  const restart = details.restart;
  if (restart) restartRows(restart.sqlite, "8. Restart", met.restartFirstPush);
  if (restart?.postgres)
    restartRows(restart.postgres, "   the same restart (a one-node cluster)", met.restartFirstPushPostgres);
  const storm = details.storm;
  if (storm) {
    const ms = (d: { p50: number; p99: number; max: number }) => `p50 ${d.p50} ms, p99 ${d.p99} ms, max ${d.max} ms`;
    rows.push([
      `9. Registration storm after a restart: ${storm.phones} known phones within ${storm.seconds} s (${storm.rate}/s)`,
      `${storm.registersAnswered} answered, ${storm.registersLost} lost (${storm.registerRetransmissions} retransmissions); response ${ms(storm.registerResponseMs)}; ${storm.cpuUsPerRegister} µs Kamailio CPU per REGISTER (records loaded ${storm.loadedIntoStormSeconds} s into it; ${storm.recordsStored} records written again)`,
      `${GOALS.stormLostRegisters} lost`,
      mark(met.stormLost),
    ]);
    rows.push([
      "   REGISTER response while the records loaded / after",
      `${ms(storm.registerResponseWhileLoadingMs)} (${storm.registerResponseWhileLoadingMs.count}) / ${ms(storm.registerResponseAfterLoadMs)} (${storm.registerResponseAfterLoadMs.count})`,
      "",
      "",
    ]);
    rows.push([
      `   wake latency of ${storm.calls} calls during the storm (as 1)`,
      `${ms(storm.wakeLatencyMs)} (${storm.callsWoken} delivered)`,
      `p99 ≤ ${GOALS.stormWakeLatencyP99Ms} ms`,
      mark(met.stormWakeLatency),
    ]);
    rows.push([
      `   dispatch latency of those calls (as 2)`,
      `${ms(storm.dispatchLatencyMs)} (${storm.callsPushed} pushed)`,
      `p99 ≤ ${GOALS.stormDispatchLatencyP99Ms} ms`,
      mark(met.stormDispatchLatency),
    ]);
  }
  const lines = [
    // The Kamailio first: the same benchmarks run on 5.6 and 6.0 (docs/kamailio-versions.md).
    `Benchmarks ${results.date} on ${results.versions.kamailio}${results.quick ? " (quick: tiny counts, figures not meaningful)" : ""}: ${results.machine.cores} cores (${results.machine.cpuModel}), load ${results.machine.loadAverageAtStart.join(" ")} at start`,
    Object.entries(results.versions)
      .map(([tool, version]) => `${tool} ${version}`)
      .join("; "),
    "",
    "| Benchmark | Result | Goal | |",
    "|---|---|---|---|",
    ...rows.map((row) => `| ${row.join(" | ")} |`),
  ];
  if (results.notes.length) lines.push("", ...results.notes.map((note) => `- ${note}`));
  return lines.join("\n");
}
