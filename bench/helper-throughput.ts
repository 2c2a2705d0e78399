// Benchmark 4, helper throughput: pushes/s to the bench mock APNs (own process, own core) from
//   the helper's ApnsSender, driven in-process exactly as src/helper/push-handler.ts calls it;
//   @parse/node-apn (devDependency), token auth, pointed at the same mock;
//   a bare node:http2 loop with the same headers and body (the ceiling).
// Each client runs in a fresh process after one warm-up push, with the same number in flight. The sender is
// measured rather than the whole helper process so that the comparison with node-apn (a library) is like for
// like; the evapi link and logging are in the dispatch-latency figure instead.
// Token auth (a P-256 .p8 made with openssl) whenever the product's config accepts keyFile; else the helper's
// certificate path, and the report says so (`helperAuth`).
import { execFileSync, fork, type ChildProcess } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { join } from "node:path";
import { build } from "esbuild";
import { BENCH_DIR, ROOT, TEST_CA_DIR } from "./lib/paths";
import { round } from "./lib/stats";
import type { ClientJob, ClientKind, ClientReport } from "./workers/push-client";

export interface HelperThroughputOptions {
  pushes: number;
  concurrency: number;
  /** Rounds per client, alternating the order; the best round of each client counts (noise only slows down). */
  rounds: number;
}

export interface HelperThroughputResult {
  pushes: number;
  concurrency: number;
  helperAuth: string;
  helperPushesPerSec: { pusher: number; nodeApn: number; bareHttp2: number };
  /** Pushes per CPU-second of the client process: the clients' own cost, whatever the mock's speed. */
  helperPushesPerCpuSec: { pusher: number; nodeApn: number; bareHttp2: number };
  runs: ClientReport[];
  pusherVsNodeApn: number;
  pusherVsBareHttp2: number;
}

const APP_ID = "com.app.mymobileapp";
const KINDS: ClientKind[] = ["bareHttp2", "pusher", "nodeApn"];

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
    const timer = setTimeout(() => reject(new Error(`bench: no "${type}" from worker within ${timeoutMs} ms`)), timeoutMs);
    const onMessage = (message: { type: string }) => {
      if (message.type !== type) return;
      clearTimeout(timer);
      child.off("message", onMessage);
      resolve(message as T);
    };
    child.on("message", onMessage);
    child.once("exit", (code) => (clearTimeout(timer), reject(new Error(`bench: worker exited (${code}) before "${type}"`))));
  });
}

export async function benchHelperThroughput(options: HelperThroughputOptions, log: (line: string) => void = () => {}): Promise<HelperThroughputResult> {
  // Inside the package, so the bundled workers resolve @parse/node-apn from node_modules.
  mkdirSync(join(ROOT, "build", "bench"), { recursive: true });
  const dir = mkdtempSync(join(ROOT, "build", "bench", "throughput-"));
  const server = { child: null as ChildProcess | null };
  try {
    await buildWorkers(dir);
    const keyFile = join(dir, "AuthKey_BENCHKEY01.p8");
    execFileSync("openssl", ["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", keyFile], { stdio: "pipe" });
    // Inherit-free stdio for the client: its console must not slow it down.
    server.child = fork(join(dir, "apns-server.mjs"), [TEST_CA_DIR], { stdio: ["ignore", "inherit", "inherit", "ipc"] });
    const { port } = await nextMessage<{ port: number }>(server.child, "listening", 10_000);
    const runs: ClientReport[] = [];
    for (let round_ = 0; round_ < options.rounds; round_++) {
      const kinds = round_ % 2 === 0 ? KINDS : [...KINDS].reverse();
      for (const kind of kinds) {
        const job: ClientJob = {
          kind,
          host: `127.0.0.1:${port}`,
          pushes: options.pushes,
          concurrency: options.concurrency,
          appId: APP_ID,
          keyFile,
          keyId: "BENCHKEY01",
          teamId: "BENCHTEAM1",
          certificateFile: join(TEST_CA_DIR, "apple-app.pem"),
        };
        const client = fork(join(dir, "push-client.mjs"), [JSON.stringify(job)], { stdio: ["ignore", "inherit", "inherit", "ipc"] });
        const { report } = await nextMessage<{ report: ClientReport }>(client, "report", 300_000);
        if (report.failures > 0) throw new Error(`bench: ${kind}: ${report.failures} of ${report.pushes} pushes failed, first: ${report.firstFailure}`);
        log(`helper throughput: ${kind} (${report.auth}): ${Math.round(report.pushesPerSec)} pushes/s, ${Math.round(report.pushesPerCpuSec)} per CPU-second`);
        runs.push({ ...report, elapsedMs: round(report.elapsedMs, 1), pushesPerSec: round(report.pushesPerSec, 0), pushesPerCpuSec: round(report.pushesPerCpuSec, 0) });
      }
    }
    const best = (kind: ClientKind, field: "pushesPerSec" | "pushesPerCpuSec") => Math.max(...runs.filter((run) => run.kind === kind).map((run) => run[field]));
    const helperPushesPerSec = { pusher: best("pusher", "pushesPerSec"), nodeApn: best("nodeApn", "pushesPerSec"), bareHttp2: best("bareHttp2", "pushesPerSec") };
    const helperPushesPerCpuSec = { pusher: best("pusher", "pushesPerCpuSec"), nodeApn: best("nodeApn", "pushesPerCpuSec"), bareHttp2: best("bareHttp2", "pushesPerCpuSec") };
    server.child.send({ type: "stats" });
    const stats = await nextMessage<{ pushes: number; auth: { bearer: number; certificate: number } }>(server.child, "stats", 5000);
    const expected = options.rounds * KINDS.length * (options.pushes + 1);
    if (stats.pushes !== expected) throw new Error(`bench: the mock APNs counted ${stats.pushes} pushes, expected ${expected}`);
    return {
      pushes: options.pushes,
      concurrency: options.concurrency,
      helperAuth: runs.find((run) => run.kind === "pusher")!.auth,
      helperPushesPerSec,
      helperPushesPerCpuSec,
      runs,
      pusherVsNodeApn: round(helperPushesPerSec.pusher / helperPushesPerSec.nodeApn, 2),
      pusherVsBareHttp2: round(helperPushesPerSec.pusher / helperPushesPerSec.bareHttp2, 2),
    };
  } finally {
    server.child?.kill();
    rmSync(dir, { recursive: true, force: true });
  }
}
