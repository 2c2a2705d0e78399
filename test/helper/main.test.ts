// The helper as Kamailio runs it: the bundled entry in its own process, a fake evapi server standing in for
// Kamailio (netstrings over TCP), and the mock APNs over HTTP/2 + TLS (trusted through NODE_EXTRA_CA_CERTS,
// which the child process inherits).
import { spawn, type ChildProcess } from "node:child_process";
import { createHmac, randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { build } from "esbuild";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PROTOCOL_VERSION, type PushRequest, type PushResult } from "../../src/protocol";
import { MockApns, testCaDir } from "../support/mock-apns";
import { waitUntil } from "../support/wait-until";

const APP_ID = "com.app.mymobileapp.dev";
/** APP_ID's bundle id (the test CA's apple-app.pem is its certificate). */
const BUNDLE = "com.app.mymobileapp";

/** The link secret both sides read (written to a file for the helper). */
const LINK_SECRET = randomBytes(32).toString("hex");

/** Kamailio's answer to a link challenge (src/link-auth.ts), computed here with node:crypto. */
function linkProof(role: "kamailio" | "helper", kamailioNonce: string, helperNonce: string): string {
  return createHmac("sha256", LINK_SECRET)
    .update(`kamailio-pusher link v1 ${role} ${kamailioNonce} ${helperNonce}`)
    .digest("hex");
}

/**
 * Kamailio's side of the link: accepts the helper, challenges it and proves the link secret as pusher.cfg does,
 * reads and writes netstrings (written independently of the helper's codec).
 */
class FakeEvapi {
  readonly received: { connectionId: number; message: { [key: string]: unknown } }[] = [];
  connections = 0;
  /** Connections whose helper proved the link secret. */
  readonly authenticated: number[] = [];
  private socket: net.Socket | null = null;
  private readonly server = net.createServer((socket) => this.onConnection(socket));

  async listen(): Promise<number> {
    await new Promise<void>((resolve) => this.server.listen(0, "127.0.0.1", resolve));
    return (this.server.address() as net.AddressInfo).port;
  }

  private onConnection(socket: net.Socket): void {
    this.connections++;
    const connectionId = this.connections;
    this.socket = socket;
    let buffer = Buffer.alloc(0);
    const kamailioNonce = randomBytes(32).toString("hex");
    let helperNonce = "";
    const frame = (message: unknown) => {
      const text = JSON.stringify(message);
      socket.write(`${Buffer.byteLength(text)}:${text},`);
    };
    frame({ type: "link-challenge", nonce: kamailioNonce });
    socket.on("error", () => {});
    socket.on("data", (chunk) => {
      buffer = Buffer.concat([buffer, chunk]);
      for (;;) {
        const colon = buffer.indexOf(":");
        if (colon < 0) return;
        const length = Number(buffer.subarray(0, colon).toString("ascii"));
        const end = colon + 1 + length;
        if (buffer.length <= end) return;
        if (buffer[end] !== 0x2c) throw new Error(`bad frame from the helper: ${buffer.toString("utf8")}`);
        const message = JSON.parse(buffer.toString("utf8", colon + 1, end));
        this.received.push({ connectionId, message });
        buffer = buffer.subarray(end + 1);
        if (message.type === "link-challenge") {
          helperNonce = message.nonce;
          frame({ type: "link-proof", proof: linkProof("kamailio", kamailioNonce, helperNonce) });
        }
        if (message.type === "link-proof" && message.proof === linkProof("helper", kamailioNonce, helperNonce))
          this.authenticated.push(connectionId);
      }
    });
  }

  /** Writes one netstring frame (byte length, as evapi does). */
  send(payload: unknown): void {
    const text = typeof payload === "string" ? payload : JSON.stringify(payload);
    this.writeRaw(`${Buffer.byteLength(text)}:${text},`);
  }

  writeRaw(data: string | Buffer): void {
    if (!this.socket) throw new Error("the helper is not connected");
    this.socket.write(data);
  }

  /** Kamailio restarting: the connection goes away under the helper. */
  dropConnection(): void {
    this.socket?.destroy();
    this.socket = null;
  }

  async waitFor(
    predicate: (entry: { connectionId: number; message: { [key: string]: unknown } }) => boolean,
    timeoutMs = 5000,
  ) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.received.find(predicate);
      if (found) return found;
      if (Date.now() > deadline)
        throw new Error(`no matching message from the helper; got ${JSON.stringify(this.received)}\n${helperOutput}`);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }

  async close(): Promise<void> {
    this.socket?.destroy();
    await new Promise((resolve) => this.server.close(resolve));
  }
}

let workDir: string;
let bundle: string;
let caDir: string;
let apns: MockApns;
let evapi: FakeEvapi;
let evapiPort: number;
let linkSecretFile: string;
let helper: ChildProcess;
let helperOutput = "";
let helperExit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
const tokensSent: string[] = [];
let callCounter = 0;

function startHelper(args: string[]): {
  child: ChildProcess;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  output: () => string;
} {
  const child = spawn(process.execPath, [bundle, ...args], { env: process.env, stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  child.stdout!.on("data", (chunk) => (output += chunk));
  child.stderr!.on("data", (chunk) => (output += chunk));
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on("exit", (code, signal) => resolve({ code, signal })),
  );
  return { child, exit, output: () => output };
}

function pushRequest(overrides: Partial<PushRequest["device"]> = {}): PushRequest {
  callCounter++;
  const token = overrides.token ?? `${callCounter.toString(16).padStart(4, "0")}${"9f3a".repeat(15)}`;
  tokensSent.push(token);
  // A token APNs issued to the app's phone (a PushKit token unless the device says alert).
  if ((overrides.provider ?? "apple") === "apple")
    apns.addDevice(token, { bundle: BUNDLE, kind: overrides.pushKind === "alert" ? "alert" : "voip" });
  return {
    type: "push",
    callRef: `${callCounter}:${1000 + callCounter}`,
    callId: `${callCounter}-e2e@example.com`,
    aor: "sip:alice@example.com",
    device: { instance: `<urn:uuid:e2e-${callCounter}>`, appId: APP_ID, provider: "apple", ...overrides, token },
    // Non-ASCII on purpose: netstring lengths are bytes in both directions.
    caller: { number: "+15551234567", name: "Zoë 📞 Smith" },
    proxy: "sip:127.0.0.1:5060;transport=udp",
    ringsUntilMs: Date.now() + 20_000,
  };
}

async function resultFor(request: PushRequest): Promise<{ connectionId: number; message: { [key: string]: unknown } }> {
  return evapi.waitFor(({ message }) => message.type === "push-result" && message.callRef === request.callRef);
}

beforeAll(async () => {
  caDir = testCaDir();
  workDir = mkdtempSync(join(tmpdir(), "pusher-helper-test-"));
  bundle = join(workDir, "pusher-helper.mjs");
  await build({
    entryPoints: ["src/helper/main.ts"],
    outfile: bundle,
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    logLevel: "warning",
  });

  apns = await MockApns.start({ caDir });
  evapi = new FakeEvapi();
  evapiPort = await evapi.listen();
  const configFile = join(workDir, "pusher.json");
  linkSecretFile = join(workDir, "link.secret");
  writeFileSync(linkSecretFile, LINK_SECRET + "\n", { mode: 0o600 });
  writeFileSync(
    configFile,
    JSON.stringify({
      apps: { [APP_ID]: { apple: apns.appleConfig({ certificateFile: join(caDir, "apple-app.pem") }) } },
      log: { level: "debug" },
    }),
  );
  const started = startHelper([
    "--config",
    configFile,
    "--link-port",
    String(evapiPort),
    "--link-secret-file",
    linkSecretFile,
  ]);
  helper = started.child;
  helperExit = started.exit;
  started.child.stdout!.on("data", (chunk) => (helperOutput += chunk));
  started.child.stderr!.on("data", (chunk) => (helperOutput += chunk));
});

afterAll(async () => {
  if (helper && helper.exitCode === null) helper.kill("SIGKILL");
  await evapi?.close();
  await apns?.close();
  if (workDir) rmSync(workDir, { recursive: true, force: true });
});

describe("pusher-helper end to end", () => {
  it("says hello with the protocol version and its pid once both sides proved the link secret, and nothing before", async () => {
    const { connectionId, message } = await evapi.waitFor(({ message }) => message.type === "hello");
    expect(message).toEqual({ type: "hello", version: PROTOCOL_VERSION, pid: helper.pid });
    expect(evapi.authenticated).toContain(connectionId);
    const types = evapi.received
      .filter((entry) => entry.connectionId === connectionId)
      .map((entry) => entry.message.type);
    expect(types.slice(0, 3)).toEqual(["link-challenge", "link-proof", "hello"]);
  });

  it("pushes Kazoo's payload to APNs with the VoIP headers and reports sent", async () => {
    const request = pushRequest();
    const sentAtMs = Date.now();
    evapi.send(request);
    const { message } = await resultFor(request);

    expect(message).toEqual({
      type: "push-result",
      callRef: request.callRef,
      callId: request.callId,
      aor: request.aor,
      instance: request.device.instance,
      outcome: "sent",
      token: request.device.token,
    } satisfies PushResult);
    const received = apns.requestsFor(request.device.token);
    expect(received).toHaveLength(1);
    const [push] = received;
    expect(push.method).toBe("POST");
    expect(push.path).toBe(`/3/device/${request.device.token}`);
    expect(push.headers).toMatchObject({
      "apns-topic": "com.app.mymobileapp.voip",
      "apns-push-type": "voip",
      "apns-priority": "10",
      "apns-expiration": "0",
      "content-type": "application/json",
    });
    expect(push.headers.authorization).toBeUndefined();
    expect(push.clientSubject.CN).toBe("Apple VoIP Services: com.app.mymobileapp");
    expect(push.body).toEqual({
      aps: {
        alert: { "loc-key": "IC_SIL", "loc-args": ["+15551234567 - Zoë 📞 Smith"] },
        sound: "ring.caf",
        "call-id": request.callId,
      },
      "call-id": request.callId,
      "caller-id-number": "+15551234567",
      "caller-id-name": "Zoë 📞 Smith",
      proxy: "sip:127.0.0.1:5060;transport=udp",
      utc_unix_timestamp_ms: expect.stringMatching(/^\d{13}$/),
    });
    const timestampMs = Number((push.body as { utc_unix_timestamp_ms: string }).utc_unix_timestamp_ms);
    expect(timestampMs).toBeGreaterThanOrEqual(sentAtMs);
    expect(timestampMs).toBeLessThanOrEqual(push.receivedAtMs);
  });

  it("logs one line for the push with the masked token, outcome and latency", async () => {
    const request = pushRequest();
    evapi.send(request);
    await resultFor(request);
    const token = request.device.token;
    const masked = `${token.slice(0, 6)}…${token.slice(-4)}`;
    const lines = helperOutput.split("\n").filter((line) => line.includes(`call-id="${request.callId}"`));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z INFO push /);
    expect(lines[0]).toContain(`app="${APP_ID}"`);
    expect(lines[0]).toContain(`token=${masked}`);
    expect(lines[0]).toContain("outcome=sent");
    expect(lines[0]).toMatch(/latency=\d+ms/);
  });

  it("reports 410 Unregistered as failed with dropToken, the code and the 410's timestamp", async () => {
    const request = pushRequest();
    apns.replyFor(request.device.token, { status: 410, reason: "Unregistered", timestamp: 1795859375338 });
    evapi.send(request);
    const { message } = await resultFor(request);

    expect(message).toEqual({
      type: "push-result",
      callRef: request.callRef,
      callId: request.callId,
      aor: request.aor,
      instance: request.device.instance,
      outcome: "failed",
      code: "PUSHER_ERR_APNS_UNREGISTERED",
      reason: "Unregistered",
      dropToken: true,
      token: request.device.token,
      tokenInvalidSinceMs: 1795859375338,
    } satisfies PushResult);
    expect(apns.requestsFor(request.device.token)).toHaveLength(1);
  });

  it("answers a Firebase device of an Apple-only app and an unknown app as failed without pushing", async () => {
    const firebase = pushRequest({ provider: "firebase" });
    const unknown = pushRequest({ appId: "com.unknown.app" });
    evapi.send(firebase);
    evapi.send(unknown);

    expect((await resultFor(firebase)).message).toMatchObject({ outcome: "failed", code: "PUSHER_ERR_NO_APP" });
    expect((await resultFor(unknown)).message).toMatchObject({ outcome: "failed", code: "PUSHER_ERR_NO_APP" });
    expect(apns.requestsFor(firebase.device.token)).toHaveLength(0);
    expect(apns.requestsFor(unknown.device.token)).toHaveLength(0);
  });

  it("ignores a frame that is not a plugin message and keeps serving the connection", async () => {
    const connectionsBefore = evapi.connections;
    evapi.send("not json");
    evapi.send({ type: "push", callRef: "missing fields" });
    const request = pushRequest();
    // Two frames in one write, whitespace between: evapi's framing allows both.
    const text = JSON.stringify(request);
    evapi.writeRaw(`2:{}, \n${Buffer.byteLength(text)}:${text},`);

    expect((await resultFor(request)).message).toMatchObject({ outcome: "sent" });
    expect(evapi.connections).toBe(connectionsBefore);
    expect(helperOutput).toContain("PUSHER_ERR_BAD_MESSAGE");
  });

  it("reconnects and says hello again after Kamailio drops the connection", async () => {
    const connectionsBefore = evapi.connections;
    evapi.dropConnection();
    const hello = await evapi.waitFor(
      ({ connectionId, message }) => connectionId > connectionsBefore && message.type === "hello",
    );
    expect(hello.message).toEqual({ type: "hello", version: PROTOCOL_VERSION, pid: helper.pid });

    const request = pushRequest();
    evapi.send(request);
    const result = await resultFor(request);
    expect(result.connectionId).toBe(hello.connectionId);
    expect(result.message).toMatchObject({ outcome: "sent" });
  });

  it("drops and reopens the connection when a frame announces more than 1 MiB", async () => {
    const connectionsBefore = evapi.connections;
    evapi.writeRaw(`${1024 * 1024 + 1}:`);
    await evapi.waitFor(({ connectionId, message }) => connectionId > connectionsBefore && message.type === "hello");
    expect(helperOutput).toContain("PUSHER_ERR_LINK_FRAME");
  });

  it("holds the app's pushes back once APNs refused its certificate, until a reload (SIGHUP) lifts the hold", async () => {
    const refused = pushRequest();
    apns.replyFor(refused.device.token, { status: 403, reason: "BadCertificate" });
    evapi.send(refused);
    expect((await resultFor(refused)).message).toMatchObject({
      outcome: "failed",
      code: "PUSHER_ERR_APNS_CREDENTIALS",
    });

    const held = pushRequest();
    evapi.send(held);
    const { message } = await resultFor(held);
    expect(message).toMatchObject({ outcome: "failed", code: "PUSHER_ERR_APNS_CREDENTIALS" });
    expect(message.reason).toMatch(/^not sent: apple refused this app's credentials \d+ s ago \(BadCertificate\)/);
    expect(apns.requestsFor(held.device.token)).toHaveLength(0);

    helper.kill("SIGHUP");
    await waitUntil(
      () => helperOutput.includes("config reloaded"),
      5000,
      () => `the reload; helper output:\n${helperOutput.slice(-2000)}`,
    );
    const afterReload = pushRequest();
    evapi.send(afterReload);
    expect((await resultFor(afterReload)).message).toMatchObject({ outcome: "sent" });
  });

  it("never writes a device token in full to its output", () => {
    expect(tokensSent.length).toBeGreaterThan(3);
    for (const token of tokensSent) expect(helperOutput).not.toContain(token);
  });

  it("stops cleanly with exit code 0 on SIGTERM", async () => {
    helper.kill("SIGTERM");
    expect(await helperExit).toEqual({ code: 0, signal: null });
    expect(helperOutput).toContain("stopping on SIGTERM");
  });
});

describe("pusher-helper configuration", () => {
  it("exits non-zero with one line naming the key when the config is invalid", async () => {
    const configFile = join(workDir, "invalid.json");
    writeFileSync(
      configFile,
      JSON.stringify({ apps: { "com.x": { apple: { certificateFile: "x.pem", host: "bad host" } } } }),
    );
    const run = startHelper(["--config", configFile]);
    const { code } = await run.exit;
    expect(code).not.toBe(0);
    expect(run.output().trim().split("\n")).toHaveLength(1);
    expect(run.output()).toContain("PUSHER_ERR_CONFIG");
    expect(run.output()).toContain("apps.com.x.apple.host");
  });

  it("exits non-zero with one line when the config is not JSON", async () => {
    const configFile = join(workDir, "broken.json");
    writeFileSync(configFile, "{ apps: ");
    const run = startHelper(["--config", configFile]);
    expect((await run.exit).code).not.toBe(0);
    expect(run.output().trim().split("\n")).toHaveLength(1);
    expect(run.output()).toMatch(/PUSHER_ERR_CONFIG .*broken\.json: invalid JSON/);
  });

  it("refuses a bad --link-port", async () => {
    const run = startHelper(["--config", join(workDir, "absent.json"), "--link-port", "70000"]);
    expect((await run.exit).code).not.toBe(0);
    expect(run.output()).toContain("--link-port");
  });

  it("refuses to start without a usable link secret file: missing, readable by others, or too short", async () => {
    const open = join(workDir, "open.secret");
    writeFileSync(open, LINK_SECRET, { mode: 0o644 });
    const short = join(workDir, "short.secret");
    writeFileSync(short, "tooshort", { mode: 0o600 });
    for (const [file, problem] of [
      [join(workDir, "absent.secret"), "cannot be read (ENOENT)"],
      [open, "is readable by group or others (mode 0644): chmod 600 it"],
      [short, "holds fewer than 32 characters"],
    ]) {
      const run = startHelper(["--config", join(workDir, "absent.json"), "--link-secret-file", file]);
      expect((await run.exit).code).toBe(1);
      expect(run.output().trim()).toBe(`pusher-helper: PUSHER_ERR_LINK_SECRET ${file} ${problem}`);
    }
  });

  it("runs on the defaults when the config file is missing, taking the config path from PUSHER_CONFIG", async () => {
    const server = new FakeEvapi();
    const port = await server.listen();
    const child = spawn(process.execPath, [bundle, "--link-port", String(port), "--link-secret-file", linkSecretFile], {
      env: { ...process.env, PUSHER_CONFIG: join(workDir, "absent.json") },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    child.stdout!.on("data", (chunk) => (output += chunk));
    const exit = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
    try {
      await server.waitFor(({ message }) => message.type === "hello");
      expect(output).toContain("absent.json (not found, using defaults)");
    } finally {
      child.kill("SIGTERM");
      expect(await exit).toBe(0);
      await server.close();
    }
  });
});
