// Web Push (RFC 8030 + VAPID RFC 8292 + aes128gcm RFC 8291) against the mock push service.
import { createECDH, generateKeyPairSync } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { WebPushCredentials } from "../../src/config";
import { encryptWebPush } from "../../src/helper/webpush-encryption";
import { WebPushSender } from "../../src/helper/webpush-sender";
import type { PushRequest } from "../../src/protocol";
import { testCaDir } from "../support/mock-apns";
import { MockWebPush, type Subscription } from "../support/mock-webpush";

let workDir: string;
let mock: MockWebPush;
let vapidKeyFile: string;
let sender: WebPushSender | undefined;

function pushRequest(subscription: Subscription, overrides: Partial<PushRequest> = {}): PushRequest {
  return {
    type: "push",
    callRef: "1:2",
    callId: "web-call@example.com",
    aor: "sip:alice@example.com",
    device: {
      instance: "<urn:uuid:w>",
      appId: "web.example.com",
      provider: "webpush",
      token: subscription.endpoint,
      webpush: subscription.keys,
    },
    caller: { number: "+15551234567", name: "Bob" },
    proxy: "sip:127.0.0.1:5060",
    ringsUntilMs: Date.now() + 20_000,
    ...overrides,
  };
}

/** The mock's own host:port is listed: a pattern without a port allows 443 only. */
function credentials(): WebPushCredentials {
  return { vapidKeyFile, subject: "mailto:ops@example.com", endpointHosts: [new URL(mock.origin).host] };
}

beforeAll(async () => {
  workDir = mkdtempSync(join(tmpdir(), "webpush-test-"));
  mock = await MockWebPush.start({ caDir: testCaDir() });
  vapidKeyFile = join(workDir, "vapid.pem");
  writeFileSync(
    vapidKeyFile,
    generateKeyPairSync("ec", { namedCurve: "prime256v1" }).privateKey.export({ type: "pkcs8", format: "pem" }),
  );
});

afterEach(async () => {
  await sender?.close();
  sender = undefined;
});

afterAll(async () => {
  await mock?.close();
  rmSync(workDir, { recursive: true, force: true });
});

describe("WebPushSender", () => {
  it("posts an encrypted, VAPID-signed message with TTL and Urgency: high that the subscriber can decrypt", async () => {
    sender = new WebPushSender();
    const subscription = mock.subscribe();
    const request = pushRequest(subscription, { ringsUntilMs: Date.now() + 15_000 });
    const result = await sender.send(request, credentials());

    expect(result).toMatchObject({ outcome: "sent", status: 201, attempts: 1 });
    const [received] = mock.requestsFor(subscription);
    expect(received.headers.urgency).toBe("high");
    expect(Number(received.headers.ttl)).toBeGreaterThanOrEqual(14);
    expect(Number(received.headers.ttl)).toBeLessThanOrEqual(15);
    expect(received.headers["content-encoding"]).toBe("aes128gcm");
    expect(received.vapid).toMatchObject({ aud: mock.origin, sub: "mailto:ops@example.com" });
    expect(received.payload).toMatchObject({
      "call-id": request.callId,
      "caller-id-name": "Bob",
      "caller-id-number": "+15551234567",
    });
  });

  it("sends nothing to an endpoint whose host is not in the app's endpointHosts", async () => {
    sender = new WebPushSender();
    const subscription = mock.subscribe();
    const result = await sender.send(pushRequest(subscription), {
      ...credentials(),
      endpointHosts: ["*.push.services.mozilla.com"],
    });
    expect(result).toMatchObject({ outcome: "failed", code: "PUSHER_ERR_BAD_DEVICE", attempts: 0 });
    expect(result.reason).toContain(
      `${new URL(mock.origin).host} is not in apps.web.example.com.webpush.endpointHosts`,
    );
    expect(mock.requestsFor(subscription)).toHaveLength(0);
  });

  it("sends nothing to a listed host on another port than 443, unless the list names that port", async () => {
    sender = new WebPushSender();
    const subscription = mock.subscribe();
    const result = await sender.send(pushRequest(subscription), { ...credentials(), endpointHosts: ["127.0.0.1"] });
    expect(result).toMatchObject({ outcome: "failed", code: "PUSHER_ERR_BAD_DEVICE", attempts: 0 });
    expect(result.reason).toContain(
      `${new URL(mock.origin).host} is not in apps.web.example.com.webpush.endpointHosts`,
    );
    expect(mock.requestsFor(subscription)).toHaveLength(0);
    expect(await sender.send(pushRequest(subscription), credentials())).toMatchObject({ outcome: "sent" });
  });

  it("checks the host the URL resolves to, not its text: a backslash sends nothing to an unlisted host", async () => {
    // An internal HTTPS service (127.0.2.1:443, outside the phones' addresses). WHATWG URL reads `\` as `/`, so
    // this endpoint's text ends in a listed domain while it resolves to the internal host.
    const endpoint = "https://127.0.2.1\\.push.services.mozilla.com/wpush/v2/x";
    expect(new URL(endpoint).host).toBe("127.0.2.1");
    let connections = 0;
    const internal = net.createServer((socket) => {
      connections++;
      socket.destroy();
    });
    await new Promise<void>((done) => internal.listen(443, "127.0.2.1", done));
    try {
      sender = new WebPushSender();
      const request = pushRequest(mock.subscribe());
      request.device.token = endpoint;
      const result = await sender.send(request, { ...credentials(), endpointHosts: ["*.push.services.mozilla.com"] });
      expect(result).toMatchObject({ outcome: "failed", code: "PUSHER_ERR_BAD_DEVICE", attempts: 0 });
      expect(result.reason).toContain("127.0.2.1 is not in apps.web.example.com.webpush.endpointHosts");
      expect(connections).toBe(0);
    } finally {
      await new Promise((done) => internal.close(done));
    }
  });

  it("drops a subscription the push service says is gone (404/410)", async () => {
    sender = new WebPushSender();
    for (const status of [404, 410]) {
      const result = await sender.send(pushRequest(mock.subscribe(status)), credentials());
      expect(result).toMatchObject({
        outcome: "failed",
        code: "PUSHER_ERR_WEBPUSH_GONE",
        dropToken: true,
        attempts: 1,
      });
    }
  });

  it("retries a 429 and a 503, and alarms on 403", async () => {
    sender = new WebPushSender({ sleep: async () => {} });
    expect(await sender.send(pushRequest(mock.subscribe(429, 201)), credentials())).toMatchObject({
      outcome: "sent",
      attempts: 2,
    });
    expect(await sender.send(pushRequest(mock.subscribe(503, 201)), credentials())).toMatchObject({
      outcome: "sent",
      attempts: 2,
    });
    expect(await sender.send(pushRequest(mock.subscribe(403)), credentials())).toMatchObject({
      outcome: "failed",
      code: "PUSHER_ERR_WEBPUSH_CREDENTIALS",
      credentials: true,
    });
  });

  it("wakes a subscription known without keys (RFC 8599 gives only the endpoint) with a VAPID-signed message without payload", async () => {
    sender = new WebPushSender();
    const subscription = mock.subscribe();
    const noKeys = pushRequest(subscription);
    delete noKeys.device.webpush;
    expect(await sender.send(noKeys, credentials())).toMatchObject({ outcome: "sent", status: 201, attempts: 1 });
    const [received] = mock.requestsFor(subscription);
    expect(received.payload).toBeNull();
    expect(received.headers["content-encoding"]).toBeUndefined();
    expect(received.headers.urgency).toBe("high");
    expect(received.vapid).toMatchObject({ aud: mock.origin });
  });

  it("sends no call-ended message to a subscription without keys (an empty one would read as a call)", async () => {
    sender = new WebPushSender();
    const subscription = mock.subscribe();
    const ended = pushRequest(subscription, { purpose: "call-ended", endReason: "cancelled" });
    delete ended.device.webpush;
    expect(await sender.send(ended, credentials())).toMatchObject({
      outcome: "failed",
      code: "PUSHER_ERR_BAD_DEVICE",
      attempts: 0,
    });
    expect(mock.requestsFor(subscription)).toHaveLength(0);
  });

  it("sends nothing to a plain-http endpoint", async () => {
    sender = new WebPushSender();
    const subscription = mock.subscribe();
    const http = pushRequest({ ...subscription, endpoint: subscription.endpoint.replace("https:", "http:") });
    expect(await sender.send(http, credentials())).toMatchObject({
      outcome: "failed",
      code: "PUSHER_ERR_BAD_DEVICE",
      attempts: 0,
    });
    expect(mock.requestsFor(subscription)).toHaveLength(0);
  });
});

describe("encryptWebPush", () => {
  it("produces RFC 8188's header: salt, record size 4096, the sender's 65-byte key", () => {
    const receiver = createECDH("prime256v1");
    receiver.generateKeys();
    const body = encryptWebPush(Buffer.from("hello"), {
      p256dh: receiver.getPublicKey().toString("base64url"),
      auth: Buffer.alloc(16, 1).toString("base64url"),
    });
    expect(body.readUInt32BE(16)).toBe(4096);
    expect(body.readUInt8(20)).toBe(65);
    expect(body[21]).toBe(0x04);
    // header 86 + plaintext 5 + delimiter 1 + tag 16
    expect(body.length).toBe(86 + 5 + 1 + 16);
  });
});
