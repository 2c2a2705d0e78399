// Message and refresh pushes on the helper's side (src/helper/message-payload.ts, refresh-payload.ts,
// apns-message-and-refresh.ts): what each provider gets, and that a strict mock APNs takes them as Apple would: an
// alert push to an alert token for a message, a background push at priority 5 for a refresh (priority 10 refused).
import { readFileSync } from "node:fs";
import { connect } from "node:http2";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { AppleCredentials } from "../../src/config";
import { apnsMessageOrRefreshPush } from "../../src/helper/apns-message-and-refresh";
import { ApnsSender } from "../../src/helper/apns-sender";
import { buildFcmMessage } from "../../src/helper/fcm-payload";
import { buildApnsMessagePayload, messageFields } from "../../src/helper/message-payload";
import { buildApnsRefreshPayload } from "../../src/helper/refresh-payload";
import { buildWebPushPayload, webPushHeaders } from "../../src/helper/webpush-payload";
import { parsePluginMessage, type PushRequest } from "../../src/protocol";
import { MockApns, testCaDir } from "../support/mock-apns";

const NOW_MS = 1_700_000_000_000;
const BUNDLE = "com.app.mymobileapp";

function request(overrides: Partial<PushRequest>, provider: "apple" | "firebase" | "webpush" = "apple"): PushRequest {
  return {
    type: "push",
    callRef: "",
    callId: "msg-1@example.com",
    aor: "alice@example.com",
    device: {
      instance: "urn:uuid:1",
      appId: BUNDLE,
      provider,
      token: "token-1",
      pushKind: provider === "apple" ? "alert" : undefined,
    },
    caller: { number: "15551234567", name: "Bob" },
    proxy: "sip:127.0.0.1:5060;transport=udp",
    ringsUntilMs: NOW_MS + 60_000,
    ...overrides,
  };
}

const message = (overrides: Partial<PushRequest> = {}, provider?: "apple" | "firebase" | "webpush"): PushRequest =>
  request(
    {
      purpose: "message",
      messageId: "0b8f6c1e-5d0a-4c57-9a5e-2f0e7a1c9d33",
      expiresAtMs: NOW_MS + 7 * 86400_000,
      ...overrides,
    },
    provider,
  );
const refresh = (provider?: "apple" | "firebase" | "webpush"): PushRequest =>
  request({ purpose: "refresh", expiresAtMs: NOW_MS + 120_000 }, provider);

describe("a message push", () => {
  it("carries event, message id, Call-ID and sender, and a preview only when the plugin sent one", () => {
    expect(messageFields(message(), NOW_MS)).toEqual({
      event: "message",
      "message-id": "0b8f6c1e-5d0a-4c57-9a5e-2f0e7a1c9d33",
      "call-id": "msg-1@example.com",
      "sender-number": "15551234567",
      "sender-name": "Bob",
      proxy: "sip:127.0.0.1:5060;transport=udp",
      utc_unix_timestamp_ms: String(NOW_MS),
    });
    expect(messageFields(message({ preview: "Hi there" }), NOW_MS).preview).toBe("Hi there");
  });

  it("is an APNs alert push at priority 10, kept until the message's retention ends, showing the sender and the preview", () => {
    expect(apnsMessageOrRefreshPush(message())).toMatchObject({
      pushType: "alert",
      priority: "10",
      expiration: String((NOW_MS + 7 * 86400_000) / 1000),
    });
    expect(buildApnsMessagePayload(message({ preview: "Hi there" }), NOW_MS).aps).toEqual({
      alert: { title: "Bob", body: "Hi there" },
      sound: "default",
      "thread-id": "15551234567",
    });
    expect(buildApnsMessagePayload(message({ caller: { number: "15551234567", name: "" } }), NOW_MS).aps.alert).toEqual(
      { title: "15551234567", body: "New message" },
    );
  });

  it("is an FCM data message at HIGH priority, its ttl the retention left (FCM keeps at most 4 weeks)", () => {
    const fcm = buildFcmMessage(message({}, "firebase"), NOW_MS).message;
    expect(fcm.android).toEqual({ priority: "HIGH", ttl: `${7 * 86400}s` });
    expect(fcm.data).toMatchObject({ event: "message", "sender-name": "Bob" });
    expect(
      buildFcmMessage(message({ expiresAtMs: NOW_MS + 60 * 86400_000 }, "firebase"), NOW_MS).message.android.ttl,
    ).toBe(`${28 * 86400}s`);
  });

  it("is a Web Push message of normal urgency, its TTL the retention left, the fields as JSON", () => {
    expect(webPushHeaders(message({}, "webpush"), NOW_MS)).toEqual({ ttl: String(7 * 86400), urgency: "normal" });
    expect(JSON.parse(buildWebPushPayload(message({}, "webpush"), NOW_MS))).toMatchObject({
      event: "message",
      "message-id": "0b8f6c1e-5d0a-4c57-9a5e-2f0e7a1c9d33",
    });
  });
});

describe("a refresh push", () => {
  it("is an APNs background push at priority 5 with content-available and nothing the user sees", () => {
    expect(apnsMessageOrRefreshPush(refresh())).toMatchObject({
      pushType: "background",
      priority: "5",
      expiration: String((NOW_MS + 120_000) / 1000),
    });
    expect(buildApnsRefreshPayload(refresh(), NOW_MS)).toEqual({
      aps: { "content-available": 1 },
      event: "refresh",
      proxy: "sip:127.0.0.1:5060;transport=udp",
      utc_unix_timestamp_ms: String(NOW_MS),
    });
    expect(apnsMessageOrRefreshPush(request({}))).toBeNull();
  });

  it("is an FCM data message kept until the binding expires, and a Web Push message with a Topic per binding", () => {
    expect(buildFcmMessage(refresh("firebase"), NOW_MS).message).toMatchObject({
      data: { event: "refresh" },
      android: { priority: "HIGH", ttl: "120s" },
    });
    const headers = webPushHeaders(refresh("webpush"), NOW_MS);
    expect(headers).toMatchObject({ ttl: "120", urgency: "normal" });
    expect(headers.topic).toMatch(/^[A-Za-z0-9_-]{32}$/);
    expect(webPushHeaders({ ...refresh("webpush"), aor: "bob@example.com" }, NOW_MS).topic).not.toBe(headers.topic);
  });
});

describe("the link", () => {
  it("carries purpose, message id, preview and expiry to the helper, and refuses an unknown purpose", () => {
    const sent = message({ preview: "Hi" });
    expect(parsePluginMessage(JSON.stringify(sent))).toEqual(sent);
    expect(parsePluginMessage(JSON.stringify(refresh()))).toEqual(refresh());
    expect(parsePluginMessage(JSON.stringify({ ...refresh(), purpose: "wake" }))).toBeNull();
    expect(parsePluginMessage(JSON.stringify({ ...message(), expiresAtMs: "soon" }))).toBeNull();
  });
});

describe("to a strict mock APNs", () => {
  let mock: MockApns;
  let sender: ApnsSender;
  let credentials: AppleCredentials;

  beforeAll(async () => {
    const caDir = testCaDir();
    mock = await MockApns.start({ caDir });
    credentials = {
      host: mock.host,
      sandboxHost: mock.sandboxHost,
      callEndedVoipPush: false,
      certificateFile: join(caDir, "apple-app.pem"),
    };
  });

  afterEach(async () => {
    await sender?.close();
  });

  afterAll(async () => {
    await mock?.close();
  });

  function toDevice(pushRequest: PushRequest, token: string): PushRequest {
    return {
      ...pushRequest,
      ringsUntilMs: Date.now() + 10_000,
      expiresAtMs: Date.now() + 60_000,
      device: { ...pushRequest.device, token },
    };
  }

  it("delivers a message push and a refresh push to an alert token", async () => {
    sender = new ApnsSender();
    const token = mock.newDevice(BUNDLE, "alert");
    expect((await sender.send(toDevice(message(), token), credentials)).outcome).toBe("sent");
    expect((await sender.send(toDevice(refresh(), token), credentials)).outcome).toBe("sent");
    const [messagePush, refreshPush] = mock.requestsFor(token);
    expect([
      messagePush.headers["apns-push-type"],
      messagePush.headers["apns-priority"],
      messagePush.headers["apns-topic"],
    ]).toEqual(["alert", "10", BUNDLE]);
    expect([
      refreshPush.headers["apns-push-type"],
      refreshPush.headers["apns-priority"],
      refreshPush.headers["apns-topic"],
    ]).toEqual(["background", "5", BUNDLE]);
    expect(messagePush.headers).not.toHaveProperty("apns-collapse-id");
  });

  it("is refused BadPriority for a background push at priority 10, as Apple calls it an error", async () => {
    const token = mock.newDevice(BUNDLE, "alert");
    // By hand: our sender never sends this (apns-message-and-refresh.ts).
    const pem = readFileSync(credentials.certificateFile as string);
    const session = connect(`https://${mock.host}`, { cert: pem, key: pem });
    const status = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const stream = session.request({
        ":method": "POST",
        ":path": `/3/device/${token}`,
        "apns-topic": BUNDLE,
        "apns-push-type": "background",
        "apns-priority": "10",
      });
      let body = "";
      let code = 0;
      stream.on("response", (headers) => (code = Number(headers[":status"])));
      stream.on("data", (chunk) => (body += chunk));
      stream.on("end", () => resolve({ status: code, body }));
      stream.on("error", reject);
      stream.end(JSON.stringify({ aps: { "content-available": 1 } }));
    });
    session.close();
    expect(status.status).toBe(400);
    expect(JSON.parse(status.body).reason).toBe("BadPriority");
  });
});
