import { describe, expect, it } from "vitest";
import { apnsTopic, buildApnsPayload } from "../../src/helper/apns-payload";
import type { PushRequest } from "../../src/protocol";

function request(overrides: Partial<PushRequest> = {}): PushRequest {
  return {
    type: "push",
    callRef: "1234:5678",
    callId: "a84b4c76e66710@pc33.example.com",
    aor: "sip:alice@example.com",
    device: {
      instance: "<urn:uuid:00000000-0000-1000-8000-000A95A0E128>",
      appId: "com.app.mymobileapp.dev",
      provider: "apple",
      token: "ab".repeat(32),
    },
    caller: { number: "+15551234567", name: "Bob Smith" },
    proxy: "sip:pusher.example.com:5060;transport=udp",
    ringsUntilMs: 1_700_000_030_000,
    ...overrides,
  };
}

describe("buildApnsPayload", () => {
  it("builds Kazoo's incoming-call body", () => {
    expect(buildApnsPayload(request(), 1_700_000_000_123)).toEqual({
      aps: {
        alert: { "loc-key": "IC_SIL", "loc-args": ["+15551234567 - Bob Smith"] },
        sound: "ring.caf",
        "call-id": "a84b4c76e66710@pc33.example.com",
      },
      "call-id": "a84b4c76e66710@pc33.example.com",
      "caller-id-number": "+15551234567",
      "caller-id-name": "Bob Smith",
      proxy: "sip:pusher.example.com:5060;transport=udp",
      utc_unix_timestamp_ms: "1700000000123",
    });
  });

  it("sends the timestamp as a decimal string of epoch milliseconds", () => {
    const payload = buildApnsPayload(request(), 1_624_413_849_832.7);
    expect(payload.utc_unix_timestamp_ms).toBe("1624413849832");
    expect(typeof payload.utc_unix_timestamp_ms).toBe("string");
  });

  it("keeps quotes, backslashes and non-ASCII names intact through JSON", () => {
    const caller = { number: '1"2\\3', name: 'Zoë "The Phone" 📞\n' };
    const body = JSON.stringify(buildApnsPayload(request({ caller }), 0));
    const parsed = JSON.parse(body);
    expect(parsed["caller-id-name"]).toBe(caller.name);
    expect(parsed["caller-id-number"]).toBe(caller.number);
    expect(parsed.aps.alert["loc-args"]).toEqual([`${caller.number} - ${caller.name}`]);
  });

  it("keeps an empty proxy as an empty string, as Kazoo does", () => {
    expect(buildApnsPayload(request({ proxy: "" }), 0).proxy).toBe("");
  });
});

describe("apnsTopic", () => {
  it.each([
    ["com.app.mymobileapp", "com.app.mymobileapp.voip"],
    ["com.app.mymobileapp.dev", "com.app.mymobileapp.voip"],
    ["com.app.mymobileapp.prod", "com.app.mymobileapp.voip"],
    // Kazoo-era app ids that already name the VoIP topic keep it.
    ["com.acme.phone.voip.dev", "com.acme.phone.voip"],
    ["com.acme.phone.voip", "com.acme.phone.voip"],
    // A bundle id that itself ends in .voip is written with the suffix twice, as under Kazoo.
    ["com.acme.voip.voip.prod", "com.acme.voip.voip"],
    // Only a trailing, whole .dev/.prod label is the environment.
    ["com.dev.app", "com.dev.app.voip"],
    ["com.app.devices", "com.app.devices.voip"],
    ["com.app.mydev", "com.app.mydev.voip"],
    ["com.app.dev.prod", "com.app.dev.voip"],
  ])("%s → %s", (appId, topic) => {
    expect(apnsTopic(appId)).toBe(topic);
  });
});
