// Token-based APNs authentication against the mock APNs in token mode: one JWT per key reused across pushes
// (signatures counted), refreshed after the window (controllable clock), renewed once on
// ExpiredProviderToken, and token connections starting at one stream.
import { generateKeyPairSync } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { ApnsSender } from "../../src/helper/apns-sender";
import { ApnsProviderTokens, TOKEN_REFRESH_MS } from "../../src/helper/apns-token";
import { decodeJwt } from "../../src/helper/jwt";
import type { AppleCredentials } from "../../src/config";
import type { PushRequest } from "../../src/protocol";
import { MockApns, testCaDir } from "../support/mock-apns";

const KEY_ID = "ABC123DEFG";
const TEAM_ID = "TEAM123456";
let workDir: string;
let keyFile: string;
let mock: MockApns;
let sender: ApnsSender | undefined;
let clockMs = Date.now();
let counter = 0;

/** A PushKit token the mock APNs issued to the app (production). */
function token(): string {
  counter++;
  return mock.addDevice(counter.toString(16).padStart(8, "0") + "ab".repeat(28), {
    bundle: "com.example.phone",
    kind: "voip",
  });
}

function pushRequest(deviceToken: string, overrides: Partial<PushRequest> = {}): PushRequest {
  return {
    type: "push",
    callRef: "1:2",
    callId: `call-${deviceToken.slice(0, 8)}@example.com`,
    aor: "sip:alice@example.com",
    device: { instance: "<urn:uuid:1>", appId: "com.example.phone.prod", provider: "apple", token: deviceToken },
    caller: { number: "+15551234567", name: "Bob" },
    proxy: "sip:127.0.0.1:5060",
    ringsUntilMs: clockMs + 20_000,
    ...overrides,
  };
}

function credentials(): AppleCredentials {
  return {
    keyFile,
    keyId: KEY_ID,
    teamId: TEAM_ID,
    host: mock.host,
    sandboxHost: mock.sandboxHost,
    callEndedVoipPush: false,
  };
}

beforeAll(async () => {
  workDir = mkdtempSync(join(tmpdir(), "apns-token-test-"));
  const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
  keyFile = join(workDir, `AuthKey_${KEY_ID}.p8`);
  writeFileSync(keyFile, privateKey.export({ type: "pkcs8", format: "pem" }));
  // The mock checks iat against the same controllable clock as the sender.
  mock = await MockApns.start({
    caDir: testCaDir(),
    auth: "token",
    signingKeys: [{ keyId: KEY_ID, teamId: TEAM_ID, publicKey }],
    now: () => clockMs,
  });
});

afterEach(async () => {
  await sender?.close();
  sender = undefined;
  mock.requests.length = 0;
});

afterAll(async () => {
  await mock?.close();
  rmSync(workDir, { recursive: true, force: true });
});

describe("APNs token authentication", () => {
  it("signs one JWT (ES256, kid, iss, iat) and reuses it for many pushes on one connection", async () => {
    sender = new ApnsSender({ now: () => clockMs });
    const connectionsBefore = mock.connectionCount;
    const results = await Promise.all(
      Array.from({ length: 20 }, () => sender!.send(pushRequest(token()), credentials())),
    );

    expect(results.every((result) => result.outcome === "sent")).toBe(true);
    expect(sender.providerTokens.signatures).toBe(1);
    expect(mock.providerTokens).toHaveLength(1);
    expect(mock.connectionCount - connectionsBefore).toBe(1);
    const { header, claims } = decodeJwt(mock.providerTokens[0]);
    expect(header).toEqual({ alg: "ES256", kid: KEY_ID });
    expect(claims).toEqual({ iss: TEAM_ID, iat: Math.floor(clockMs / 1000) });
    const [first] = mock.requests;
    expect(first.headers["apns-topic"]).toBe("com.example.phone.voip");
    expect(first.headers.authorization).toBe(`bearer ${mock.providerTokens[0]}`);
  });

  it("keeps the JWT for 20 minutes and more, and signs a new one once the refresh time has passed", async () => {
    sender = new ApnsSender({ now: () => clockMs });
    await sender.send(pushRequest(token()), credentials());
    clockMs += 25 * 60_000;
    await sender.send(pushRequest(token()), credentials());
    expect(sender.providerTokens.signatures).toBe(1);

    clockMs += TOKEN_REFRESH_MS - 25 * 60_000 + 1000;
    expect((await sender.send(pushRequest(token()), credentials())).outcome).toBe("sent");
    expect(sender.providerTokens.signatures).toBe(2);
    expect(mock.providerTokens).toHaveLength(2);
    const ages = mock.providerTokens.map((jwt) => decodeJwt(jwt).claims.iat as number);
    expect(ages[1] - ages[0]).toBeGreaterThanOrEqual(20 * 60);
    expect(ages[1] - ages[0]).toBeLessThanOrEqual(60 * 60);
  });

  it("on ExpiredProviderToken signs a new JWT, reconnects and retries once", async () => {
    sender = new ApnsSender({ now: () => clockMs });
    const deviceToken = token();
    mock.replyFor(deviceToken, { status: 403, reason: "ExpiredProviderToken" }, { status: 200 });
    const result = await sender.send(pushRequest(deviceToken), credentials());

    expect(result).toMatchObject({ outcome: "sent", attempts: 2 });
    const [first, second] = mock.requestsFor(deviceToken);
    expect(second.providerToken).not.toBe(first.providerToken);
    expect(second.connectionId).not.toBe(first.connectionId);
  });

  it("calls a JWT APNs keeps refusing a credentials problem after one refresh, and keeps the token", async () => {
    sender = new ApnsSender({ now: () => clockMs });
    const deviceToken = token();
    mock.replyFor(deviceToken, { status: 403, reason: "InvalidProviderToken" });
    const result = await sender.send(pushRequest(deviceToken), credentials());

    expect(result).toMatchObject({
      outcome: "failed",
      code: "PUSHER_ERR_APNS_CREDENTIALS",
      reason: "InvalidProviderToken",
      credentials: true,
      attempts: 2,
    });
    expect(result.dropToken).toBeUndefined();
  });

  it("refuses a JWT older than an hour (mock) — so a sender that never refreshed would fail", async () => {
    const stale = new ApnsProviderTokens(() => clockMs - 61 * 60_000);
    const jwt = stale.bearer({ keyFile, keyId: KEY_ID, teamId: TEAM_ID });
    const http2 = await import("node:http2");
    const session = http2.connect(`https://${mock.host}`);
    const status = await new Promise<number>((resolve, reject) => {
      const stream = session.request({
        ":method": "POST",
        ":path": `/3/device/${token()}`,
        "apns-topic": "com.example.phone.voip",
        "apns-push-type": "voip",
        authorization: `bearer ${jwt}`,
      });
      stream.on("response", (headers) => resolve(Number(headers[":status"])));
      stream.on("error", reject);
      stream.resume();
      stream.end("{}");
    });
    session.destroy();
    expect(status).toBe(403);
    expect(mock.requests[0].status).toBe(403);
  });

  it("starts a token connection at one stream, then uses the limit APNs raises it to", async () => {
    sender = new ApnsSender({ now: () => clockMs });
    const results = await Promise.all(
      Array.from({ length: 8 }, () => sender!.send(pushRequest(token()), credentials())),
    );

    // Without the one-stream start the extra streams would be refused (REFUSED_STREAM) and retried.
    expect(results.map((result) => result.attempts)).toEqual(Array(8).fill(1));
    expect(mock.requests[0].activeStreams).toBe(1);
    expect(sender.sessions.maxConcurrentStreams(`${mock.host}\ntoken:${TEAM_ID}:${KEY_ID}`)).toBe(1000);
  });

  it("reports an unreadable key file as a credentials problem without sending", async () => {
    sender = new ApnsSender({ now: () => clockMs });
    const result = await sender.send(pushRequest(token()), { ...credentials(), keyFile: join(workDir, "missing.p8") });
    expect(result).toMatchObject({
      outcome: "failed",
      code: "PUSHER_ERR_APNS_CREDENTIALS",
      credentials: true,
      attempts: 1,
    });
    expect(mock.requests).toHaveLength(0);
  });
});
