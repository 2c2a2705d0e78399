import { describe, expect, it } from "vitest";
import type { AppConfig, AppleCredentials } from "../../src/config";
import { CredentialsAlarm } from "../../src/helper/credentials-alarm";
import { createPushHandler } from "../../src/helper/push-handler";
import type { SendOutcome } from "../../src/helper/retry-policy";
import type { PushRequest } from "../../src/protocol";

function recorder() {
  const lines: { level: string; message: string }[] = [];
  const line = (level: string) => (message: string) => void lines.push({ level, message });
  return { lines, logger: { error: line("error"), warn: line("warn"), info: line("info"), debug: line("debug") } };
}

function request(appId: string, provider: PushRequest["device"]["provider"] = "apple"): PushRequest {
  return {
    type: "push",
    callRef: "1:1",
    callId: "c@h",
    aor: "sip:a@h",
    device: { instance: "i", appId, provider, token: "t".repeat(64) },
    caller: { number: "1", name: "n" },
    proxy: "",
    ringsUntilMs: Date.now() + 10_000,
  };
}

/** An app's APNs credentials as config.ts fills them in (the senders are fakes here). */
function apple(certificateFile: string): AppleCredentials {
  return { certificateFile, host: "h", sandboxHost: "s", callEndedVoipPush: false };
}

const credentialsFailure: SendOutcome = {
  outcome: "failed",
  code: "PUSHER_ERR_APNS_CREDENTIALS",
  reason: "InvalidProviderToken",
  credentials: true,
  attempts: 2,
};

describe("push handler", () => {
  it("raises the credentials alarm at error level once a minute per app, counts every occurrence, keeps the token", async () => {
    let clockMs = 1_000_000;
    const { lines, logger } = recorder();
    const alarm = new CredentialsAlarm(logger, () => clockMs);
    const apps: { [id: string]: AppConfig } = {
      a: { enabled: true, apple: apple("x") },
      b: { enabled: true, apple: apple("y") },
    };
    const fail = async () => credentialsFailure;
    const handle = createPushHandler({
      apps,
      logger,
      alarm,
      now: () => clockMs,
      senders: { apple: { send: fail }, firebase: { send: fail }, webpush: { send: fail } },
    });

    for (let i = 0; i < 5; i++) expect((await handle(request("a"))).dropToken).toBeUndefined();
    await handle(request("b"));
    clockMs += 61_000;
    await handle(request("a"));

    const errors = lines.filter((line) => line.level === "error").map((line) => line.message);
    expect(errors.filter((message) => message.includes('app="a"'))).toHaveLength(2);
    expect(errors.filter((message) => message.includes('app="b"'))).toHaveLength(1);
    expect(errors[errors.length - 1]).toContain("(5 times since the last report)");
    expect(alarm.count("a", "apple")).toBe(6);
    expect(alarm.count("b", "apple")).toBe(1);
  });

  it("holds an app's APNs/FCM pushes back for 30 s after its credentials were refused, other apps and Web Push unaffected", async () => {
    let clockMs = 1_000_000;
    const { logger } = recorder();
    const alarm = new CredentialsAlarm(logger, () => clockMs);
    const apps: { [id: string]: AppConfig } = {
      bad: {
        enabled: true,
        apple: apple("x"),
        webpush: { vapidKeyFile: "v", subject: "mailto:a@b", endpointHosts: ["h"] },
      },
      good: { enabled: true, apple: apple("y") },
    };
    const sent: string[] = [];
    const send = async (request: PushRequest): Promise<SendOutcome> => {
      sent.push(`${request.device.appId}/${request.device.provider}`);
      return request.device.appId === "bad" ? credentialsFailure : { outcome: "sent", attempts: 1 };
    };
    const handle = createPushHandler({
      apps,
      logger,
      alarm,
      now: () => clockMs,
      senders: { apple: { send }, firebase: { send }, webpush: { send } },
    });

    expect(await handle(request("bad"))).toMatchObject({ outcome: "failed", code: "PUSHER_ERR_APNS_CREDENTIALS" });
    clockMs += 10_000;
    const held = await handle(request("bad"));
    expect(held).toMatchObject({ outcome: "failed", code: "PUSHER_ERR_APNS_CREDENTIALS" });
    expect(held.reason).toBe(
      "not sent: apple refused this app's credentials 10 s ago (InvalidProviderToken); pushes wait 30 s or a reload",
    );
    expect(await handle(request("good"))).toMatchObject({ outcome: "sent" });
    await handle(request("bad", "webpush")); // a 403 there may be one subscription's: never held
    await handle(request("bad", "webpush"));
    expect(sent).toEqual(["bad/apple", "good/apple", "bad/webpush", "bad/webpush"]);
    expect(alarm.count("bad", "apple")).toBe(2); // the held-back push counts as refused too

    clockMs += 20_000; // 30 s after the refusal (held-back pushes do not extend the hold)
    await handle(request("bad"));
    expect(sent.filter((entry) => entry === "bad/apple")).toHaveLength(2);
    alarm.liftHolds(); // a config reload
    await handle(request("bad"));
    expect(sent.filter((entry) => entry === "bad/apple")).toHaveLength(3);
  });

  it("names the pushed token and the time APNs found it invalid in a dropToken result, and logs that time", async () => {
    const { lines, logger } = recorder();
    const apps: { [id: string]: AppConfig } = { a: { enabled: true, apple: apple("x") } };
    const dead = async (): Promise<SendOutcome> => ({
      outcome: "failed",
      code: "PUSHER_ERR_APNS_UNREGISTERED",
      reason: "Unregistered",
      dropToken: true,
      attempts: 1,
      tokenInvalidSinceMs: Date.UTC(2026, 10, 1),
    });
    const handle = createPushHandler({
      apps,
      logger,
      senders: { apple: { send: dead }, firebase: { send: dead }, webpush: { send: dead } },
    });
    expect(await handle(request("a"))).toMatchObject({
      dropToken: true,
      token: "t".repeat(64),
      tokenInvalidSinceMs: Date.UTC(2026, 10, 1),
    });
    expect(lines.map((line) => line.message).join("\n")).toContain("token-invalid-since=2026-11-01T00:00:00.000Z");
  });

  it("skips a disabled app with PUSHER_ERR_APP_DISABLED and an app without the device's provider with PUSHER_ERR_NO_APP", async () => {
    const { logger } = recorder();
    let sends = 0;
    const send = async (): Promise<SendOutcome> => (sends++, { outcome: "sent", attempts: 1 });
    const apps: { [id: string]: AppConfig } = {
      off: { enabled: false, apple: apple("x") },
      on: { enabled: true, apple: apple("x") },
    };
    const handle = createPushHandler({
      apps,
      logger,
      senders: { apple: { send }, firebase: { send }, webpush: { send } },
    });

    expect(await handle(request("off"))).toMatchObject({ outcome: "failed", code: "PUSHER_ERR_APP_DISABLED" });
    expect(await handle(request("on", "firebase"))).toMatchObject({ outcome: "failed", code: "PUSHER_ERR_NO_APP" });
    expect(await handle(request("on"))).toMatchObject({ outcome: "sent" });
    expect(sends).toBe(1);
  });
});
