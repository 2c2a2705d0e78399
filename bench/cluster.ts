// Benchmark 7, several nodes (issue 14, docs/cluster.md): three nodes of the real product (`pusher start` with
// cluster.*: Kamailio WITH_CLUSTER and its helper) on 127.0.1.x sharing one PostgreSQL, as test/support/cluster.ts
// starts them, the phones and callers on 127.0.0.x, and one loopback capture of every node's SIP and DMQ port
// (kernel timestamps, microseconds; capturing costs the nodes nothing):
//   cross-node wake latency: phones register on node 2, their bindings lapse (`ul.rm` on every node; the device
//     records stay), callers call them on node 1 (held and pushed), the phones wake and register on node 3:
//     REGISTER on the wire to node 3 → INVITE on the wire to that phone (node 1 relays it through node 3, the
//     phone's Path). Also REGISTER → the INVITE out of node 1 (the issue's "INVITE out of node A").
//   record propagation: phones register on node 2: REGISTER on the wire to node 2 → node 1's (node 3's) 200 to the
//     KDMQ request that carried the AOR's pusher_devices item (htable dmqreplicate). DMQ's worker answers a KDMQ
//     request only after its handler (htable's: ht_set) has stored the item (Kamailio src/modules/dmq/worker.c,
//     worker_loop), so the 200 leaves once the record is visible there: an upper bound by one send. The
//     request's arrival is the lower bound (`recordArrivalMs`).
//   REGISTER CPU with PostgreSQL: benchmark 3's new-device measurement (register-cost.ts registerRound: one fresh
//     direct Kamailio per round, kamailio/kamailio.cfg, Kamailio's default allocator, 20 000 new devices) with the
//     device records in PostgreSQL, beside the same with sqlite and without the hooks, alternated; plus the CPU of
//     the PostgreSQL backends that served it (work that leaves Kamailio for the database server). Unlike benchmark
//     3 in a closed loop (at most registerLimit REGISTERs in flight, as benchmark 5): no retransmission counts.
// A warm-up round of the wake steps (options.warmUpCalls other phones) runs first and is not measured: every
// Kamailio process has its own Duktape heap, and each one's first REGISTERs are slow (5–10 ms).
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execFileSync } from "node:child_process";
import { BenchApns } from "./lib/bench-apns";
import { firstByCallId, LoopbackCapture, type SipPacket } from "./lib/capture";
import { htableItems, kamailioCpuMs } from "./lib/kamailio-direct";
import { TEST_CA_DIR } from "./lib/paths";
import { backendCpuMs } from "./lib/postgres-backends";
import {
  checkWakeRound,
  makePhones,
  runSippLoad,
  startSippLoad,
  wakePhonesOf,
  writeInjectionFile,
  type SippLoad,
} from "./lib/sipp-load";
import { distribution, median, round, type Distribution } from "./lib/stats";
import { BENCH_APP_ID, BENCH_USER_AGENT_REGEX, registerKeys, registerRound } from "./register-cost";
import { startCluster, type Cluster, type ClusterNode } from "../test/support/cluster";
import { startPostgres } from "../test/support/postgres";
import { DOMAIN, nextAddress } from "../test/support/topology";
import { waitUntil } from "../test/support/wait-until";

/** What a KDMQ request carries: htable's `htable:<table>`, dmq_usrloc's `usrloc`, the plugin's `pusher:<type>`. */
function kdmqKind(jsonMembers: string): string {
  const table = /(?:^|[,|])htname:([^,|]+)/.exec(jsonMembers)?.[1];
  if (table) return `htable:${table}`;
  if (/(?:^|[,|])action:\d+,aor:/.test(jsonMembers)) return "usrloc";
  const type = /(?:^|[,|])type:([^,|]+)/.exec(jsonMembers)?.[1];
  return type ? `pusher:${type}` : "other";
}

export interface ClusterBenchOptions {
  /** Calls held on node 1 for phones registered on node 2 that wake on node 3. */
  calls: number;
  /** Calls (and wake-up REGISTERs) started per second. */
  rate: number;
  /** Calls of the same kind run first and not measured. */
  warmUpCalls: number;
  /** New phones registered on node 2 for the propagation figure, at propagationRate per second. */
  propagationPhones: number;
  propagationRate: number;
  /** REGISTER CPU with PostgreSQL: new devices per round, rounds of each variant, REGISTERs per second, and at most
   * registerLimit in flight (a closed loop: an open-loop rate a loaded machine cannot follow ends in retransmissions,
   * whose CPU would count, or in sipp's timeout). */
  registers: number;
  registerRounds: number;
  registerRate: number;
  registerLimit: number;
}

/** Where the device records were in one REGISTER CPU round: sqlite, PostgreSQL, or no hook (no records). */
export type DeviceDatabase = "sqlite" | "postgres" | "no-hook";

export interface RegisterCpuPostgresRound {
  database: DeviceDatabase;
  /** Kamailio CPU (every process) for the REGISTERs of `registers` new devices. */
  cpuMs: number;
  wallMs: number;
  /** CPU of the PostgreSQL backends serving this Kamailio during the same REGISTERs (postgres rounds). */
  postgresServerCpuMs?: number;
}

export interface RegisterCpuPostgresResult {
  registers: number;
  rate: number;
  rounds: RegisterCpuPostgresRound[];
  /** Kamailio CPU per REGISTER of a new device, medians of the rounds, µs. */
  sqliteUsPerRegister: number;
  postgresUsPerRegister: number;
  noHookUsPerRegister: number;
  /** The plugin's share (beyond the cfg without the hooks), benchmark 3's "+N µs per REGISTER", µs. */
  pluginSqliteUsPerRegister: number;
  pluginPostgresUsPerRegister: number;
  /** pluginPostgresUsPerRegister / pluginSqliteUsPerRegister. */
  postgresVsSqlite: number;
  /** Kamailio CPU with PostgreSQL / without the hooks: benchmark 3's registerCpuRatio with PostgreSQL. */
  registerCpuRatioPostgres: number;
  /** The PostgreSQL backends' CPU per REGISTER (median of the postgres rounds), µs: not in Kamailio's figure. */
  postgresServerUsPerRegister: number;
}

export interface ClusterBenchResult {
  nodes: number;
  calls: number;
  rate: number;
  warmUpCalls: number;
  propagationPhones: number;
  propagationRate: number;
  /** REGISTER on the wire to node 3 → INVITE on the wire to the phone (from node 3, relayed from node 1). */
  crossNodeWakeLatencyMs: Distribution;
  /** REGISTER on the wire to node 3 → INVITE on the wire out of node 1 (the holding node) to node 3. */
  holdingNodeInviteMs: Distribution;
  /** Where that time goes: REGISTER on the wire to node 3 → node 3's KDMQ request to node 1 (the plugin's, with the
   * phone's binding), → the binding's replica (dmq_usrloc's KDMQ) to node 1, and → node 3's 200 to the REGISTER. */
  wakeRequestMs: Distribution;
  bindingReplicaMs: Distribution;
  registerAnsweredMs: Distribution;
  /** KDMQ requests node 3 sent node 1 per woken phone, by kind (kdmqKind): the DMQ work of a wake on another node. */
  wakeKdmqRequests: { [kind: string]: number };
  /** REGISTER on the wire to node 2 → node 1's or node 3's 200 to the KDMQ request with the record (one sample
   * per phone and other node). */
  recordPropagationMs: Distribution;
  /** REGISTER on the wire to node 2 → that KDMQ request on the wire to the other node (the lower bound). */
  recordArrivalMs: Distribution;
  /** Kamailio CPU per new-device REGISTER during the propagation step (`pusher start`: TLSF allocator, DMQ):
   * the node that took it (stores, writes PostgreSQL, replicates) and each other node (applies the replicas), µs. */
  clusterRegisterCpuUs: { registeringNode: number; otherNode: number };
  /** Each node's Kamailio CPU while idle (timers, DMQ pings), ms per second: taken out of clusterRegisterCpuUs. */
  idleCpuMsPerSecond: number[];
  pushesReceived: number;
  registerCpuPostgres: RegisterCpuPostgresResult;
}

/** A node's kamcmd; errors come back as exceptions, not on this process's stderr (`ul.rm` of a gone AOR fails). */
function rpc(node: ClusterNode, ...command: string[]): string {
  return execFileSync("kamcmd", ["-s", `unix:${join(node.pusher.dir, "state", "kamailio.ctl")}`, ...command], {
    encoding: "utf8",
    stdio: "pipe",
    timeout: 10_000,
  });
}

function hasBinding(node: ClusterNode, aor: string): boolean {
  try {
    return rpc(node, "ul.lookup", "location", aor).includes("Contact");
  } catch {
    return false; // 404: no binding
  }
}

/**
 * Benchmark 3's new-device rounds (registerRound) with the records in sqlite, in PostgreSQL (an emptied schema per
 * round: the plugin creates its tables, as with a new sqlite file) and without the hooks, alternated.
 */
async function measureRegisterCpuPostgres(
  options: ClusterBenchOptions,
  dir: string,
  log: (line: string) => void,
): Promise<RegisterCpuPostgresResult> {
  const postgres = await startPostgres();
  try {
    const phones = makePhones("pgreg", options.registers);
    const injectionFile = writeInjectionFile(dir, "register-phones.csv", phones);
    const rounds: RegisterCpuPostgresRound[] = [];
    const databases: DeviceDatabase[] = ["postgres", "sqlite", "no-hook"];
    for (let round_ = 0; round_ < options.registerRounds; round_++) {
      // Rotate which variant goes first, so a drift in machine load does not always favour one.
      const order = databases.slice(round_ % 3).concat(databases.slice(0, round_ % 3));
      for (const database of order) {
        let before = new Map<number, number>();
        let postgresServerCpuMs: number | undefined;
        if (database === "postgres")
          postgres.query("DROP SCHEMA public CASCADE; CREATE SCHEMA public AUTHORIZATION pusher");
        const measure = (phase: "before" | "after") => {
          if (database !== "postgres") return;
          const now = backendCpuMs(postgres);
          if (phase === "before") before = now;
          // A backend is born at its Kamailio process's first statement: one missing before started from 0.
          else
            postgresServerCpuMs = Math.round([...now].reduce((sum, [pid, ms]) => sum + ms - (before.get(pid) ?? 0), 0));
        };
        const result = await registerRound(
          database === "no-hook" ? "no-hook" : "plugin",
          injectionFile,
          phones[0],
          options.registers,
          options.registerRate,
          options.registerLimit,
          measure,
          false,
          database === "postgres" ? postgres.url : undefined,
        );
        if (database === "postgres") {
          const rows = Number(postgres.query("SELECT count(*) FROM pusher_devices").trim());
          if (rows !== options.registers)
            throw new Error(
              `bench: PostgreSQL holds ${rows} device rows after ${options.registers} REGISTERs of new devices`,
            );
        }
        rounds.push({
          database,
          cpuMs: result.cpuMs,
          wallMs: result.wallMs,
          ...(postgresServerCpuMs === undefined ? {} : { postgresServerCpuMs }),
        });
        log(
          `cluster: REGISTER CPU round ${round_ + 1} ${database}: ${result.cpuMs} ms Kamailio CPU for ${options.registers} new devices (${result.wallMs} ms wall)${postgresServerCpuMs === undefined ? "" : `, PostgreSQL backends ${postgresServerCpuMs} ms`}`,
        );
      }
    }
    const usPerRegister = (ms: number) => round((ms * 1000) / options.registers, 1);
    const medianOf = (database: DeviceDatabase) =>
      median(rounds.filter((r) => r.database === database).map((r) => r.cpuMs));
    const [sqlite, postgresMs, noHook] = [medianOf("sqlite"), medianOf("postgres"), medianOf("no-hook")];
    const serverMs = median(rounds.filter((r) => r.database === "postgres").map((r) => r.postgresServerCpuMs ?? NaN));
    return {
      registers: options.registers,
      rate: options.registerRate,
      rounds,
      sqliteUsPerRegister: usPerRegister(sqlite),
      postgresUsPerRegister: usPerRegister(postgresMs),
      noHookUsPerRegister: usPerRegister(noHook),
      pluginSqliteUsPerRegister: usPerRegister(sqlite - noHook),
      pluginPostgresUsPerRegister: usPerRegister(postgresMs - noHook),
      postgresVsSqlite: round((postgresMs - noHook) / (sqlite - noHook)),
      registerCpuRatioPostgres: round(postgresMs / noHook),
      postgresServerUsPerRegister: usPerRegister(serverMs),
    };
  } finally {
    postgres.stop();
  }
}

export async function benchCluster(
  options: ClusterBenchOptions,
  log: (line: string) => void = () => {},
): Promise<ClusterBenchResult> {
  const dir = mkdtempSync(join(tmpdir(), "pusher-bench-cluster-"));
  const runId = `${process.pid}x${Date.now().toString(36)}`;
  let apns: BenchApns | null = null;
  let cluster: Cluster | null = null;
  let capture: LoopbackCapture | null = null;
  // In an object: assigned inside wakeRound, read in `finally` (TypeScript does not follow a closure's assignments).
  const sipp: { callers: SippLoad | null } = { callers: null };
  try {
    // First, alone on the machine: the REGISTER CPU rounds (the cluster is not started yet).
    const registerCpuPostgres = await measureRegisterCpuPostgres(options, dir, log);

    apns = await BenchApns.start({ caDir: TEST_CA_DIR, record: true });
    const started = Date.now();
    cluster = await startCluster({
      nodes: 3,
      config: {
        // t1 is not reached (the phones have no binding); t2/t3 far beyond the run so no call ends on a timer.
        timers: { inviteFirstMs: 2000, pushWaitMs: 120_000, afterWakeMs: 60_000 },
        userAgents: [{ name: "MyMobileApp", regex: BENCH_USER_AGENT_REGEX }],
        // The bench's APNs on both hosts (it accepts any token; the tests' mock knows its devices).
        apps: {
          [BENCH_APP_ID]: {
            apple: { certificateFile: join(TEST_CA_DIR, "apple-app.pem"), host: apns.host, sandboxHost: apns.host },
          },
        },
      },
    });
    log(`cluster: 3 nodes and PostgreSQL up in ${Date.now() - started} ms`);
    const [node1, node2, node3] = cluster.nodes;
    const running = { apns, cluster };
    const keys = registerKeys("600");
    // Device records every node must hold (each round's phones are new AORs).
    let devices = htableItems({ rpc: (...command) => rpc(node1, ...command) }, "pusher_devices");
    const everyNodeHolds = async (count: number) => {
      for (const node of [node1, node2, node3]) {
        await waitUntil(
          () => htableItems({ rpc: (...command) => rpc(node, ...command) }, "pusher_devices") >= count,
          30_000,
          () => `node ${node.id} to hold ${count} device records\n${running.cluster.output()}`,
          20,
        );
      }
    };

    /** Phones register on node 2, lapse, are called on node 1 and wake on node 3; resolves once every call was answered. */
    const wakeRound = async (
      name: string,
      calls: number,
      callIdPattern: string,
    ): Promise<{ phonesAddress: string; aors: string[] }> => {
      const phones = makePhones(`${name}${runId}u`, calls);
      const injectionFile = writeInjectionFile(dir, `${name}.csv`, phones);
      const phonesAddress = nextAddress();
      await runSippLoad({
        scenario: "register.xml",
        remoteHost: node2.host,
        remotePort: node2.pusher.sipPort,
        injectionFile,
        calls,
        rate: 500,
        keys,
        localIp: phonesAddress,
      });
      devices += calls;
      await everyNodeHolds(devices);
      // The bindings lapse on every node, the device records stay. Each binding first reaches every node (dmq_usrloc),
      // so no replica arrives after its removal.
      const aors = phones.map((phone) => `${phone.user}@${DOMAIN}`);
      for (const node of [node1, node3])
        for (const aor of aors)
          await waitUntil(() => hasBinding(node, aor), 10_000, `node ${node.id} to hold the binding of ${aor}`, 20);
      for (const node of [node2, node1, node3]) {
        for (const aor of aors) {
          try {
            rpc(node, "ul.rm", "location", aor);
          } catch {
            // already removed by the replica of another node's removal
          }
        }
      }
      for (const node of [node1, node2, node3])
        for (const aor of aors)
          await waitUntil(() => !hasBinding(node, aor), 10_000, `node ${node.id} to drop the binding of ${aor}`, 20);
      const pushesBefore = running.apns.pushes.length;
      const callers = await startSippLoad({
        scenario: "call.xml",
        remoteHost: node1.host,
        remotePort: node1.pusher.sipPort,
        injectionFile,
        calls,
        rate: options.rate,
        keys,
        callIdPattern,
        localIp: nextAddress(),
      });
      sipp.callers = callers;
      await waitUntil(
        () => running.apns.pushes.length >= pushesBefore + calls,
        30_000,
        () => `${calls} pushes (got ${running.apns.pushes.length - pushesBefore})\n${running.cluster.output()}`,
      );
      log(`cluster (${name}): ${calls} calls held on node 1 and pushed`);
      // Woken, the phones come back from a new socket on their address, to node 3.
      const woken = await wakePhonesOf(callers, {
        scenario: "wake-and-answer.xml",
        remoteHost: node3.host,
        remotePort: node3.pusher.sipPort,
        injectionFile,
        calls,
        rate: options.rate,
        keys,
        callIdPattern,
        timeoutSeconds: 60,
        localIp: phonesAddress,
      });
      sipp.callers = null;
      checkWakeRound(woken, `\n${running.cluster.output()}`);
      log(`cluster (${name}): ${calls} phones woke on node 3 and answered in ${round(woken.wake.elapsedMs, 0)} ms`);
      return { phonesAddress, aors };
    };

    await wakeRound("warmup", options.warmUpCalls, `cwarmup-${runId}-%u@bench`);
    capture = await LoopbackCapture.start(
      dir,
      cluster.nodes.flatMap((node) => [node.pusher.sipPort, node.dmqPort]),
    );

    // Each node's CPU at rest (its timers: the plugin's every second, DMQ's pings), taken out of the REGISTERs' CPU.
    const cpuNow = () => running.cluster.nodes.map((node) => kamailioCpuMs(node.pusher.pid));
    const idleBefore = cpuNow();
    const idleStarted = performance.now();
    await new Promise((resolve) => setTimeout(resolve, 3000));
    const idleCpuMsPerSecond = cpuNow().map((ms, index) =>
      round(((ms - idleBefore[index]) * 1000) / (performance.now() - idleStarted), 1),
    );

    // Record propagation, and the nodes' CPU for it (until every node holds every record).
    const propagationPhones = makePhones(`prop${runId}u`, options.propagationPhones);
    const cpuBefore = cpuNow();
    const propagationStarted = performance.now();
    await runSippLoad({
      scenario: "register.xml",
      remoteHost: node2.host,
      remotePort: node2.pusher.sipPort,
      injectionFile: writeInjectionFile(dir, "propagation.csv", propagationPhones),
      calls: options.propagationPhones,
      rate: options.propagationRate,
      keys,
      callIdPattern: `prop-${runId}-%u@bench`,
      localIp: nextAddress(),
    });
    devices += options.propagationPhones;
    await everyNodeHolds(devices);
    const propagationSeconds = (performance.now() - propagationStarted) / 1000;
    const cpuUs = cpuNow().map((ms, index) =>
      round(
        ((ms - cpuBefore[index] - idleCpuMsPerSecond[index] * propagationSeconds) * 1000) / options.propagationPhones,
        1,
      ),
    );
    log(
      `cluster: ${options.propagationPhones} phones registered on node 2, on every node; Kamailio CPU per REGISTER: node 2 ${cpuUs[1]} µs, nodes 1 and 3 ${cpuUs[0]} and ${cpuUs[2]} µs (idle: ${idleCpuMsPerSecond.join(", ")} ms/s taken out)`,
    );

    // Caller call n and phone call n share the Call-ID: sipp's %u is the call number, in injection-file order.
    const { phonesAddress, aors: wakeAors } = await wakeRound("wake", options.calls, `cwake-${runId}-%u@bench`);
    const packets = await capture.stop();
    capture = null;

    // Propagation: REGISTER n (Call-ID prop-<run>-n@bench) → the other nodes' 200 to the KDMQ request with its record.
    const isTo = (packet: SipPacket, node: ClusterNode, port: number) =>
      packet.destinationHost === node.host && packet.destinationPort === port;
    const registersIn = firstByCallId(
      packets,
      (p) => p.method === "REGISTER" && isTo(p, node2, node2.pusher.sipPort) && p.callId.startsWith(`prop-${runId}-`),
    );
    const registerAtOfAor = new Map<string, number>();
    for (const [callId, packet] of registersIn)
      registerAtOfAor.set(
        `${propagationPhones[Number(/-(\d+)@bench$/.exec(callId)![1]) - 1].user}@${DOMAIN}`,
        packet.timeMs,
      );
    const replies = firstByCallId(
      packets,
      (p) => p.status === 200 && p.destinationHost === node2.host && p.destinationPort === node2.dmqPort,
    );
    const propagationSamples: number[] = [];
    const arrivalSamples: number[] = [];
    for (const node of [node1, node3]) {
      const replicas = new Map<string, SipPacket>();
      for (const packet of packets) {
        if (packet.method !== "KDMQ" || packet.sourceHost !== node2.host || !isTo(packet, node, node.dmqPort)) continue;
        const aor = /(?:^|,)htname:pusher_devices,cname:([^,]+),/.exec(packet.jsonMembers)?.[1];
        if (aor && registerAtOfAor.has(aor) && !replicas.has(aor)) replicas.set(aor, packet);
      }
      for (const [aor, request] of replicas) {
        const reply = replies.get(request.callId);
        if (!reply || reply.sourceHost !== node.host) continue;
        propagationSamples.push(reply.timeMs - registerAtOfAor.get(aor)!);
        arrivalSamples.push(request.timeMs - registerAtOfAor.get(aor)!);
      }
    }
    if (propagationSamples.length !== 2 * options.propagationPhones) {
      throw new Error(
        `bench: matched ${propagationSamples.length} record replicas with their 200 of ${2 * options.propagationPhones} (${registersIn.size} REGISTERs captured on node 2, ${packets.length} SIP packets)`,
      );
    }

    // Cross-node wake: the REGISTER to node 3 and the INVITEs of the same Call-ID.
    const wakeRegisters = firstByCallId(
      packets,
      (p) => p.method === "REGISTER" && isTo(p, node3, node3.pusher.sipPort) && p.callId.startsWith(`cwake-${runId}-`),
    );
    const invitesToPhones = firstByCallId(packets, (p) => p.method === "INVITE" && p.destinationHost === phonesAddress);
    const invitesOutOfNode1 = firstByCallId(
      packets,
      (p) => p.method === "INVITE" && p.sourceHost === node1.host && isTo(p, node3, node3.pusher.sipPort),
    );
    const firstWakeRegisterMs = Math.min(...[...wakeRegisters.values()].map((packet) => packet.timeMs));
    const wakeSamples: number[] = [];
    const holdingSamples: number[] = [];
    for (const [callId, register] of wakeRegisters) {
      const toPhone = invitesToPhones.get(callId);
      const outOfNode1 = invitesOutOfNode1.get(callId);
      if (toPhone) wakeSamples.push(toPhone.timeMs - register.timeMs);
      if (outOfNode1) holdingSamples.push(outOfNode1.timeMs - register.timeMs);
    }
    if (wakeSamples.length !== options.calls || holdingSamples.length !== options.calls) {
      throw new Error(
        `bench: matched ${wakeSamples.length} INVITEs to the phones and ${holdingSamples.length} out of node 1 with the REGISTERs to node 3 of ${options.calls} calls (${wakeRegisters.size} REGISTERs captured, ${packets.length} SIP packets)`,
      );
    }
    // Node 3's two KDMQ requests to node 1 per wake: the plugin's (type registered) and dmq_usrloc's (the binding).
    const wakeRequests = new Map<string, number>();
    const bindingReplicas = new Map<string, number>();
    for (const packet of packets) {
      if (packet.method !== "KDMQ" || packet.sourceHost !== node3.host || !isTo(packet, node1, node1.dmqPort)) continue;
      const wake = /(?:^|,)type:registered,aor:([^,]+),/.exec(packet.jsonMembers)?.[1];
      const binding = /(?:^|,)action:\d+,aor:([^,]+),/.exec(packet.jsonMembers)?.[1];
      if (wake && !wakeRequests.has(wake)) wakeRequests.set(wake, packet.timeMs);
      if (binding && !bindingReplicas.has(binding)) bindingReplicas.set(binding, packet.timeMs);
    }
    // Every KDMQ request node 3 sent node 1 during the wakes, by kind: what a woken phone's REGISTER costs in DMQ.
    const wakeKdmqRequests: { [kind: string]: number } = {};
    for (const packet of packets) {
      if (packet.method !== "KDMQ" || packet.sourceHost !== node3.host || !isTo(packet, node1, node1.dmqPort)) continue;
      if (packet.timeMs < firstWakeRegisterMs) continue;
      const kind = kdmqKind(packet.jsonMembers);
      wakeKdmqRequests[kind] = (wakeKdmqRequests[kind] ?? 0) + 1;
    }
    for (const kind of Object.keys(wakeKdmqRequests))
      wakeKdmqRequests[kind] = round(wakeKdmqRequests[kind] / options.calls, 2);
    const wakeRequestSamples: number[] = [];
    const bindingReplicaSamples: number[] = [];
    const answeredSamples: number[] = [];
    const registerAnswers = firstByCallId(
      packets,
      (p) => p.status === 200 && p.sourceHost === node3.host && p.destinationHost === phonesAddress,
    );
    for (const [callId, register] of wakeRegisters) {
      if (registerAnswers.has(callId)) answeredSamples.push(registerAnswers.get(callId)!.timeMs - register.timeMs);
      const aor = wakeAors[Number(/-(\d+)@bench$/.exec(callId)![1]) - 1];
      if (wakeRequests.has(aor)) wakeRequestSamples.push(wakeRequests.get(aor)! - register.timeMs);
      if (bindingReplicas.has(aor)) bindingReplicaSamples.push(bindingReplicas.get(aor)! - register.timeMs);
    }
    return {
      nodes: cluster.nodes.length,
      calls: options.calls,
      rate: options.rate,
      warmUpCalls: options.warmUpCalls,
      propagationPhones: options.propagationPhones,
      propagationRate: options.propagationRate,
      crossNodeWakeLatencyMs: distribution(wakeSamples),
      holdingNodeInviteMs: distribution(holdingSamples),
      wakeRequestMs: distribution(wakeRequestSamples),
      bindingReplicaMs: distribution(bindingReplicaSamples),
      registerAnsweredMs: distribution(answeredSamples),
      wakeKdmqRequests,
      recordPropagationMs: distribution(propagationSamples),
      recordArrivalMs: distribution(arrivalSamples),
      clusterRegisterCpuUs: { registeringNode: cpuUs[1], otherNode: round((cpuUs[0] + cpuUs[2]) / 2, 1) },
      idleCpuMsPerSecond,
      pushesReceived: apns.pushes.length,
      registerCpuPostgres,
    };
  } finally {
    if (capture) await capture.stop().catch(() => []);
    if (sipp.callers && sipp.callers.child.exitCode === null) sipp.callers.child.kill();
    await cluster?.stop();
    await apns?.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
