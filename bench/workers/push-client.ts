// Child process for benchmark 4: one push client, a fresh process per run. Sends `pushes` pushes with at most
// `concurrency` in flight, after one warm-up push (connection, TLS, JWT), and reports pushes per second.
//   pusher    the helper's own ApnsSender (src/helper/apns-sender.ts), exactly as the helper calls it
//   nodeApn   @parse/node-apn's Provider, token auth, pointed at the same mock
//   bareHttp2 a bare node:http2 loop with the same headers and body: the ceiling
import { readFileSync } from "node:fs";
import http2 from "node:http2";
import { createRequire } from "node:module";
import { ApnsSender } from "../../src/helper/apns-sender";
import { buildApnsPayload } from "../../src/helper/apns-payload";
import { validateConfig, type AppleCredentials } from "../../src/config";
import type { PushRequest } from "../../src/protocol";
import { DOMAIN } from "../../test/support/topology";

export type ClientKind = "pusher" | "nodeApn" | "bareHttp2";

export interface ClientJob {
  kind: ClientKind;
  host: string;
  pushes: number;
  concurrency: number;
  appId: string;
  keyFile: string;
  keyId: string;
  teamId: string;
  certificateFile: string;
}

export interface ClientReport {
  kind: ClientKind;
  pushes: number;
  failures: number;
  elapsedMs: number;
  pushesPerSec: number;
  /** Pushes per second of this process's own CPU time (user + system): what the client could do with a core of its own. */
  pushesPerCpuSec: number;
  /** How the client authenticated: "token" or "certificate". */
  auth: string;
  firstFailure?: string;
}

const job = JSON.parse(process.argv[2]) as ClientJob;
const token = (n: number) => n.toString(16).padStart(8, "0") + "f00d".repeat(14);

function pushRequest(n: number): PushRequest {
  return {
    type: "push",
    callRef: `${n % 4096}:${n}`,
    callId: `bench-${n}@bench.example.com`,
    aor: `user${n}@${DOMAIN}`,
    device: { instance: `<urn:uuid:00000000-0000-4000-8000-${n.toString(16).padStart(12, "0")}>`, appId: job.appId, provider: "apple", token: token(n) },
    caller: { number: "15551234567", name: "Bench Caller" },
    proxy: "sip:127.0.0.1:5060;transport=udp",
    ringsUntilMs: Date.now() + 120_000,
  } as PushRequest;
}

/** The helper's credentials, built by the product's own validator. Token auth when the config accepts it. */
function helperCredentials(): { credentials: AppleCredentials; auth: string } {
  try {
    // Both hosts on the mock: a sandbox retry (apns-sender.ts) must not leave loopback.
    const config = validateConfig({ apps: { [job.appId]: { apple: { keyFile: job.keyFile, keyId: job.keyId, teamId: job.teamId, host: job.host, sandboxHost: job.host } } } });
    return { credentials: config.apps[job.appId].apple!, auth: "token" };
  } catch {
    // A product without token auth yet: its certificate path (the report says which one ran).
    const config = validateConfig({ apps: { [job.appId]: { apple: { certificateFile: job.certificateFile, host: job.host, sandboxHost: job.host } } } });
    return { credentials: config.apps[job.appId].apple!, auth: "certificate" };
  }
}

type SendOne = (n: number) => Promise<string | null>;

async function pusherClient(): Promise<{ send: SendOne; close: () => Promise<void>; auth: string }> {
  const { credentials, auth } = helperCredentials();
  const sender = new ApnsSender();
  return {
    auth,
    async send(n) {
      const outcome = await sender.send(pushRequest(n), credentials);
      return outcome.outcome === "sent" ? null : `${outcome.code ?? ""} ${outcome.reason ?? ""}`;
    },
    close: () => sender.close(),
  };
}

async function nodeApnClient(): Promise<{ send: SendOne; close: () => Promise<void>; auth: string }> {
  const apn = createRequire(import.meta.url)("@parse/node-apn");
  const provider = new apn.Provider({
    token: { key: readFileSync(job.keyFile, "utf8"), keyId: job.keyId, teamId: job.teamId },
    // node-apn connects to https://<address> and passes its own options (port: 443 by default) to http2.connect,
    // where they win over the URL's port: both point it at the mock.
    address: job.host,
    port: Number(job.host.split(":")[1]),
    production: false,
  });
  return {
    auth: "token",
    async send(n) {
      const request = pushRequest(n);
      const note = new apn.Notification();
      note.rawPayload = buildApnsPayload(request, Date.now());
      note.topic = `${job.appId}.voip`;
      note.pushType = "voip";
      note.priority = 10;
      note.expiry = 0;
      const result = await provider.send(note, request.device.token);
      return result.failed.length ? JSON.stringify(result.failed[0]).slice(0, 200) : null;
    },
    close: async () => provider.shutdown(),
  };
}

async function bareHttp2Client(): Promise<{ send: SendOne; close: () => Promise<void>; auth: string }> {
  const session = http2.connect(`https://${job.host}`);
  session.on("error", () => {});
  // The same bearer header every time, as a client caching its JWT would send it (HPACK indexes it).
  const bearer = `bearer ${"x".repeat(180)}`;
  return {
    auth: "token",
    send(n) {
      const request = pushRequest(n);
      return new Promise((resolve) => {
        const stream = session.request({
          ":method": "POST",
          ":path": `/3/device/${request.device.token}`,
          authorization: bearer,
          "apns-topic": `${job.appId}.voip`,
          "apns-push-type": "voip",
          "apns-priority": "10",
          "apns-expiration": "0",
          "content-type": "application/json",
        });
        let status = 0;
        stream.on("response", (headers) => (status = Number(headers[":status"])));
        stream.on("data", () => {});
        stream.on("end", () => resolve(status === 200 ? null : `status ${status}`));
        stream.on("error", (error) => resolve(error.message));
        stream.end(JSON.stringify(buildApnsPayload(request, Date.now())));
      });
    },
    close: async () => void session.close(),
  };
}

const clients: Record<ClientKind, () => Promise<{ send: SendOne; close: () => Promise<void>; auth: string }>> = {
  pusher: pusherClient,
  nodeApn: nodeApnClient,
  bareHttp2: bareHttp2Client,
};

// The helper holds its event loop open with an interval (its sessions are unref'd while idle); so does this.
const keepAlive = setInterval(() => {}, 1 << 30);
const client = await clients[job.kind]();
const warmUp = await client.send(0);
if (warmUp) throw new Error(`${job.kind}: warm-up push failed: ${warmUp}`);
let next = 1;
let failures = 0;
let firstFailure: string | undefined;
const started = performance.now();
const cpuBefore = process.cpuUsage();
async function lane(): Promise<void> {
  while (next <= job.pushes) {
    const failure = await client.send(next++);
    if (failure) {
      failures++;
      firstFailure ??= failure;
    }
  }
}
await Promise.all(Array.from({ length: job.concurrency }, lane));
const elapsedMs = performance.now() - started;
const cpu = process.cpuUsage(cpuBefore);
await client.close();
const pushesPerCpuSec = (job.pushes * 1e6) / (cpu.user + cpu.system);
const report: ClientReport = { kind: job.kind, pushes: job.pushes, failures, elapsedMs, pushesPerSec: (job.pushes * 1000) / elapsedMs, pushesPerCpuSec, auth: client.auth, firstFailure };
process.send!({ type: "report", report });
clearInterval(keepAlive);
process.disconnect();
