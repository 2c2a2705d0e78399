import { describe, expect, it } from "vitest";
import {
  buildWebPushPayload,
  callTopic,
  MAX_WEBPUSH_PLAINTEXT_BYTES,
  webPushCallHeaders,
  webPushTtlSeconds,
} from "../../src/helper/webpush-payload";
import type { PushRequest } from "../../src/protocol";

const NOW_MS = 1_700_000_000_123;

function request(overrides: Partial<PushRequest> = {}): PushRequest {
  return {
    type: "push",
    callRef: "1:2",
    callId: "web-call@example.com",
    aor: "alice@example.com",
    device: {
      instance: "<urn:uuid:w>",
      appId: "web.example.com",
      provider: "webpush",
      token: "https://push.example.net/sub/1",
    },
    caller: { number: "+15551234567", name: "Bob" },
    proxy: "sip:127.0.0.1:5060",
    ringsUntilMs: NOW_MS + 15_000,
    ...overrides,
  };
}

describe("buildWebPushPayload", () => {
  it("says what FCM's data says, as one JSON object", () => {
    expect(
      JSON.parse(buildWebPushPayload(request({ registrationToken: "0f0e", accountRef: "acct-1" }), NOW_MS)),
    ).toEqual({
      "call-id": "web-call@example.com",
      "Call-ID": "web-call@example.com",
      "caller-id-number": "+15551234567",
      "caller-id-name": "Bob",
      proxy: "sip:127.0.0.1:5060",
      utc_unix_timestamp_ms: "1700000000123",
      "loc-key": "IC_SIL",
      "loc-args": '["+15551234567 - Bob"]',
      sound: "ring.caf",
      "registration-token": "0f0e",
      "account-ref": "acct-1",
    });
  });

  it("tells a call-ended message by its event and text", () => {
    const payload = JSON.parse(
      buildWebPushPayload(request({ purpose: "call-ended", endReason: "answered-elsewhere" }), NOW_MS),
    );
    expect(payload).toMatchObject({
      event: "answered-elsewhere",
      title: "Answered elsewhere",
      body: "Call from Bob answered elsewhere",
      "call-id": "web-call@example.com",
    });
  });

  it("leaves room in RFC 8030's 4096 bytes for the RFC 8291 encryption", () => {
    expect(MAX_WEBPUSH_PLAINTEXT_BYTES).toBeLessThan(4096);
    expect(MAX_WEBPUSH_PLAINTEXT_BYTES).toBeGreaterThan(3900);
  });
});

describe("webPushCallHeaders", () => {
  it("asks for high urgency, the remaining ring time as TTL, and a topic naming the call", () => {
    expect(webPushCallHeaders(request(), NOW_MS)).toEqual({
      ttl: "15",
      urgency: "high",
      topic: callTopic("web-call@example.com"),
    });
  });

  it("rounds the TTL up to whole seconds and never below 1 (0 would mean now or never)", () => {
    expect(webPushTtlSeconds(request({ ringsUntilMs: NOW_MS + 14_001 }), NOW_MS)).toBe(15);
    expect(webPushTtlSeconds(request({ ringsUntilMs: NOW_MS - 5_000 }), NOW_MS)).toBe(1);
  });

  it("keeps a call-ended message for an hour", () => {
    expect(
      webPushTtlSeconds(request({ purpose: "call-ended", endReason: "cancelled", ringsUntilMs: NOW_MS }), NOW_MS),
    ).toBe(3600);
  });

  it("gives both messages of one call the same topic, at most 32 URL-safe characters, and another call another", () => {
    const topic = callTopic("web-call@example.com");
    expect(topic).toMatch(/^[A-Za-z0-9_-]{1,32}$/);
    expect(webPushCallHeaders(request({ purpose: "call-ended", endReason: "cancelled" }), NOW_MS).topic).toBe(topic);
    expect(callTopic("other-call@example.com")).not.toBe(topic);
  });
});
