// Child process for benchmark 4: one push client, a fresh process per run. Sends `pushes` call pushes to the
// fleet's 1 000 devices across 10 apps (bench/lib/apns-fleet.ts), push n to device n mod 1 000, with at most
// `concurrency` in flight, after a warm-up push per app and host (connections, TLS, JWTs, the stream limit raised),
// and reports pushes per second.
//   pusher    the helper's own ApnsSender (src/helper/apns-sender.ts) with the ten apps' config, exactly as
//             src/helper/push-handler.ts calls it
//   bareHttp2 a bare node:http2 loop with the same headers and bodies and a pool of one connection per app and
//             host (the helper's, as the mock counts it): what the pool allows, without the helper's work
import { createPrivateKey, sign } from "node:crypto";
import { readFileSync } from "node:fs";
import http2 from "node:http2";
import { ApnsSender } from "../../src/helper/apns-sender";
import { apnsAlertTopic, apnsTopic, buildApnsAlertPayload, buildApnsPayload } from "../../src/helper/apns-payload";
import { validateConfig, type AppleCredentials } from "../../src/config";
import type { PushRequest } from "../../src/protocol";
import { DOMAIN } from "../../test/support/topology";
import {
  FLEET_APPS,
  FLEET_DEVICES,
  fleetApp,
  fleetDevice,
  fleetKeyFile,
  fleetWarmUpDevices,
  type FleetEnvironment,
} from "../lib/apns-fleet";

export type ClientKind = "pusher" | "bareHttp2";

export interface ClientJob {
  kind: ClientKind;
  hosts: { [environment in FleetEnvironment]: string };
  pushes: number;
  concurrency: number;
  /** The fleet's AuthKey .p8 files. */
  keyDir: string;
}

export interface ClientReport {
  kind: ClientKind;
  pushes: number;
  failures: number;
  elapsedMs: number;
  pushesPerSec: number;
  /** Pushes per second of this process's own CPU time (user + system): what the client could do with a core of its own. */
  pushesPerCpuSec: number;
  /** How the client authenticated: always "token" (each app its own key). */
  auth: string;
  /** Attempts beyond one per push (the helper retries after a timeout or a refused stream; the bare loop never). */
  retries: number;
  /** What the helper logged about its connections, by message ("replacing the connection …: a request timed out"). */
  connectionEvents: { [message: string]: number };
  firstFailure?: string;
}

const job = JSON.parse(process.argv[2]) as ClientJob;
let retries = 0;
const connectionEvents: ClientReport["connectionEvents"] = {};
// Worked out once: the loop measures the clients, not the fleet's hashing.
const apps = Array.from({ length: FLEET_APPS }, (_, index) => fleetApp(index));
const devices = Array.from({ length: FLEET_DEVICES }, (_, n) => fleetDevice(n));

function pushRequest(n: number): PushRequest {
  const device = devices[n % FLEET_DEVICES];
  const request = {
    type: "push",
    callRef: `${n % 4096}:${n}`,
    callId: `bench-${n}@bench.example.com`,
    aor: `user${n % 1000}@${DOMAIN}`,
    device: {
      instance: `<urn:uuid:00000000-0000-4000-8000-${(n % 1000).toString(16).padStart(12, "0")}>`,
      appId: apps[device.app].appId,
      provider: "apple",
      token: device.token,
    },
    caller: { number: "15551234567", name: "Bench Caller" },
    proxy: "sip:127.0.0.1:5060;transport=udp",
    ringsUntilMs: Date.now() + 120_000,
  } as PushRequest;
  if (device.kind === "alert") request.device.pushKind = "alert";
  if (device.environment === "sandbox") request.device.sandbox = true;
  return request;
}

type SendOne = (n: number) => Promise<string | null>;
interface Client {
  send: SendOne;
  close: () => Promise<void>;
}

function pusherClient(): Client {
  const config = validateConfig({
    apps: Object.fromEntries(
      apps.map((app) => [
        app.appId,
        {
          apple: {
            keyFile: fleetKeyFile(job.keyDir, app),
            keyId: app.keyId,
            teamId: app.teamId,
            host: job.hosts.production,
            sandboxHost: job.hosts.sandbox,
          },
        },
      ]),
    ),
  });
  // Counts what the sessions log about connections (replaced, GOAWAY, failed), host and port left out.
  const count = (message: string) => {
    if (!/connection|GOAWAY/.test(message)) return;
    const key = message.replace(/https:\/\/[^\s:]+:\d+/g, "<host>").replace(/ \d+ ms/g, " N ms");
    connectionEvents[key] = (connectionEvents[key] ?? 0) + 1;
  };
  const sender = new ApnsSender({ logger: { error: count, warn: count, info() {}, debug: count } });
  return {
    async send(n) {
      const request = pushRequest(n);
      const outcome = await sender.send(request, config.apps[request.device.appId].apple as AppleCredentials);
      retries += outcome.attempts - 1;
      return outcome.outcome === "sent" ? null : `${outcome.code ?? ""} ${outcome.reason ?? ""}`;
    },
    close: () => sender.close(),
  };
}

/** An ES256 provider token, signed once: a client caching its JWT sends the same header every time. */
function bearer(index: number): string {
  const app = apps[index];
  const part = (value: object) => Buffer.from(JSON.stringify(value)).toString("base64url");
  const unsigned = `${part({ alg: "ES256", kid: app.keyId })}.${part({ iss: app.teamId, iat: Math.floor(Date.now() / 1000) })}`;
  const key = createPrivateKey(readFileSync(fleetKeyFile(job.keyDir, app)));
  const signature = sign("sha256", Buffer.from(unsigned), { key, dsaEncoding: "ieee-p1363" });
  return `bearer ${unsigned}.${signature.toString("base64url")}`;
}

function bareHttp2Client(): Client {
  const authorization = Array.from({ length: FLEET_APPS }, (_, index) => bearer(index));
  const pool = new Map<string, http2.ClientHttp2Session>();
  const sessionFor = (app: number, environment: FleetEnvironment) => {
    const key = `${app}\n${environment}`;
    let session = pool.get(key);
    if (!session) {
      session = http2.connect(`https://${job.hosts[environment]}`);
      session.on("error", () => {});
      pool.set(key, session);
    }
    return session;
  };
  return {
    send(n) {
      const request = pushRequest(n);
      const device = devices[n % FLEET_DEVICES];
      const alert = device.kind === "alert";
      const headers: http2.OutgoingHttpHeaders = {
        ":method": "POST",
        ":path": `/3/device/${request.device.token}`,
        authorization: authorization[device.app],
        "apns-topic": alert ? apnsAlertTopic(request.device.appId) : apnsTopic(request.device.appId),
        "apns-push-type": alert ? "alert" : "voip",
        "apns-priority": "10",
        "apns-expiration": "0",
        "content-type": "application/json",
      };
      if (alert) headers["apns-collapse-id"] = request.callId;
      const body = JSON.stringify(
        alert ? buildApnsAlertPayload(request, Date.now()) : buildApnsPayload(request, Date.now()),
      );
      return new Promise((resolve) => {
        const stream = sessionFor(device.app, device.environment).request(headers);
        let status = 0;
        const chunks: Buffer[] = [];
        stream.on("response", (response) => (status = Number(response[":status"])));
        stream.on("data", (chunk: Buffer) => chunks.push(chunk));
        stream.on("end", () =>
          resolve(status === 200 ? null : `status ${status} ${Buffer.concat(chunks).toString("utf8")}`),
        );
        stream.on("error", (error) => resolve(error.message));
        stream.end(body);
      });
    },
    close: async () => {
      for (const session of pool.values()) session.close();
    },
  };
}

const clients: Record<ClientKind, () => Client> = { pusher: pusherClient, bareHttp2: bareHttp2Client };

// The helper holds its event loop open with an interval (its sessions are unref'd while idle); so does this.
const keepAlive = setInterval(() => {}, 1 << 30);
const client = clients[job.kind]();
// One push per app and host first, all at once: every connection of the pool is open and trusted (APNs allows one
// stream on a token connection until a push succeeds) before the clock starts.
for (const failure of await Promise.all(fleetWarmUpDevices().map((n) => client.send(n)))) {
  if (failure) throw new Error(`${job.kind}: warm-up push failed: ${failure}`);
}
retries = 0;
for (const key of Object.keys(connectionEvents)) delete connectionEvents[key];
let next = 0;
let failures = 0;
let firstFailure: string | undefined;
const started = performance.now();
const cpuBefore = process.cpuUsage();
async function lane(): Promise<void> {
  while (next < job.pushes) {
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
const report: ClientReport = {
  kind: job.kind,
  pushes: job.pushes,
  failures,
  elapsedMs,
  pushesPerSec: (job.pushes * 1000) / elapsedMs,
  pushesPerCpuSec,
  auth: "token",
  retries,
  connectionEvents,
  firstFailure,
};
process.send!({ type: "report", report });
clearInterval(keepAlive);
process.disconnect();
