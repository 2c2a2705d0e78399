import { describe, expect, it } from "vitest";
import {
  CLUSTER_MESSAGE_VERSION,
  ClusterRegistration,
  ClusterRegisterFailed,
  parseClusterMessage,
  parseHelperMessage,
  parsePluginMessage,
  PROTOCOL_VERSION,
  PushRequest,
  PushResult,
} from "../src/protocol";

const pushResult: PushResult = {
  type: "push-result",
  callRef: "101:202",
  callId: "call-1@example.com",
  aor: "alice@example.com",
  instance: "urn:uuid:1",
  outcome: "failed",
  code: "PUSHER_ERR_APNS_BAD_DEVICE_TOKEN",
  reason: "BadDeviceToken",
  dropToken: true,
  token: "abc def",
  tokenInvalidSinceMs: 1795858084761,
};

const pushRequest: PushRequest = {
  type: "push",
  callRef: "101:202",
  callId: "call-1@example.com",
  aor: "alice@example.com",
  device: { instance: "urn:uuid:1", appId: "com.example.app", provider: "apple", token: "abc def" },
  caller: { number: "+15551234", name: "Bob" },
  proxy: "sip:192.0.2.1:5060;transport=tcp",
  ringsUntilMs: 1700000000000,
};

const text = (value: unknown) => JSON.stringify(value);

function without(value: object, key: string): object {
  const copy: { [key: string]: unknown } = { ...value };
  delete copy[key];
  return copy;
}

const notJson = [
  "",
  " ",
  "{",
  "}",
  "nope",
  "{'type':'hello'}",
  '{"type":"hello","version":1,"pid":2} junk',
  "undefined",
  "NaN",
];
const notObjects = [
  "null",
  "0",
  "1",
  "true",
  "false",
  '"push"',
  '"push-result"',
  "[]",
  '[{"type":"hello","version":1,"pid":2}]',
];

describe("PROTOCOL_VERSION", () => {
  it("is 1", () => {
    expect(PROTOCOL_VERSION).toBe(1);
  });
});

describe("parseHelperMessage", () => {
  it("accepts a hello", () => {
    expect(parseHelperMessage('{"type":"hello","version":1,"pid":4242}')).toEqual({
      type: "hello",
      version: 1,
      pid: 4242,
    });
  });

  it("accepts a failed push-result with every optional field", () => {
    expect(parseHelperMessage(text(pushResult))).toEqual(pushResult);
  });

  it("accepts a sent push-result with only the required fields", () => {
    const sent = { type: "push-result", callRef: "1:2", callId: "c", aor: "a@b", instance: "i", outcome: "sent" };
    expect(parseHelperMessage(text(sent))).toEqual(sent);
  });

  it("accepts surrounding whitespace", () => {
    expect(parseHelperMessage('\n {"type":"hello","version":1,"pid":1} \r\n')).toEqual({
      type: "hello",
      version: 1,
      pid: 1,
    });
  });

  it("drops unknown fields instead of passing them on", () => {
    expect(parseHelperMessage(text({ type: "hello", version: 1, pid: 2, extra: "x" }))).toEqual({
      type: "hello",
      version: 1,
      pid: 2,
    });
    expect(parseHelperMessage(text({ ...pushResult, extra: { deep: true } }))).toEqual(pushResult);
  });

  it.each([
    ["code is not a string", { code: 410 }, "code"],
    ["reason is not a string", { reason: null }, "reason"],
    ["dropToken is not exactly true", { dropToken: "true" }, "dropToken"],
    ["token is not a string", { token: 7 }, "token"],
    ["tokenInvalidSinceMs is a string", { tokenInvalidSinceMs: "1795858084761" }, "tokenInvalidSinceMs"],
    ["tokenInvalidSinceMs is not positive", { tokenInvalidSinceMs: 0 }, "tokenInvalidSinceMs"],
    ["tokenInvalidSinceMs is past what a Date holds", { tokenInvalidSinceMs: 8.7e15 }, "tokenInvalidSinceMs"],
  ])("leaves out an optional field when %s", (_label, change, key) => {
    const parsed = parseHelperMessage(text({ ...pushResult, ...change }));
    expect(parsed).not.toBeNull();
    expect(parsed).not.toHaveProperty(key);
  });

  it("leaves out dropToken when it is false", () => {
    expect(parseHelperMessage(text({ ...pushResult, dropToken: false }))).not.toHaveProperty("dropToken");
  });

  it.each(notJson)("returns null for the malformed JSON %j", (input) => {
    expect(parseHelperMessage(input)).toBeNull();
  });

  it.each(notObjects)("returns null for the JSON non-message %j", (input) => {
    expect(parseHelperMessage(input)).toBeNull();
  });

  it.each([
    ["an unknown type", { type: "push", version: 1, pid: 1 }],
    ["a type in the wrong case", { type: "Hello", version: 1, pid: 1 }],
    ["no type", { version: 1, pid: 1 }],
    ["a hello without version", { type: "hello", pid: 1 }],
    ["a hello without pid", { type: "hello", version: 1 }],
    ["a hello with a string version", { type: "hello", version: "1", pid: 1 }],
    ["a hello with a null pid", { type: "hello", version: 1, pid: null }],
    ["a push-result without callRef", without(pushResult, "callRef")],
    ["a push-result without callId", without(pushResult, "callId")],
    ["a push-result without aor", without(pushResult, "aor")],
    ["a push-result without instance", without(pushResult, "instance")],
    ["a push-result without outcome", without(pushResult, "outcome")],
    ["a push-result with a numeric callRef", { ...pushResult, callRef: 101202 }],
    ["a push-result with a null callId", { ...pushResult, callId: null }],
    ["a push-result with an object aor", { ...pushResult, aor: { user: "alice" } }],
    ["a push-result with an array instance", { ...pushResult, instance: ["i"] }],
    ["a push-result with an unknown outcome", { ...pushResult, outcome: "retry" }],
    ["a push-result with a boolean outcome", { ...pushResult, outcome: true }],
    ["a stats-request without id", { type: "stats-request" }],
    ["a stats-request with a string id", { type: "stats-request", id: "7" }],
  ])("returns null for %s", (_label, message) => {
    expect(parseHelperMessage(text(message))).toBeNull();
  });

  it("accepts a stats-request", () => {
    expect(parseHelperMessage(text({ type: "stats-request", id: 7, extra: 1 }))).toEqual({
      type: "stats-request",
      id: 7,
    });
  });

  it("never throws, whatever it is given", () => {
    for (const input of [undefined, null, 42, {}, [], "\u0000", "\uD800"]) {
      expect(() => parseHelperMessage(input as unknown as string)).not.toThrow();
    }
  });
});

describe("parsePluginMessage", () => {
  it("accepts a push request", () => {
    expect(parsePluginMessage(text(pushRequest))).toEqual(pushRequest);
  });

  it("accepts a stats report, keeping only its finite numbers", () => {
    const report = {
      type: "stats",
      id: 7,
      values: { calls_held: 3, wake_latency_sum_us: 1234.5, junk: "x", deep: { a: 1 } },
      helperConnections: 1,
    };
    expect(parsePluginMessage(text(report))).toEqual({
      type: "stats",
      id: 7,
      values: { calls_held: 3, wake_latency_sum_us: 1234.5 },
      helperConnections: 1,
    });
  });

  it.each([
    ["no id", { type: "stats", values: {}, helperConnections: 1 }],
    ["no values", { type: "stats", id: 1, helperConnections: 1 }],
    ["values that are not an object", { type: "stats", id: 1, values: 5, helperConnections: 1 }],
    ["no helperConnections", { type: "stats", id: 1, values: {} }],
  ])("refuses a stats report with %s", (_label, report) => {
    expect(parsePluginMessage(text(report))).toBeNull();
  });

  it("accepts a firebase device", () => {
    const firebase = { ...pushRequest, device: { ...pushRequest.device, provider: "firebase" } };
    expect(parsePluginMessage(text(firebase))).toEqual(firebase);
  });

  it.each([
    ["a call push", { purpose: "call" }],
    ["a missed-call push", { purpose: "call-ended", endReason: "cancelled" }],
    ["an answered-elsewhere push", { purpose: "call-ended", endReason: "answered-elsewhere" }],
  ])("accepts %s, keeping its purpose and end reason", (_label, extra) => {
    const request = { ...pushRequest, ...extra };
    expect(parsePluginMessage(text(request))).toEqual(request);
  });

  it("leaves out purpose and endReason when the request has none (a call push)", () => {
    const parsed = parsePluginMessage(text(pushRequest));
    expect(parsed).not.toHaveProperty("purpose");
    expect(parsed).not.toHaveProperty("endReason");
  });

  it("accepts empty caller fields (an anonymous call)", () => {
    const anonymous = { ...pushRequest, caller: { number: "", name: "" } };
    expect(parsePluginMessage(text(anonymous))).toEqual(anonymous);
  });

  it("drops unknown fields at every level", () => {
    const padded = {
      ...pushRequest,
      extra: 1,
      device: { ...pushRequest.device, secret: "x" },
      caller: { ...pushRequest.caller, photo: "y" },
    };
    expect(parsePluginMessage(text(padded))).toEqual(pushRequest);
  });

  it.each(notJson)("returns null for the malformed JSON %j", (input) => {
    expect(parsePluginMessage(input)).toBeNull();
  });

  it.each(notObjects)("returns null for the JSON non-message %j", (input) => {
    expect(parsePluginMessage(input)).toBeNull();
  });

  it.each([
    ["another type", { ...pushRequest, type: "push-result" }],
    ["no type", without(pushRequest, "type")],
    ["no callRef", without(pushRequest, "callRef")],
    ["no callId", without(pushRequest, "callId")],
    ["no aor", without(pushRequest, "aor")],
    ["no device", without(pushRequest, "device")],
    ["no caller", without(pushRequest, "caller")],
    ["no proxy", without(pushRequest, "proxy")],
    ["no ringsUntilMs", without(pushRequest, "ringsUntilMs")],
    ["a null device", { ...pushRequest, device: null }],
    ["a string device", { ...pushRequest, device: "abc" }],
    ["a string caller", { ...pushRequest, caller: "+15551234" }],
    ["an array device", { ...pushRequest, device: [] }],
    ["a device without instance", { ...pushRequest, device: without(pushRequest.device, "instance") }],
    ["a device without appId", { ...pushRequest, device: without(pushRequest.device, "appId") }],
    ["a device without token", { ...pushRequest, device: without(pushRequest.device, "token") }],
    ["a device with a numeric token", { ...pushRequest, device: { ...pushRequest.device, token: 123 } }],
    ["a device with an alias provider", { ...pushRequest, device: { ...pushRequest.device, provider: "google" } }],
    ["a device with an unknown provider", { ...pushRequest, device: { ...pushRequest.device, provider: "huawei" } }],
    ["a caller without number", { ...pushRequest, caller: { name: "Bob" } }],
    ["a caller with a numeric number", { ...pushRequest, caller: { number: 15551234, name: "Bob" } }],
    ["a caller without name", { ...pushRequest, caller: { number: "1" } }],
    ["a numeric callRef", { ...pushRequest, callRef: 1 }],
    ["a null proxy", { ...pushRequest, proxy: null }],
    ["a string ringsUntilMs", { ...pushRequest, ringsUntilMs: "1700000000000" }],
    ["a null ringsUntilMs", { ...pushRequest, ringsUntilMs: null }],
    ["an unknown purpose", { ...pushRequest, purpose: "wake" }],
    ["a null purpose", { ...pushRequest, purpose: null }],
    ["an unknown endReason", { ...pushRequest, purpose: "call-ended", endReason: "timeout" }],
    ["a numeric endReason", { ...pushRequest, purpose: "call-ended", endReason: 487 }],
  ])("returns null for %s", (_label, message) => {
    expect(parsePluginMessage(text(message))).toBeNull();
  });

  it("never throws, whatever it is given", () => {
    for (const input of [undefined, null, 42, {}, [], "\u0000", "\uD800"]) {
      expect(() => parsePluginMessage(input as unknown as string)).not.toThrow();
    }
  });
});

describe("the cluster's registration message (KDMQ between nodes)", () => {
  const message: ClusterRegistration = {
    v: CLUSTER_MESSAGE_VERSION,
    type: "registered",
    aor: "alice@example.com",
    instance: "<urn:uuid:1>",
    tokens: ["t1", "t2"],
    contact: "sip:c-1@127.0.0.99:5999;pn-provider=apns;pn-prid=t1",
    path: "<sip:127.0.1.2:5062;lr;received=sip:127.0.0.7:40000>",
    registeredAt: "1700000000.123456",
  };

  it("reads back what a node sends", () => {
    expect(parseClusterMessage(JSON.stringify(message))).toEqual(message);
  });

  it("refuses another version, a contact or Path that is not a SIP URI, and tokens that are not strings", () => {
    expect(parseClusterMessage(JSON.stringify({ ...message, v: 2 }))).toBeNull();
    expect(parseClusterMessage(JSON.stringify({ ...message, contact: "http://x" }))).toBeNull();
    expect(parseClusterMessage(JSON.stringify({ ...message, path: "sip:127.0.1.2;lr" }))).toBeNull();
    expect(parseClusterMessage(JSON.stringify({ ...message, tokens: [1] }))).toBeNull();
    expect(parseClusterMessage("not json")).toBeNull();
  });

  it("refuses a contact or Path with a control character (they go into the INVITE's R-URI and Route header)", () => {
    expect(parseClusterMessage(JSON.stringify({ ...message, path: "<sip:127.0.1.2;lr>\r\nX-Evil: 1" }))).toBeNull();
    expect(parseClusterMessage(JSON.stringify({ ...message, contact: "sip:a@b\nc" }))).toBeNull();
  });

  it("drops a registration time that is not $TV(Sn)'s form (the wake latency then has no start)", () => {
    const read = parseClusterMessage(JSON.stringify({ ...message, registeredAt: "soon" }));
    expect(read?.type === "registered" && read.registeredAt).toBe("");
  });

  it("reads a failed registration (RFC 8599 §5.6.2 across nodes), and refuses one without its tokens", () => {
    const failed: ClusterRegisterFailed = {
      v: CLUSTER_MESSAGE_VERSION,
      type: "register-failed",
      aor: "alice@example.com",
      tokens: ["t1"],
      code: "403",
    };
    expect(parseClusterMessage(JSON.stringify(failed))).toEqual(failed);
    expect(parseClusterMessage(JSON.stringify({ ...failed, tokens: "t1" }))).toBeNull();
    expect(parseClusterMessage(JSON.stringify({ ...failed, type: "gone" }))).toBeNull();
  });
});
