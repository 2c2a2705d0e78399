import { execFileSync } from "node:child_process";
import { copyFileSync, mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { AppleCredentials } from "../../src/config";
import { ApnsSender } from "../../src/helper/apns-sender";
import { CredentialsAlarm } from "../../src/helper/credentials-alarm";
import type { Logger } from "../../src/helper/logger";
import { deliverPush } from "../../src/helper/push-handler";
import type { PushRequest } from "../../src/protocol";
import { MockApns, testCaDir, type ApnsEnvironment } from "../support/mock-apns";

const APP_ID = "com.app.mymobileapp.dev";
/** The bundle id of APP_ID (and of the test CA's apple-app.pem): the mock's devices belong to it. */
const BUNDLE = "com.app.mymobileapp";
let caDir: string;
let workDir: string;
let mock: MockApns;
let sender: ApnsSender;
let tokenCounter = 0;

/**
 * A token the mock APNs issued to a device of BUNDLE, PushKit ("voip") unless said, in production unless said;
 * `null`: a token APNs never issued (BadDeviceToken at either host).
 */
function newToken(kind: "voip" | "alert" | null = "voip", environment: ApnsEnvironment = "production"): string {
  tokenCounter++;
  const token = tokenCounter.toString(16).padStart(8, "0") + "c0ffee".repeat(9) + "beef";
  if (kind) mock.addDevice(token, { bundle: BUNDLE, kind, environment });
  return token;
}

function pushRequest(token: string, overrides: Partial<PushRequest> = {}): PushRequest {
  return {
    type: "push",
    callRef: "17:4242",
    callId: `call-${token.slice(0, 8)}@example.com`,
    aor: "sip:alice@example.com",
    device: { instance: "<urn:uuid:1>", appId: APP_ID, provider: "apple", token },
    caller: { number: "+15551234567", name: "Bob" },
    proxy: "sip:127.0.0.1:5060",
    ringsUntilMs: Date.now() + 20_000,
    ...overrides,
  };
}

function credentials(
  certificateFile = join(caDir, "apple-app.pem"),
  extra: Partial<AppleCredentials> = {},
): AppleCredentials {
  return { host: mock.host, sandboxHost: mock.sandboxHost, callEndedVoipPush: false, certificateFile, ...extra };
}

/** A logger that keeps its lines. */
function recorder(): { lines: { level: string; message: string }[]; logger: Logger } {
  const lines: { level: string; message: string }[] = [];
  const line = (level: string) => (message: string) => void lines.push({ level, message });
  return { lines, logger: { error: line("error"), warn: line("warn"), info: line("info"), debug: line("debug") } };
}

beforeAll(async () => {
  caDir = testCaDir();
  workDir = mkdtempSync(join(tmpdir(), "apns-sender-test-"));
  mock = await MockApns.start({ caDir });
});

afterEach(async () => {
  await sender?.close();
});

afterAll(async () => {
  await mock?.close();
  if (workDir) rmSync(workDir, { recursive: true, force: true });
});

describe("ApnsSender", () => {
  it("posts a VoIP push with the APNs headers and reports it sent", async () => {
    sender = new ApnsSender();
    const token = newToken();
    const result = await sender.send(pushRequest(token), credentials());

    expect(result).toMatchObject({ outcome: "sent", attempts: 1, status: 200 });
    expect(result.code).toBeUndefined();
    expect(result.providerId).toMatch(/^[0-9a-f-]{36}$/);
    const [received] = mock.requestsFor(token);
    expect(received.method).toBe("POST");
    expect(received.path).toBe(`/3/device/${token}`);
    expect(received.headers).toMatchObject({
      "apns-topic": "com.app.mymobileapp.voip",
      "apns-push-type": "voip",
      "apns-priority": "10",
      "apns-expiration": "0",
      "content-type": "application/json",
    });
    expect(received.clientSubject.CN).toBe("Apple VoIP Services: com.app.mymobileapp");
  });

  it("reuses one connection for pushes with the same host and certificate", async () => {
    sender = new ApnsSender();
    const before = mock.connectionCount;
    const tokens = [newToken(), newToken(), newToken()];
    const results = await Promise.all(tokens.map((token) => sender.send(pushRequest(token), credentials())));
    await sender.send(pushRequest(newToken()), credentials());

    expect(results.map((result) => result.outcome)).toEqual(["sent", "sent", "sent"]);
    expect(mock.connectionCount - before).toBe(1);
    expect(sender.sessionCount).toBe(1);
  });

  it("connects ahead of the first push when asked, and the push then uses that connection", async () => {
    sender = new ApnsSender();
    const before = mock.connectionCount;
    sender.connect(credentials());
    const deadline = Date.now() + 5000;
    while (mock.connectionCount === before && Date.now() < deadline) await new Promise((done) => setTimeout(done, 10));
    expect(mock.connectionCount - before).toBe(1); // connected with no push sent
    expect((await sender.send(pushRequest(newToken()), credentials())).outcome).toBe("sent");
    expect(mock.connectionCount - before).toBe(1);
  });

  it("reports 410 Unregistered as failed with dropToken and does not retry", async () => {
    sender = new ApnsSender();
    const token = newToken();
    mock.replyFor(token, { status: 410, reason: "Unregistered" });
    const result = await sender.send(pushRequest(token), credentials());

    expect(result).toMatchObject({
      outcome: "failed",
      code: "PUSHER_ERR_APNS_UNREGISTERED",
      reason: "Unregistered",
      dropToken: true,
      attempts: 1,
    });
    expect(mock.requestsFor(token)).toHaveLength(1);
  });

  it("reports the time a 410 says the token became invalid, and ignores a timestamp that is not a time", async () => {
    sender = new ApnsSender();
    const token = newToken();
    mock.replyFor(token, { status: 410, reason: "Unregistered", timestamp: 1795858084761 });
    expect((await sender.send(pushRequest(token), credentials())).tokenInvalidSinceMs).toBe(1795858084761);
    for (const timestamp of [-1, 9e15]) {
      const other = newToken();
      mock.replyFor(other, { status: 410, reason: "Unregistered", timestamp });
      const result = await sender.send(pushRequest(other), credentials());
      expect(result.dropToken).toBe(true);
      expect(result.tokenInvalidSinceMs).toBeUndefined();
    }
  });

  it("keeps the token on 400 BadTopic (an app id that is not the certificate's)", async () => {
    sender = new ApnsSender();
    const token = newToken();
    const result = await sender.send(
      pushRequest(token, { device: { instance: "i", appId: "com.other.app", provider: "apple", token } }),
      credentials(),
    );

    expect(result).toMatchObject({
      outcome: "failed",
      code: "PUSHER_ERR_APNS_REJECTED",
      reason: "BadTopic",
      attempts: 1,
    });
    expect(result.dropToken).toBeUndefined();
  });

  it("retries a 503 once and reports the retry's answer", async () => {
    sender = new ApnsSender();
    const token = newToken();
    mock.replyFor(token, { status: 503, reason: "ServiceUnavailable" }, { status: 200 });
    const result = await sender.send(pushRequest(token), credentials());

    expect(result).toMatchObject({ outcome: "sent", attempts: 2 });
    expect(mock.requestsFor(token).map((request) => request.status)).toEqual([503, 200]);
  });

  it("retries a 500 with doubling backoff while the call rings, then reports the last answer", async () => {
    const delays: number[] = [];
    sender = new ApnsSender({ sleep: async (ms) => void delays.push(ms), retryBaseDelayMs: 100 });
    const token = newToken();
    mock.replyFor(token, { status: 500, reason: "InternalServerError" });
    const result = await sender.send(pushRequest(token), credentials());

    expect(result).toMatchObject({
      outcome: "failed",
      code: "PUSHER_ERR_APNS_UNAVAILABLE",
      reason: "InternalServerError",
      attempts: 6,
    });
    expect(mock.requestsFor(token)).toHaveLength(6);
    // base·2^i with jitter on the upper half: 50-100, 100-200, 200-400, …
    delays.forEach((delay, index) => {
      expect(delay).toBeGreaterThanOrEqual(50 * 2 ** index);
      expect(delay).toBeLessThanOrEqual(100 * 2 ** index);
    });
  });

  it("waits what Retry-After says before retrying a 429, and not at all beyond the ring window", async () => {
    const delays: number[] = [];
    sender = new ApnsSender({ sleep: async (ms) => void delays.push(ms) });
    const token = newToken();
    mock.replyFor(token, { status: 429, reason: "TooManyRequests", retryAfter: "3" }, { status: 200 });
    expect(await sender.send(pushRequest(token), credentials())).toMatchObject({ outcome: "sent", attempts: 2 });
    expect(delays).toEqual([3000]);

    const late = newToken();
    mock.replyFor(late, { status: 503, reason: "ServiceUnavailable", retryAfter: "60" }, { status: 200 });
    const result = await sender.send(pushRequest(late, { ringsUntilMs: Date.now() + 20_000 }), credentials());
    expect(result).toMatchObject({ outcome: "failed", code: "PUSHER_ERR_APNS_UNAVAILABLE", attempts: 1 });
    expect(mock.requestsFor(late)).toHaveLength(1);
  });

  it("times out a stalled request, retries once on a new connection, then fails with PUSHER_ERR_APNS_TIMEOUT", async () => {
    sender = new ApnsSender({ requestTimeoutMs: 300 });
    const token = newToken();
    mock.replyFor(token, { stall: true });
    const result = await sender.send(pushRequest(token), credentials());

    expect(result).toMatchObject({ outcome: "failed", code: "PUSHER_ERR_APNS_TIMEOUT", attempts: 2 });
    const [first, second] = mock.requestsFor(token);
    expect(second.connectionId).not.toBe(first.connectionId);
  });

  it("never waits beyond the call's ring window, and does not retry without time left", async () => {
    sender = new ApnsSender({ requestTimeoutMs: 10_000 });
    const token = newToken();
    mock.replyFor(token, { stall: true });
    const startedMs = Date.now();
    const result = await sender.send(pushRequest(token, { ringsUntilMs: startedMs + 400 }), credentials());

    expect(result).toMatchObject({ outcome: "failed", code: "PUSHER_ERR_APNS_TIMEOUT", attempts: 1 });
    expect(Date.now() - startedMs).toBeLessThan(1500);
  });

  it("sends nothing once the call has stopped ringing", async () => {
    sender = new ApnsSender();
    const token = newToken();
    const result = await sender.send(pushRequest(token, { ringsUntilMs: Date.now() - 1 }), credentials());

    expect(result).toMatchObject({ outcome: "failed", code: "PUSHER_ERR_CALL_ENDED", attempts: 0 });
    expect(mock.requestsFor(token)).toHaveLength(0);
  });

  it("reports an unreadable certificate file as a credentials problem, without retry", async () => {
    sender = new ApnsSender();
    const result = await sender.send(pushRequest(newToken()), credentials(join(workDir, "missing.pem")));

    expect(result).toMatchObject({ outcome: "failed", code: "PUSHER_ERR_APNS_CREDENTIALS", attempts: 1 });
    expect(result.reason).toContain("ENOENT");
  });

  it("reports a certificate whose key does not match as a credentials problem", async () => {
    sender = new ApnsSender();
    const appPem = readFileSync(join(caDir, "apple-app.pem"), "utf8");
    const certificate = appPem.slice(0, appPem.indexOf("-----BEGIN PRIVATE KEY-----"));
    const mismatched = join(workDir, "mismatched.pem");
    writeFileSync(mismatched, certificate + readFileSync(join(caDir, "server.key"), "utf8"));
    const result = await sender.send(pushRequest(newToken()), credentials(mismatched));

    expect(result).toMatchObject({ outcome: "failed", code: "PUSHER_ERR_APNS_CREDENTIALS", attempts: 1 });
  });

  it("reports a connection closed after the handshake (client certificate refused by the mock) as a connection failure", async () => {
    // The server certificate is from the right CA but only for serverAuth: the mock refuses it as a client's.
    // Node's TLS server drops such a client without a TLS alert, so the sender sees only a closed connection
    // (real APNs answers 403 BadCertificate, covered by the classification tests).
    const wrongPurpose = join(workDir, "server-as-client.pem");
    writeFileSync(
      wrongPurpose,
      readFileSync(join(caDir, "server.pem"), "utf8") + readFileSync(join(caDir, "server.key"), "utf8"),
    );
    const token = newToken();
    sender = new ApnsSender({ sleep: async () => {} });
    const result = await sender.send(pushRequest(token), credentials(wrongPurpose));

    expect(result).toMatchObject({ outcome: "failed", code: "PUSHER_ERR_APNS_CONNECTION", attempts: 6 });
    expect(mock.requestsFor(token)).toHaveLength(0);
  });

  it("reads the certificate once per connection and again on reconnect after GOAWAY", async () => {
    sender = new ApnsSender();
    const copy = join(workDir, "copy.pem");
    copyFileSync(join(caDir, "apple-app.pem"), copy);
    expect((await sender.send(pushRequest(newToken()), credentials(copy))).outcome).toBe("sent");

    unlinkSync(copy);
    // Same session: the file is not read again.
    expect((await sender.send(pushRequest(newToken()), credentials(copy))).outcome).toBe("sent");

    mock.goAwayAll();
    await waitFor(() => sender.sessionCount === 0);
    // New session: the file is read again, and is gone.
    expect(await sender.send(pushRequest(newToken()), credentials(copy))).toMatchObject({
      code: "PUSHER_ERR_APNS_CREDENTIALS",
    });

    copyFileSync(join(caDir, "apple-app.pem"), copy);
    const before = mock.connectionCount;
    expect((await sender.send(pushRequest(newToken()), credentials(copy))).outcome).toBe("sent");
    expect(mock.connectionCount - before).toBe(1);
  });

  it("retries with backoff and reports a connection failure when APNs cannot be reached", async () => {
    sender = new ApnsSender({ sleep: async () => {} });
    const closedPort = await freePort();
    const result = await sender.send(
      pushRequest(newToken()),
      credentials(join(caDir, "apple-app.pem"), { host: `127.0.0.1:${closedPort}` }),
    );

    expect(result).toMatchObject({ outcome: "failed", code: "PUSHER_ERR_APNS_CONNECTION", attempts: 6 });
    expect(result.reason).toContain("ECONNREFUSED");
  });

  it("refuses an APNs server whose certificate it cannot verify, without retry", async () => {
    // A second CA, unknown to NODE_EXTRA_CA_CERTS: the sender must not trust its server.
    const otherCaDir = join(workDir, "other-ca");
    execFileSync(process.execPath, ["test/support/make-test-ca.mjs", otherCaDir]);
    const untrusted = await MockApns.start({ caDir: otherCaDir });
    try {
      sender = new ApnsSender();
      const token = newToken();
      const result = await sender.send(
        pushRequest(token),
        credentials(join(caDir, "apple-app.pem"), { host: untrusted.host, sandboxHost: untrusted.sandboxHost }),
      );

      expect(result).toMatchObject({ outcome: "failed", code: "PUSHER_ERR_APNS_SERVER_UNTRUSTED", attempts: 1 });
      expect(untrusted.requests).toHaveLength(0);
    } finally {
      await untrusted.close();
    }
  });

  it("sends again, at once and on a new connection, a push caught above GOAWAY's last-stream-id", async () => {
    // No request timeout within the ring window: only the GOAWAY can get this push through.
    sender = new ApnsSender({ sleep: async () => {}, requestTimeoutMs: 60_000 });
    // One push first: Node's server counts a GOAWAY last-stream-id of 0 as "the last stream processed", so the
    // refused stream must not be the connection's first one.
    const opening = newToken();
    expect((await sender.send(pushRequest(opening), credentials())).outcome).toBe("sent");
    const token = newToken();
    mock.replyFor(token, { stall: true }, { status: 200 });
    const pending = sender.send(pushRequest(token, { ringsUntilMs: Date.now() + 8000 }), credentials());
    await waitFor(() => mock.stalledCount > 0);
    mock.goAwayRefusingStalled();
    const result = await pending;

    expect(result).toMatchObject({ outcome: "sent", attempts: 2 });
    const [first, second] = mock.requestsFor(token);
    expect(first.connectionId).toBe(mock.requestsFor(opening)[0].connectionId);
    expect(second.connectionId).not.toBe(first.connectionId);
  });

  it("keeps serving a second app while the first app's APNs stalls", async () => {
    const stalledApns = await MockApns.start({ caDir });
    try {
      sender = new ApnsSender({ requestTimeoutMs: 5000 });
      const stalledToken = newToken();
      stalledApns.replyFor(stalledToken, { stall: true });
      let stalledDone = false;
      const stalled = sender
        .send(
          pushRequest(stalledToken),
          credentials(join(caDir, "apple-app.pem"), { host: stalledApns.host, sandboxHost: stalledApns.sandboxHost }),
        )
        .finally(() => (stalledDone = true));
      await waitFor(() => stalledApns.stalledCount > 0);

      const served = await sender.send(pushRequest(newToken()), credentials());
      expect(served.outcome).toBe("sent");
      expect(stalledDone).toBe(false);
      await stalledApns.close();
      expect((await stalled).outcome).toBe("failed");
    } finally {
      await stalledApns.close().catch(() => {});
    }
  });

  it("sends an alert push (bundle topic, call text, collapse id) to a device with only an alert token", async () => {
    sender = new ApnsSender();
    const token = newToken("alert");
    const request = pushRequest(token);
    request.device.pushKind = "alert";
    expect((await sender.send(request, credentials())).outcome).toBe("sent");

    const [push] = mock.requestsFor(token);
    expect(push.headers).toMatchObject({
      "apns-push-type": "alert",
      "apns-topic": "com.app.mymobileapp",
      "apns-priority": "10",
      "apns-expiration": "0",
      "apns-collapse-id": request.callId,
    });
    expect(push.body).toMatchObject({
      aps: { alert: { title: "Incoming call", body: "+15551234567 - Bob" }, sound: "ring.caf" },
      "call-id": request.callId,
    });
  });

  it.each([
    ["cancelled", "Missed call from Bob", "call-cancelled"],
    ["answered-elsewhere", "Call from Bob answered elsewhere", "answered-elsewhere"],
  ] as const)(
    "sends a call-ended push (%s) to an alert token as an alert push (bundle topic, same call id, kept an hour)",
    async (endReason, text, event) => {
      sender = new ApnsSender();
      const token = newToken("alert");
      // After the ring window: the notice is still worth delivering.
      const request = pushRequest(token, { purpose: "call-ended", endReason, ringsUntilMs: Date.now() - 1000 });
      request.device.pushKind = "alert";
      expect(await sender.send(request, credentials())).toMatchObject({ outcome: "sent", attempts: 1 });

      const [push] = mock.requestsFor(token);
      expect(push.headers["apns-push-type"]).toBe("alert");
      expect(push.headers["apns-topic"]).toBe("com.app.mymobileapp");
      expect(push.headers["apns-collapse-id"]).toBe(request.callId);
      expect(Number(push.headers["apns-expiration"])).toBeGreaterThan(Date.now() / 1000);
      expect(push.body).toMatchObject({ aps: { alert: { body: text } }, event, "call-id": request.callId });
    },
  );

  it.each([
    ["cancelled", "call-cancelled"],
    ["answered-elsewhere", "answered-elsewhere"],
  ] as const)(
    "sends a call-ended push (%s) to a PushKit token as a VoIP push (.voip topic, the event, expiration 0), never as an alert",
    async (endReason, event) => {
      // apps.<app>.apple.callEndedVoipPush: the plugin names the PushKit token with pushKind voip. An alert push
      // to it would be refused (DeviceTokenNotForTopic) — and before issue 12 cost the phone its record.
      sender = new ApnsSender();
      const token = newToken("voip");
      const request = pushRequest(token, { purpose: "call-ended", endReason, ringsUntilMs: Date.now() - 1000 });
      request.device.pushKind = "voip";
      expect(await sender.send(request, credentials())).toMatchObject({ outcome: "sent", attempts: 1 });

      const [push] = mock.requestsFor(token);
      expect(push.status).toBe(200);
      // Deliver now or never, as a call push: a VoIP push stored for later makes iOS show a call long over.
      expect(push.headers).toMatchObject({
        "apns-push-type": "voip",
        "apns-topic": "com.app.mymobileapp.voip",
        "apns-priority": "10",
        "apns-expiration": "0",
      });
      expect(push.headers["apns-collapse-id"]).toBeUndefined();
      expect(push.body).toMatchObject({ event, "call-id": request.callId });
      // No incoming-call alert or ring in it: an app that reads `aps` must not take the notice for a new call.
      expect((push.body as { aps: Record<string, unknown> }).aps).toEqual({ "call-id": request.callId });
    },
  );

  it("pushes to a device's own RFC 8599 topic of the app, but never to a topic of another bundle a record names", async () => {
    // Records stored before the plugin checked pn-param at REGISTER may name any topic: one that is not the app's
    // bundle is replaced by the app's, so a phone never picks what APNs judges our credentials on.
    sender = new ApnsSender();
    const own = newToken("voip");
    const ownRequest = pushRequest(own);
    ownRequest.device.apnsTopic = "com.app.mymobileapp";
    expect(await sender.send(ownRequest, credentials())).toMatchObject({ outcome: "sent" });
    const foreign = newToken("voip");
    const foreignRequest = pushRequest(foreign);
    foreignRequest.device.apnsTopic = "com.other.app";
    expect(await sender.send(foreignRequest, credentials())).toMatchObject({ outcome: "sent" });
    expect([own, foreign].map((token) => mock.requestsFor(token)[0].headers["apns-topic"])).toEqual([
      "com.app.mymobileapp.voip",
      "com.app.mymobileapp.voip",
    ]);
  });

  it("trims an oversized caller name to fit APNs' limits instead of having the push refused", async () => {
    sender = new ApnsSender();
    const voipToken = newToken();
    const alertToken = newToken("alert");
    const caller = { number: "+15551234567", name: "Ž".repeat(6000) };
    const alert = pushRequest(alertToken, { caller });
    alert.device.pushKind = "alert";
    const results = await Promise.all([
      sender.send(pushRequest(voipToken, { caller }), credentials()),
      sender.send(alert, credentials()),
    ]);

    expect(results.map((result) => result.outcome)).toEqual(["sent", "sent"]);
    const [voip] = mock.requestsFor(voipToken);
    const [alertPush] = mock.requestsFor(alertToken);
    expect(Buffer.byteLength(voip.rawBody)).toBeLessThanOrEqual(5120);
    expect(Buffer.byteLength(voip.rawBody)).toBeGreaterThan(4096);
    expect(Buffer.byteLength(alertPush.rawBody)).toBeLessThanOrEqual(4096);
    const body = voip.body as { "caller-id-name": string; "call-id": string };
    expect(body["caller-id-name"]).toMatch(/^Ž+…$/);
    expect(body["call-id"]).toBe(pushRequest(voipToken)["callId"]);
  });

  it("closes its sessions on close()", async () => {
    sender = new ApnsSender();
    await sender.send(pushRequest(newToken()), credentials());
    expect(sender.sessionCount).toBe(1);
    await sender.close();
    expect(sender.sessionCount).toBe(0);
  });
});

describe("ApnsSender: APNs environments (production host, sandboxHost)", () => {
  it("sends a sandbox device's push (pn-provider=apns.dev) to sandboxHost only", async () => {
    sender = new ApnsSender();
    const token = newToken("voip", "sandbox");
    const request = pushRequest(token);
    request.device.sandbox = true;
    expect(await sender.send(request, credentials())).toMatchObject({ outcome: "sent", attempts: 1, status: 200 });
    expect(mock.requestsFor(token).map((push) => push.environment)).toEqual(["sandbox"]);

    // A device not marked sandbox goes to production only.
    const production = newToken();
    expect(await sender.send(pushRequest(production), credentials())).toMatchObject({ outcome: "sent", attempts: 1 });
    expect(mock.requestsFor(production).map((push) => push.environment)).toEqual(["production"]);
  });

  it.each([
    ["a sandbox token registered as production", "sandbox", false, ["production", "sandbox"]],
    ["a production token registered as sandbox", "production", true, ["sandbox", "production"]],
  ] as const)(
    "delivers %s through the other host after BadDeviceToken, keeps the token and logs a warning",
    async (_, environment, markedSandbox, hosts) => {
      const { lines, logger } = recorder();
      sender = new ApnsSender({ logger });
      const token = newToken("voip", environment);
      const request = pushRequest(token);
      if (markedSandbox) request.device.sandbox = true;
      const result = await sender.send(request, credentials());

      expect(result).toMatchObject({ outcome: "sent", attempts: 2, status: 200 });
      expect(result.dropToken).toBeUndefined();
      expect(result.code).toBeUndefined();
      const pushes = mock.requestsFor(token);
      expect(pushes.map((push) => push.environment)).toEqual(hosts);
      expect(pushes.map((push) => push.status)).toEqual([400, 200]);
      const warnings = lines.filter((line) => line.level === "warn").map((line) => line.message);
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toContain(`${environment} token`);
      expect(warnings[0]).toContain(APP_ID);
      expect(warnings[0]).not.toContain(token); // masked
    },
  );

  it("drops a token that both hosts answer BadDeviceToken", async () => {
    sender = new ApnsSender();
    const token = newToken(null);
    const result = await sender.send(pushRequest(token), credentials());

    expect(result).toMatchObject({
      outcome: "failed",
      code: "PUSHER_ERR_APNS_BAD_DEVICE_TOKEN",
      dropToken: true,
      attempts: 2,
    });
    expect(mock.requestsFor(token).map((push) => [push.environment, push.status])).toEqual([
      ["production", 400],
      ["sandbox", 400],
    ]);
  });

  it("keeps the token, and raises no credentials alarm, when the other host refuses our credentials (403 BadEnvironmentKeyIdInToken)", async () => {
    // E.g. a key or certificate valid for one environment only: the other host's answer proves nothing.
    const { logger } = recorder();
    sender = new ApnsSender({ logger });
    const alarm = new CredentialsAlarm(logger);
    const token = newToken(null);
    mock.replyFor(
      token,
      { status: 400, reason: "BadDeviceToken" },
      { status: 403, reason: "BadEnvironmentKeyIdInToken" },
    );
    const apps = { [APP_ID]: { enabled: true, apple: credentials() } };
    const result = await deliverPush(pushRequest(token), {
      apps,
      logger,
      alarm,
      senders: { apple: sender, firebase: { send: unused }, webpush: { send: unused } },
    });

    expect(result).toMatchObject({ outcome: "failed", code: "PUSHER_ERR_APNS_BAD_DEVICE_TOKEN", attempts: 2 });
    expect(result.dropToken).toBeUndefined();
    expect(result.credentials).toBeUndefined();
    expect(result.reason).toContain("BadEnvironmentKeyIdInToken");
    expect(mock.requestsFor(token).map((push) => [push.environment, push.status])).toEqual([
      ["production", 400],
      ["sandbox", 403],
    ]);
    // The app's next push is not held back, as it would be after a credentials refusal.
    expect(alarm.held(APP_ID, "apple")).toBeFalsy();
    expect(alarm.count(APP_ID, "apple")).toBe(0);
  });

  it("keeps the token when the other host cannot be reached", async () => {
    sender = new ApnsSender({ sleep: async () => {} });
    const token = newToken(null);
    const closedPort = await freePort();
    const result = await sender.send(
      pushRequest(token),
      credentials(undefined, { sandboxHost: `127.0.0.1:${closedPort}` }),
    );

    expect(result).toMatchObject({ outcome: "failed", code: "PUSHER_ERR_APNS_BAD_DEVICE_TOKEN" });
    expect(result.dropToken).toBeUndefined();
    expect(result.credentials).toBeUndefined();
    expect(result.reason).toContain("ECONNREFUSED");
    expect(mock.requestsFor(token).map((push) => push.environment)).toEqual(["production"]);
  });

  it("keeps the push's one deadline for the other host: a call-ended push whose window passed at the first host goes no further", async () => {
    // The clock jumps 31 s once the first host has the push: it took the whole call-ended window (30 s).
    const startMs = Date.now();
    const token = newToken(null);
    sender = new ApnsSender({
      now: () => (mock.requestsFor(token).length ? startMs + 31_000 : startMs),
      sleep: async () => {},
    });
    const request = pushRequest(token, {
      purpose: "call-ended",
      endReason: "cancelled",
      ringsUntilMs: startMs - 1000,
      device: { instance: "<urn:uuid:1>", appId: APP_ID, provider: "apple", token, pushKind: "alert" },
    });
    const result = await sender.send(request, credentials());

    expect(mock.requestsFor(token).map((push) => push.environment)).toEqual(["production"]);
    expect(result.dropToken).toBeUndefined();
  });

  it("tries no other host when sandboxHost is the production host: BadDeviceToken there drops the token", async () => {
    sender = new ApnsSender();
    const token = newToken(null);
    const result = await sender.send(pushRequest(token), credentials(undefined, { sandboxHost: mock.host }));

    expect(result).toMatchObject({
      outcome: "failed",
      code: "PUSHER_ERR_APNS_BAD_DEVICE_TOKEN",
      dropToken: true,
      attempts: 1,
    });
    expect(mock.requestsFor(token)).toHaveLength(1);
  });

  it("keeps a token APNs answers DeviceTokenNotForTopic, and logs a configuration error", async () => {
    // An alert token pushed as PushKit (the phone sent the wrong token, or the app id names another bundle):
    // the topic is ours, the token may be fine.
    const { lines, logger } = recorder();
    sender = new ApnsSender({ logger });
    const token = newToken("alert");
    const result = await sender.send(pushRequest(token), credentials());

    expect(result).toMatchObject({
      outcome: "failed",
      code: "PUSHER_ERR_APNS_TOKEN_NOT_FOR_TOPIC",
      reason: "DeviceTokenNotForTopic",
      attempts: 1,
    });
    expect(result.dropToken).toBeUndefined();
    expect(mock.requestsFor(token)).toHaveLength(1);
    const errors = lines.filter((line) => line.level === "error").map((line) => line.message);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toContain("configuration error");
    expect(errors[0]).toContain("com.app.mymobileapp.voip");
  });
});

async function unused(): Promise<never> {
  throw new Error("only APNs is configured");
}

async function waitFor(condition: () => boolean, timeoutMs = 2000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** A port nothing listens on: bound then released. */
async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}
