// Benchmark 4, helper throughput: pushes/s from the helper's ApnsSender to 1 000 device tokens across 10 apps
// (bench/lib/apns-fleet.ts: each app its own bundle id and token-auth key, a tenth of the tokens alert tokens and a
// tenth sandbox tokens), against a bare node:http2 loop with the same headers, bodies and pool. The mock APNs
// (bench/lib/fleet-apns.ts, its own process, its own core) refuses what APNs would refuse (token kind vs topic,
// environment, the key's team) and allows 1 000 concurrent streams per connection, as Apple does; it counts the
// connections each client opened, so the helper's pooling per app and per host is measured, not assumed.
// Each client runs in a fresh process after a warm-up push per app and host, with the same number in flight. The
// sender is measured rather than the whole helper process: the evapi link and logging are in the dispatch-latency
// figure instead.
import { generateKeyPairSync } from "node:crypto";
import { fork, type ChildProcess } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { build } from "esbuild";
import {
  FLEET_APPS,
  FLEET_DEVICES,
  fleetApp,
  fleetKeyFile,
  fleetWarmUpDevices,
  type FleetEnvironment,
} from "./lib/apns-fleet";
import { MAX_CONCURRENT_STREAMS, type FleetStats } from "./lib/fleet-apns";
import { BENCH_DIR, ROOT, TEST_CA_DIR } from "./lib/paths";
import { round } from "./lib/stats";
import type { ClientJob, ClientKind, ClientReport } from "./workers/push-client";

export interface HelperThroughputOptions {
  pushes: number;
  /** Pushes in flight at once, across all apps. */
  concurrency: number;
  /** Rounds per client, alternating the order; the best round of each client counts (noise only slows down). */
  rounds: number;
}

/** A client's connections as the mock APNs saw them in one run (its warm-up included). */
export interface PoolSummary {
  opened: number;
  byHost: { [environment in FleetEnvironment]: number };
  /** The most provider keys one connection carried (1: a connection per key). */
  maxKeysPerConnection: number;
  /** The most streams open at once on one connection (the mock allows MAX_CONCURRENT_STREAMS). */
  maxActiveStreams: number;
}

export interface HelperThroughputResult {
  pushes: number;
  concurrency: number;
  apps: number;
  devices: number;
  /** The mock's SETTINGS_MAX_CONCURRENT_STREAMS per connection. */
  maxConcurrentStreams: number;
  helperPushesPerSec: { pusher: number; bareHttp2: number };
  /** Pushes per CPU-second of the client process: the clients' own cost, whatever the mock's speed. */
  helperPushesPerCpuSec: { pusher: number; bareHttp2: number };
  /** Each client's pool in its best run. */
  pools: { pusher: PoolSummary; bareHttp2: PoolSummary };
  runs: (ClientReport & { pool: PoolSummary })[];
  /** The bare loop's pool is one connection per app and host: true when the mock saw the helper open the same. */
  samePool: boolean;
  pusherVsBareHttp2: number;
}

const KINDS: ClientKind[] = ["bareHttp2", "pusher"];

/** Bundles the two worker entry points (TypeScript) into `dir`, as bench/run.mjs does for main.ts. */
async function buildWorkers(dir: string): Promise<void> {
  await build({
    entryPoints: [join(BENCH_DIR, "workers", "apns-server.ts"), join(BENCH_DIR, "workers", "push-client.ts")],
    outdir: dir,
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    packages: "external",
    logLevel: "warning",
    outExtension: { ".js": ".mjs" },
  });
}

function nextMessage<T>(child: ChildProcess, type: string, timeoutMs: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`bench: no "${type}" from worker within ${timeoutMs} ms`)),
      timeoutMs,
    );
    const onMessage = (message: { type: string }) => {
      if (message.type !== type) return;
      clearTimeout(timer);
      child.off("message", onMessage);
      resolve(message as T);
    };
    child.on("message", onMessage);
    child.once(
      "exit",
      (code) => (clearTimeout(timer), reject(new Error(`bench: worker exited (${code}) before "${type}"`))),
    );
  });
}

/** One AuthKey .p8 (EC P-256, PKCS#8) per app, as Apple issues them. */
function writeFleetKeys(dir: string): void {
  for (let index = 0; index < FLEET_APPS; index++) {
    const { privateKey } = generateKeyPairSync("ec", {
      namedCurve: "P-256",
      privateKeyEncoding: { type: "pkcs8", format: "pem" },
      publicKeyEncoding: { type: "spki", format: "pem" },
    });
    writeFileSync(fleetKeyFile(dir, fleetApp(index)), privateKey, { mode: 0o600 });
  }
}

function summarizePool(stats: FleetStats): PoolSummary {
  const byHost = { production: 0, sandbox: 0 };
  for (const connection of stats.connections) byHost[connection.environment]++;
  return {
    opened: stats.connections.length,
    byHost,
    maxKeysPerConnection: Math.max(0, ...stats.connections.map((connection) => connection.keys.length)),
    maxActiveStreams: Math.max(0, ...stats.connections.map((connection) => connection.maxActiveStreams)),
  };
}

export async function benchHelperThroughput(
  options: HelperThroughputOptions,
  log: (line: string) => void = () => {},
): Promise<HelperThroughputResult> {
  mkdirSync(join(ROOT, "build", "bench"), { recursive: true });
  const dir = mkdtempSync(join(ROOT, "build", "bench", "throughput-"));
  const server = { child: null as ChildProcess | null };
  try {
    await buildWorkers(dir);
    writeFleetKeys(dir);
    // Inherit-free stdin for both: the client's console must not slow it down.
    server.child = fork(join(dir, "apns-server.mjs"), [TEST_CA_DIR, dir], {
      stdio: ["ignore", "inherit", "inherit", "ipc"],
    });
    const { hosts } = await nextMessage<{ hosts: ClientJob["hosts"] }>(server.child, "listening", 10_000);
    const expectedPushes = options.pushes + fleetWarmUpDevices().length;
    const runs: HelperThroughputResult["runs"] = [];
    for (let round_ = 0; round_ < options.rounds; round_++) {
      const kinds = round_ % 2 === 0 ? KINDS : [...KINDS].reverse();
      for (const kind of kinds) {
        const job: ClientJob = { kind, hosts, pushes: options.pushes, concurrency: options.concurrency, keyDir: dir };
        const client = fork(join(dir, "push-client.mjs"), [JSON.stringify(job)], {
          stdio: ["ignore", "inherit", "inherit", "ipc"],
        });
        const { report } = await nextMessage<{ report: ClientReport }>(client, "report", 300_000);
        server.child.send({ type: "stats" });
        const { stats } = await nextMessage<{ stats: FleetStats }>(server.child, "stats", 5000);
        if (report.failures > 0)
          throw new Error(
            `bench: ${kind}: ${report.failures} of ${report.pushes} pushes failed, first: ${report.firstFailure}`,
          );
        const refused = Object.entries(stats.rejected)
          .map(([reason, count]) => `${count} ${reason}`)
          .join(", ");
        const pool = summarizePool(stats);
        if (stats.pushes !== expectedPushes || refused) {
          throw new Error(
            `bench: ${kind}: the mock APNs accepted ${stats.pushes} pushes, expected ${expectedPushes}${refused ? `; refused ${refused}` : ""}; ${report.retries} retries, ${pool.opened} connections, ${JSON.stringify(report.connectionEvents)}`,
          );
        }
        log(
          `helper throughput: ${kind}: ${Math.round(report.pushesPerSec)} pushes/s, ${Math.round(report.pushesPerCpuSec)} per CPU-second; ` +
            `${pool.opened} connections (${pool.byHost.production} production, ${pool.byHost.sandbox} sandbox), at most ${pool.maxActiveStreams} streams open on one`,
        );
        runs.push({
          ...report,
          elapsedMs: round(report.elapsedMs, 1),
          pushesPerSec: round(report.pushesPerSec, 0),
          pushesPerCpuSec: round(report.pushesPerCpuSec, 0),
          pool,
        });
      }
    }
    const bestRun = (kind: ClientKind) =>
      runs
        .filter((run) => run.kind === kind)
        .reduce((best, run) => (run.pushesPerSec > best.pushesPerSec ? run : best));
    const bestCpu = (kind: ClientKind) =>
      Math.max(...runs.filter((run) => run.kind === kind).map((run) => run.pushesPerCpuSec));
    const pusher = bestRun("pusher");
    const bareHttp2 = bestRun("bareHttp2");
    return {
      pushes: options.pushes,
      concurrency: options.concurrency,
      apps: FLEET_APPS,
      devices: FLEET_DEVICES,
      maxConcurrentStreams: MAX_CONCURRENT_STREAMS,
      helperPushesPerSec: { pusher: pusher.pushesPerSec, bareHttp2: bareHttp2.pushesPerSec },
      helperPushesPerCpuSec: { pusher: bestCpu("pusher"), bareHttp2: bestCpu("bareHttp2") },
      pools: { pusher: pusher.pool, bareHttp2: bareHttp2.pool },
      runs,
      samePool: runs.every(
        (run) =>
          run.pool.opened === pusher.pool.opened &&
          run.pool.byHost.production === pusher.pool.byHost.production &&
          run.pool.maxKeysPerConnection === pusher.pool.maxKeysPerConnection,
      ),
      pusherVsBareHttp2: round(pusher.pushesPerSec / bareHttp2.pushesPerSec, 2),
    };
  } finally {
    server.child?.kill();
    rmSync(dir, { recursive: true, force: true });
  }
}
