// The device fields the plugin fills for RFC 8599 / Linphone dialects, as the helper parses them.
import { describe, expect, it } from "vitest";
import { parsePluginMessage } from "../src/protocol";

const base = {
  type: "push",
  callRef: "1:2",
  callId: "c@h",
  aor: "sip:a@h",
  caller: { number: "1", name: "n" },
  proxy: "sip:p",
  ringsUntilMs: 1,
};

describe("parsePluginMessage device fields", () => {
  it("keeps webpush devices with their keys, and pushKind, fcmProjectId and apnsTopic", () => {
    const webpush = { instance: "i", appId: "web", provider: "webpush", token: "https://push.example/x", webpush: { p256dh: "BP", auth: "au" } };
    expect(parsePluginMessage(JSON.stringify({ ...base, device: webpush }))?.device).toEqual(webpush);
    const apple = { instance: "i", appId: "a", provider: "apple", token: "t", pushKind: "alert", apnsTopic: "com.example.app" };
    expect(parsePluginMessage(JSON.stringify({ ...base, device: apple }))?.device).toEqual(apple);
    const fcm = { instance: "i", appId: "a", provider: "firebase", token: "t", fcmProjectId: "proj" };
    expect(parsePluginMessage(JSON.stringify({ ...base, device: fcm }))?.device).toEqual(fcm);
  });

  it.each([
    [{ pushKind: "silent" }],
    [{ fcmProjectId: 7 }],
    [{ webpush: { p256dh: "BP" } }],
    [{ provider: "huawei" }],
  ])("refuses a device with %j", (extra) => {
    const device = { instance: "i", appId: "a", provider: "apple", token: "t", ...extra };
    expect(parsePluginMessage(JSON.stringify({ ...base, device }))).toBeNull();
  });
});
