// The `apps` section of pusher.json: certificate or token auth for Apple, FCM, Web Push, and the per-app switch.
import { describe, expect, it } from "vitest";
import { DEFAULT_WEBPUSH_ENDPOINT_HOSTS } from "../src/webpush-endpoint";
import { validateConfig } from "../src/config";

function apps(app: unknown) {
  return validateConfig({ apps: { "com.example.phone": app } }).apps["com.example.phone"];
}

function refusal(app: unknown): string {
  try {
    apps(app);
  } catch (error) {
    return (error as Error).message;
  }
  return "accepted";
}

describe("apps", () => {
  it("accepts APNs token auth, FCM and Web Push side by side, with defaults filled in", () => {
    expect(
      apps({
        apple: { keyFile: "/k.p8", keyId: "ABCDEFGHIJ", teamId: "0123456789" },
        firebase: { serviceAccountFile: "/sa.json" },
        webpush: { vapidKeyFile: "/v.pem", subject: "mailto:ops@example.com" },
      }),
    ).toEqual({
      enabled: true,
      apple: { keyFile: "/k.p8", keyId: "ABCDEFGHIJ", teamId: "0123456789", host: "api.push.apple.com" },
      firebase: { serviceAccountFile: "/sa.json", host: "fcm.googleapis.com" },
      webpush: { vapidKeyFile: "/v.pem", subject: "mailto:ops@example.com", endpointHosts: DEFAULT_WEBPUSH_ENDPOINT_HOSTS },
    });
    expect(apps({ webpush: { vapidKeyFile: "/v.pem", subject: "mailto:a@b.c", endpointHosts: ["Push.Example.net", "*.example.org"] } }).webpush?.endpointHosts).toEqual(["push.example.net", "*.example.org"]);
    expect(apps({ enabled: false, apple: { certificateFile: "/c.pem" } }).enabled).toBe(false);
  });

  it.each([
    [{ apple: { certificateFile: "/c.pem", keyFile: "/k.p8", keyId: "ABCDEFGHIJ", teamId: "0123456789" } }, "apps.com.example.phone.apple.certificateFile"],
    [{ apple: { keyFile: "/k.p8", keyId: "short", teamId: "0123456789" } }, "apps.com.example.phone.apple.keyId"],
    [{ apple: { keyFile: "/k.p8", keyId: "ABCDEFGHIJ" } }, "apps.com.example.phone.apple.teamId"],
    [{ apple: { host: "api.push.apple.com" } }, "apps.com.example.phone.apple.certificateFile"],
    [{ firebase: { serviceAccountFile: "/sa.json", apiKey: "AAAA" } }, "apps.com.example.phone.firebase.apiKey"],
    [{ firebase: {} }, "apps.com.example.phone.firebase.serviceAccountFile"],
    [{ webpush: { vapidKeyFile: "/v.pem", subject: "ops@example.com" } }, "apps.com.example.phone.webpush.subject"],
    [{ webpush: { vapidKeyFile: "/v.pem", subject: "mailto:a@b.c", publicKey: "nope" } }, "apps.com.example.phone.webpush.publicKey"],
    [{ webpush: { vapidKeyFile: "/v.pem", subject: "mailto:a@b.c", endpointHosts: [] } }, "apps.com.example.phone.webpush.endpointHosts"],
    [{ webpush: { vapidKeyFile: "/v.pem", subject: "mailto:a@b.c", endpointHosts: ["https://push.example.net"] } }, "apps.com.example.phone.webpush.endpointHosts[0]"],
    [{ enabled: "yes" }, "apps.com.example.phone.enabled"],
    [{ huawei: {} }, "apps.com.example.phone.huawei"],
  ])("refuses %j naming %s", (app, key) => {
    expect(refusal(app)).toContain(key);
  });
});
