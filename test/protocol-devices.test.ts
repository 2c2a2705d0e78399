// The device fields the plugin fills for RFC 8599 / Linphone dialects, as the helper parses them.
import { describe, expect, it } from "vitest";
import { parsePluginMessage, type PushRequest } from "../src/protocol";

/** The device of a parsed push request. */
const deviceOf = (text: string) => (parsePluginMessage(text) as PushRequest | null)?.device;

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
    const webpush = {
      instance: "i",
      appId: "web",
      provider: "webpush",
      token: "https://push.example/x",
      webpush: { p256dh: "BP", auth: "au" },
    };
    expect(deviceOf(JSON.stringify({ ...base, device: webpush }))).toEqual(webpush);
    const apple = {
      instance: "i",
      appId: "a",
      provider: "apple",
      token: "t",
      pushKind: "alert",
      apnsTopic: "com.example.app",
    };
    expect(deviceOf(JSON.stringify({ ...base, device: apple }))).toEqual(apple);
    const fcm = { instance: "i", appId: "a", provider: "firebase", token: "t", fcmProjectId: "proj" };
    expect(deviceOf(JSON.stringify({ ...base, device: fcm }))).toEqual(fcm);
  });

  it.each([[{ pushKind: "silent" }], [{ fcmProjectId: 7 }], [{ webpush: { p256dh: "BP" } }], [{ provider: "huawei" }]])(
    "refuses a device with %j",
    (extra) => {
      const device = { instance: "i", appId: "a", provider: "apple", token: "t", ...extra };
      expect(parsePluginMessage(JSON.stringify({ ...base, device }))).toBeNull();
    },
  );
});
