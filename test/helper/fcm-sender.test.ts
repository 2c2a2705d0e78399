// FCM HTTP v1 + OAuth against the mock FCM/OAuth server (HTTP/2 + TLS on 127.0.0.1, trusted via NODE_EXTRA_CA_CERTS).
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { FirebaseCredentials } from "../../src/config";
import { FcmSender } from "../../src/helper/fcm-sender";
import { parseServiceAccount } from "../../src/helper/fcm-oauth";
import { PusherError } from "../../src/helper/provider-errors";
import type { PushRequest } from "../../src/protocol";
import { MockFcm } from "../support/mock-fcm";
import { testCaDir } from "../support/mock-apns";

let workDir: string;
let mock: MockFcm;
let accountFile: string;
let sender: FcmSender | undefined;
let counter = 0;
const delays: number[] = [];

function token(): string {
  counter++;
  return `fcm-${counter}:APA91b${"x".repeat(140)}`;
}

function pushRequest(deviceToken: string, overrides: Partial<PushRequest> = {}): PushRequest {
  return {
    type: "push",
    callRef: "1:2",
    callId: `call-${counter}@example.com`,
    aor: "sip:alice@example.com",
    device: { instance: "<urn:uuid:1>", appId: "com.example.android", provider: "firebase", token: deviceToken },
    caller: { number: "+15551234567", name: "Bob" },
    proxy: "sip:127.0.0.1:5060",
    ringsUntilMs: Date.now() + 20_000,
    ...overrides,
  };
}

function credentials(file = accountFile): FirebaseCredentials {
  return { serviceAccountFile: file, host: mock.host };
}

function newSender(): FcmSender {
  delays.length = 0;
  sender = new FcmSender({ sleep: async (ms) => void delays.push(ms) });
  return sender;
}

beforeAll(async () => {
  workDir = mkdtempSync(join(tmpdir(), "fcm-sender-test-"));
  mock = await MockFcm.start({ caDir: testCaDir() });
  accountFile = mock.createServiceAccount(workDir, "pusher-test-project");
});

afterEach(async () => {
  await sender?.close();
  sender = undefined;
});

afterAll(async () => {
  await mock?.close();
  rmSync(workDir, { recursive: true, force: true });
});

describe("FcmSender", () => {
  it("sends a data-only HIGH priority message with the ring time as ttl and string values", async () => {
    const deviceToken = token();
    const request = pushRequest(deviceToken, { ringsUntilMs: Date.now() + 17_500 });
    const result = await newSender().send(request, credentials());

    expect(result).toMatchObject({ outcome: "sent", status: 200, attempts: 1 });
    expect(result.providerId).toMatch(/^projects\/pusher-test-project\/messages\//);
    const [sent] = mock.requestsFor(deviceToken);
    expect(sent.project).toBe("pusher-test-project");
    expect(sent.body.message.notification).toBeUndefined();
    expect(sent.body.message.android.priority).toBe("HIGH");
    expect(sent.body.message.android.ttl).toMatch(/^1[78]s$/);
    expect(Object.values(sent.body.message.data).every((value) => typeof value === "string")).toBe(true);
    expect(sent.body.message.data).toMatchObject({
      "call-id": request.callId,
      "caller-id-number": "+15551234567",
      "caller-id-name": "Bob",
      proxy: "sip:127.0.0.1:5060",
      "loc-key": "IC_SIL",
      "loc-args": JSON.stringify(["+15551234567 - Bob"]),
    });
  });

  it("fetches one OAuth token (RS256 to the account's own token_uri) and reuses it until 5 min before expiry", async () => {
    const fcm = newSender();
    const before = mock.tokenRequests;
    await Promise.all(Array.from({ length: 10 }, () => fcm.send(pushRequest(token()), credentials())));
    expect(mock.tokenRequests - before).toBe(1);
    expect(fcm.oauth.requests).toBe(1);

    // A token that lives only 4 minutes is inside the 5-minute margin: the next push gets a new one.
    mock.expiresInSeconds = 240;
    const short = new FcmSender();
    try {
      await short.send(pushRequest(token()), credentials());
      await short.send(pushRequest(token()), credentials());
      expect(short.oauth.requests).toBe(2);
    } finally {
      mock.expiresInSeconds = 3599;
      await short.close();
    }
  });

  it("fetches a new access token once when FCM answers 401, then succeeds", async () => {
    const fcm = newSender();
    await fcm.send(pushRequest(token()), credentials());
    mock.revokeAccessTokens();
    const result = await fcm.send(pushRequest(token()), credentials());
    expect(result).toMatchObject({ outcome: "sent", attempts: 2 });
    expect(fcm.oauth.requests).toBe(2);
  });

  it.each([
    [
      { status: 404, errorStatus: "NOT_FOUND", errorCode: "UNREGISTERED" },
      "PUSHER_ERR_FCM_UNREGISTERED",
      "UNREGISTERED",
    ],
    [
      { status: 403, errorStatus: "PERMISSION_DENIED", errorCode: "SENDER_ID_MISMATCH" },
      "PUSHER_ERR_FCM_SENDER_ID_MISMATCH",
      "SENDER_ID_MISMATCH",
    ],
  ])("drops the token on %j", async (reply, code, reason) => {
    const deviceToken = token();
    mock.replyFor(deviceToken, reply);
    const result = await newSender().send(pushRequest(deviceToken), credentials());
    expect(result).toMatchObject({ outcome: "failed", code, reason, dropToken: true, attempts: 1 });
  });

  it.each([
    [{ status: 503, errorStatus: "UNAVAILABLE", errorCode: "UNAVAILABLE", retryAfter: "2" }, [2000]],
    [{ status: 500, errorStatus: "INTERNAL", errorCode: "INTERNAL" }, null],
    [{ status: 429, errorStatus: "RESOURCE_EXHAUSTED", errorCode: "QUOTA_EXCEEDED", retryAfter: "1" }, [1000]],
  ])("retries %j and succeeds", async (reply, expectedDelays) => {
    const deviceToken = token();
    mock.replyFor(deviceToken, reply, { status: 200 });
    const result = await newSender().send(pushRequest(deviceToken), credentials());
    expect(result).toMatchObject({ outcome: "sent", attempts: 2 });
    if (expectedDelays) expect(delays).toEqual(expectedDelays);
    else expect(delays).toHaveLength(1);
  });

  it("raises a credentials problem, keeping the token, on 403 PERMISSION_DENIED for its own project and on OAuth invalid_grant", async () => {
    // E.g. the service account lost its Firebase Messaging role in its own project.
    const deviceToken = token();
    mock.replyFor(deviceToken, {
      status: 403,
      errorStatus: "PERMISSION_DENIED",
      message: "The caller does not have permission",
    });
    const denied = await newSender().send(pushRequest(deviceToken), credentials());
    expect(denied).toMatchObject({
      outcome: "failed",
      code: "PUSHER_ERR_FCM_CREDENTIALS",
      credentials: true,
      attempts: 1,
    });
    expect(denied.dropToken).toBeUndefined();

    mock.oauthReplies({ status: 400, error: "invalid_grant", description: "Invalid JWT Signature." });
    const refused = await new FcmSender().send(
      pushRequest(token()),
      credentials(mock.createServiceAccount(workDir, "pusher-test-project", "fresh")),
    );
    expect(refused).toMatchObject({
      outcome: "failed",
      code: "PUSHER_ERR_FCM_CREDENTIALS",
      credentials: true,
      attempts: 1,
    });
    expect(refused.reason).toContain("invalid_grant");
  });

  it("sends to a device's project only when the app owns it, and FCM's 403 there fails that push without a credentials alarm", async () => {
    const other = mock.createServiceAccount(workDir, "another-project");
    const device = (project: string) => ({
      instance: "i",
      appId: "a",
      provider: "firebase" as const,
      token: token(),
      fcmProjectId: project,
    });
    // pusher-test-project is neither the service account's nor listed: nothing is sent.
    const foreign = pushRequest(token(), { device: device("pusher-test-project") });
    const notOwned = await newSender().send(foreign, credentials(other));
    expect(notOwned).toMatchObject({ outcome: "failed", code: "PUSHER_ERR_BAD_DEVICE", attempts: 1 });
    expect(notOwned.credentials).toBeUndefined();
    expect(mock.requestsFor(foreign.device.token)).toHaveLength(0);
    // Listed in projectIds, but the service account has no rights there: the mock answers as FCM does (403).
    const listed = pushRequest(token(), { device: device("pusher-test-project") });
    const denied = await newSender().send(listed, {
      ...credentials(other),
      projectIds: ["another-project", "pusher-test-project"],
    });
    expect(denied).toMatchObject({
      outcome: "failed",
      code: "PUSHER_ERR_FCM_REJECTED",
      status: 403,
      reason: "PERMISSION_DENIED",
    });
    expect(denied.credentials).toBeUndefined();
    expect(mock.requestsFor(listed.device.token).map((request) => [request.project, request.status])).toEqual([
      ["pusher-test-project", 403],
    ]);
  });

  it("trims a huge caller name so the data stays within FCM's 4096 bytes", async () => {
    const deviceToken = token();
    const result = await newSender().send(
      pushRequest(deviceToken, { caller: { number: "1", name: "n".repeat(10_000) } }),
      credentials(),
    );
    expect(result.outcome).toBe("sent");
    const data = mock.requestsFor(deviceToken)[0].body.message.data as Record<string, string>;
    const bytes = Object.entries(data).reduce(
      (sum, [key, value]) => sum + Buffer.byteLength(key) + Buffer.byteLength(value),
      0,
    );
    expect(bytes).toBeLessThanOrEqual(4096);
    expect(bytes).toBeGreaterThan(3500);
  });

  it("sends a call-ended message with its event and text", async () => {
    const deviceToken = token();
    const request = pushRequest(deviceToken, { purpose: "call-ended", endReason: "cancelled" });
    expect((await newSender().send(request, credentials())).outcome).toBe("sent");
    expect(mock.requestsFor(deviceToken)[0].body.message.data).toMatchObject({
      event: "call-cancelled",
      body: "Missed call from Bob",
      "call-id": request.callId,
    });
  });
});

describe("parseServiceAccount", () => {
  it("refuses a legacy server key with the message that the legacy API is shut down", () => {
    const legacy =
      "AAAAb1234567:APA91bHPRgkF3JUikC4ENAHEeMrd41Zxv3hVZjC9KtT8OvPVGJ-hQMRKRrZuJAEcl7B338qju59zJMjw2DELjzEvxwYv7hH5Ynpc1ODQ0aT4U4OFEeco8ohsN5PjL1iC2dNtk2BAokeMCg2ZXKqpc8FXKmhX94kIxQ";
    for (const text of [legacy, JSON.stringify({ server_key: legacy })]) {
      let error: unknown;
      try {
        parseServiceAccount(text, "key.txt");
      } catch (caught) {
        error = caught;
      }
      expect(error).toBeInstanceOf(PusherError);
      expect((error as PusherError).code).toBe("PUSHER_ERR_FCM_LEGACY_KEY");
      expect((error as Error).message).toMatch(/shut .*down/);
    }
  });

  it("names the missing field of an incomplete service account", () => {
    const file = join(workDir, "incomplete.json");
    writeFileSync(file, JSON.stringify({ type: "service_account", project_id: "p" }));
    expect(() => parseServiceAccount(JSON.stringify({ type: "service_account", project_id: "p" }), file)).toThrow(
      /client_email/,
    );
  });
});
