import { describe, expect, it } from "vitest";
import { PushBinding } from "../../src/plugin/parse-push-params";
import {
  MAX_ID_LENGTH,
  MAX_PARAM_LENGTH,
  instanceIdProblem,
  pushBindingProblem,
} from "../../src/plugin/validate-push-params";

function binding(fields: Partial<PushBinding>): PushBinding {
  return { appId: "com.example.app", provider: "apple", token: "0123456789abcdef", instance: "reg-id:1", ...fields };
}

describe("pushBindingProblem", () => {
  it.each([
    ["an APNs hex token", binding({})],
    [
      "Kazoo's sample token with its inner space",
      binding({ token: "34fretrwgtrvtrebyenbytrwvtrebytenytbyrtebytebytebyten yhtevtrw" }),
    ],
    [
      "an FCM registration token",
      binding({ provider: "firebase", token: "dQw4w9WgXcQ:APA91bHun4MxP5egoKMwt2KZFBaFUH-1RYqx_x" }),
    ],
    ["a legacy GCM token", binding({ provider: "firebase", token: "APA91b+x/y=" })],
    [
      "a Web Push subscription URL",
      binding({ provider: "webpush", token: "https://fcm.googleapis.com/fcm/send/cXk:APA91b?x=1" }),
    ],
    ["a token of exactly 4096 characters", binding({ token: "a".repeat(MAX_PARAM_LENGTH) })],
    ["Linphone options", binding({ options: { "pn-call-snd": "notes_of_the_optimistic.caf", "pn-timeout": "0" } })],
  ])("accepts %s", (_label, value) => {
    expect(pushBindingProblem(value)).toBeNull();
  });

  it.each([
    ["an empty token", binding({ token: "" }), "token is empty"],
    [
      "a token over 4 KiB",
      binding({ token: "a".repeat(MAX_PARAM_LENGTH + 1) }),
      "token is longer than 4096 characters",
    ],
    ["an APNs token with markup", binding({ token: "abc<script>" }), "token has characters outside its alphabet"],
    ["an APNs token with a leading space", binding({ token: " abc" }), "token has characters outside its alphabet"],
    [
      "an APNs token with a control character",
      binding({ token: "abc\u0000def" }),
      "token has characters outside its alphabet",
    ],
    [
      "an FCM token with a quote",
      binding({ provider: "firebase", token: "abc'def" }),
      "token has characters outside its alphabet",
    ],
    [
      "a Web Push token that is not https",
      binding({ provider: "webpush", token: "http://push.example/x" }),
      "token has characters outside its alphabet",
    ],
    ["an empty app id", binding({ appId: "" }), "app id is empty"],
    ["an app id with a slash", binding({ appId: "com/example" }), "app id has characters outside its alphabet"],
    [
      "an app id over 256 characters",
      binding({ appId: "a".repeat(MAX_ID_LENGTH + 1) }),
      "app id is longer than 256 characters",
    ],
    ["an empty alert token", binding({ alertToken: "" }), "alert token is empty"],
    [
      "an APNs topic with a space",
      binding({ apnsTopic: "com.example app" }),
      "APNs topic (pn-param) has characters outside its alphabet",
    ],
    ["an empty option", binding({ options: { "pn-silent": "" } }), "pn-silent is empty"],
    [
      "an option with a semicolon",
      binding({ options: { "pn-msg-str": "a;b" } }),
      "pn-msg-str has characters outside its alphabet",
    ],
  ])("refuses %s", (_label, value, problem) => {
    expect(pushBindingProblem(value)).toBe(problem);
  });
});

// Instance ids key records, are logged and listed by `pusher devices`: URL-decoded, they could hold anything.
describe("instanceIdProblem", () => {
  it.each([
    ["a +sip.instance URN", "urn:uuid:00000000-0000-0000-0000-00004e05965e", false],
    ["a reg-id", "reg-id:1", false],
    ["256 characters", "urn:" + "a".repeat(MAX_ID_LENGTH - 4), false],
    [
      "a long Contact URI (the key of a contact without +sip.instance and reg-id)",
      "sip:c@192.0.2.1;pn-prid=" + "A".repeat(400),
      true,
    ],
  ])("accepts %s", (_label, instance, keyedByUri) => {
    expect(instanceIdProblem(instance, keyedByUri)).toBeNull();
  });

  it.each([
    ["257 characters", "urn:" + "a".repeat(MAX_ID_LENGTH - 3), false, "instance id is longer than 256 characters"],
    [
      "CR LF (decoded from %0D%0A)",
      "urn:uuid:1\r\nforged line",
      false,
      "instance id has characters outside printable ASCII",
    ],
    ["ESC", "urn:\x1b[31m", false, "instance id has characters outside printable ASCII"],
    ["NUL", "reg-id:1\x00", false, "instance id has characters outside printable ASCII"],
    ["non-ASCII", "urn:\u00e9", false, "instance id has characters outside printable ASCII"],
    ["nothing", "", false, "instance id has characters outside printable ASCII"],
    [
      "a Contact URI with a control character",
      "sip:c@192.0.2.1;x=\x7f",
      true,
      "instance id has characters outside printable ASCII",
    ],
  ])("refuses %s", (_label, instance, keyedByUri, problem) => {
    expect(instanceIdProblem(instance, keyedByUri)).toBe(problem);
  });
});
