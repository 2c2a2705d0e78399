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
      apple: {
        keyFile: "/k.p8",
        keyId: "ABCDEFGHIJ",
        teamId: "0123456789",
        host: "api.push.apple.com",
        sandboxHost: "api.sandbox.push.apple.com",
        callEndedVoipPush: false,
      },
      firebase: { serviceAccountFile: "/sa.json", host: "fcm.googleapis.com" },
      webpush: {
        vapidKeyFile: "/v.pem",
        subject: "mailto:ops@example.com",
        endpointHosts: DEFAULT_WEBPUSH_ENDPOINT_HOSTS,
      },
    });
    expect(
      apps({
        webpush: {
          vapidKeyFile: "/v.pem",
          subject: "mailto:a@b.c",
          endpointHosts: ["Push.Example.net", "*.example.org"],
        },
      }).webpush?.endpointHosts,
    ).toEqual(["push.example.net", "*.example.org"]);
    expect(apps({ enabled: false, apple: { certificateFile: "/c.pem" } }).enabled).toBe(false);
    expect(
      apps({ firebase: { serviceAccountFile: "/sa.json", projectIds: ["acme-android", "example.com:acme-legacy"] } })
        .firebase?.projectIds,
    ).toEqual(["acme-android", "example.com:acme-legacy"]);
  });

  it("sends sandbox tokens to Apple's development host unless apple.sandboxHost names another, and sends no call-ended VoIP push unless asked", () => {
    expect(apps({ apple: { certificateFile: "/c.pem" } }).apple).toEqual({
      certificateFile: "/c.pem",
      host: "api.push.apple.com",
      sandboxHost: "api.sandbox.push.apple.com",
      callEndedVoipPush: false,
    });
    expect(
      apps({
        apple: {
          certificateFile: "/c.pem",
          host: "127.0.0.1:8443",
          sandboxHost: "127.0.0.1:8444",
          callEndedVoipPush: true,
        },
      }).apple,
    ).toEqual({
      certificateFile: "/c.pem",
      host: "127.0.0.1:8443",
      sandboxHost: "127.0.0.1:8444",
      callEndedVoipPush: true,
    });
    expect(
      apps({
        apple: {
          keyFile: "/k.p8",
          keyId: "ABCDEFGHIJ",
          teamId: "0123456789",
          sandboxHost: "api.development.push.apple.com:443",
        },
      }).apple,
    ).toMatchObject({
      sandboxHost: "api.development.push.apple.com:443",
      callEndedVoipPush: false,
    });
  });

  it.each([
    [
      { certificateFile: "/c.pem", sandboxHost: "https://api.sandbox.push.apple.com" },
      'apps.com.example.phone.apple.sandboxHost: must be host or host:port, got "https://api.sandbox.push.apple.com"',
    ],
    [
      { certificateFile: "/c.pem", sandboxHost: "api.sandbox.push.apple.com/3/device" },
      "apps.com.example.phone.apple.sandboxHost: must be host or host:port",
    ],
    [
      { certificateFile: "/c.pem", sandboxHost: "" },
      "apps.com.example.phone.apple.sandboxHost: must be a non-empty string",
    ],
    [
      { certificateFile: "/c.pem", sandboxHost: 443 },
      "apps.com.example.phone.apple.sandboxHost: must be a non-empty string",
    ],
    [
      { certificateFile: "/c.pem", callEndedVoipPush: "yes" },
      "apps.com.example.phone.apple.callEndedVoipPush: must be true or false",
    ],
    [
      { certificateFile: "/c.pem", callEndedVoipPush: 1 },
      "apps.com.example.phone.apple.callEndedVoipPush: must be true or false",
    ],
    // Still no key it does not know (a misspelt one would be ignored silently otherwise).
    [{ certificateFile: "/c.pem", sandbox: true }, "apps.com.example.phone.apple.sandbox: unknown key"],
    [
      { certificateFile: "/c.pem", sandboxhost: "api.sandbox.push.apple.com" },
      "apps.com.example.phone.apple.sandboxhost: unknown key",
    ],
    [
      { certificateFile: "/c.pem", callEndedAlertPush: true },
      "apps.com.example.phone.apple.callEndedAlertPush: unknown key",
    ],
  ])("refuses apple %j: %s", (apple, message) => {
    expect(refusal({ apple })).toContain(message);
  });

  it.each([
    [
      { apple: { certificateFile: "/c.pem", keyFile: "/k.p8", keyId: "ABCDEFGHIJ", teamId: "0123456789" } },
      "apps.com.example.phone.apple.certificateFile",
    ],
    [{ apple: { keyFile: "/k.p8", keyId: "short", teamId: "0123456789" } }, "apps.com.example.phone.apple.keyId"],
    [{ apple: { keyFile: "/k.p8", keyId: "ABCDEFGHIJ" } }, "apps.com.example.phone.apple.teamId"],
    [{ apple: { host: "api.push.apple.com" } }, "apps.com.example.phone.apple.certificateFile"],
    [{ firebase: { serviceAccountFile: "/sa.json", apiKey: "AAAA" } }, "apps.com.example.phone.firebase.apiKey"],
    [{ firebase: {} }, "apps.com.example.phone.firebase.serviceAccountFile"],
    [{ firebase: { serviceAccountFile: "/sa.json", projectIds: [] } }, "apps.com.example.phone.firebase.projectIds"],
    [
      { firebase: { serviceAccountFile: "/sa.json", projectIds: ["Acme Android"] } },
      "apps.com.example.phone.firebase.projectIds[0]",
    ],
    [{ webpush: { vapidKeyFile: "/v.pem", subject: "ops@example.com" } }, "apps.com.example.phone.webpush.subject"],
    [
      { webpush: { vapidKeyFile: "/v.pem", subject: "mailto:a@b.c", publicKey: "nope" } },
      "apps.com.example.phone.webpush.publicKey",
    ],
    [
      { webpush: { vapidKeyFile: "/v.pem", subject: "mailto:a@b.c", endpointHosts: [] } },
      "apps.com.example.phone.webpush.endpointHosts",
    ],
    [
      { webpush: { vapidKeyFile: "/v.pem", subject: "mailto:a@b.c", endpointHosts: ["https://push.example.net"] } },
      "apps.com.example.phone.webpush.endpointHosts[0]",
    ],
    [{ enabled: "yes" }, "apps.com.example.phone.enabled"],
    [{ huawei: {} }, "apps.com.example.phone.huawei"],
  ])("refuses %j naming %s", (app, key) => {
    expect(refusal(app)).toContain(key);
  });
});
