// Messages between the plugin (inside Kamailio, Duktape ES5) and the helper (Node).
// Transport: evapi netstrings over TCP on loopback; each frame is one JSON object.
// This file holds types and pure functions only: it is compiled into both sides, so it must stay ES5-safe
// (no Map/Set/Promise, no String#padStart, no regex flags beyond g/i/m).

export const PROTOCOL_VERSION = 1;

/**
 * Push services a device record can name. `google`/`android` in a Contact are aliases of `firebase`;
 * RFC 8599's `apns`/`fcm`/`webpush` map to `apple`/`firebase`/`webpush`.
 */
export type PushProvider = "apple" | "firebase" | "webpush";

/** What an Apple device can be woken with: a PushKit (VoIP) token, or only an alert token (Linphone `:remote`). */
export type PushKind = "voip" | "alert";

/** A Web Push subscription's keys (RFC 8291 §3): base64url, as `PushSubscription.toJSON().keys` gives them. */
export interface WebPushKeys {
  /** The user agent's P-256 ECDH public key, uncompressed (65 bytes). */
  p256dh: string;
  /** The 16-byte authentication secret. */
  auth: string;
}

/** Identifies one held INVITE transaction in Kamailio: `<tindex>:<tlabel>`. */
export type CallRef = string;

export interface PushDevice {
  /** Device instance within its AOR (`+sip.instance`, else `reg-id`, else the contact URI). */
  instance: string;
  appId: string;
  provider: PushProvider;
  /** APNs/FCM registration token; for Web Push the subscription's endpoint URL (RFC 8599 pn-prid). */
  token: string;
  /** Apple only; absent means "voip". `alert`: `token` is an alert token (the device registered only one, or a
   * call-ended push goes to its alert token). */
  pushKind?: PushKind;
  /** FCM project id from RFC 8599 `pn-param`; absent: the service account's project. */
  fcmProjectId?: string;
  /** APNs topic (bundle id) from RFC 8599 `pn-param`, team id and service removed; absent: from the app id. */
  apnsTopic?: string;
  /** Web Push only: the subscription's keys; required to encrypt the payload. */
  webpush?: WebPushKeys;
  /** Apple only: the device registered with Linphone's `pn-provider=apns.dev`, so its token is a sandbox token. */
  sandbox?: boolean;
}

export interface Caller {
  number: string;
  name: string;
}

/** Why a push is sent: to ring a call, or to tell a phone that showed the call that it is over. */
export type PushPurpose = "call" | "call-ended";

/** How a call ended, for `call-ended` pushes: the caller gave up, or another device answered. */
export type CallEndReason = "cancelled" | "answered-elsewhere";

/** plugin → helper: send one push to one device for one held call. */
export interface PushRequest {
  type: "push";
  /** Absent means "call". The APNs push type follows `device.pushKind` for both purposes: the plugin sends a
   * `call-ended` push to an alert token, or as VoIP only where the app asked for it (apple.callEndedVoipPush). */
  purpose?: PushPurpose;
  endReason?: CallEndReason;
  callRef: CallRef;
  callId: string;
  aor: string;
  device: PushDevice;
  caller: Caller;
  /** SIP URI the woken app should register through (Kazoo's `proxy`). */
  proxy: string;
  /** One-time token a woken app may present on its REGISTER (Kazoo's `registration-token`, `X-Token-Reg`). */
  registrationToken?: string;
  /** Kazoo's `account-ref` (X-KAZOO-PUSHER-Account-Ref), passed through to the app. */
  accountRef?: string;
  /** Epoch ms after which the call stops ringing: no retry may be sent after it. */
  ringsUntilMs: number;
}

/** How a push ended, as far as the call is concerned. */
export type PushOutcome = "sent" | "failed";

/** helper → plugin: the provider's answer to one PushRequest. */
export interface PushResult {
  type: "push-result";
  callRef: CallRef;
  callId: string;
  aor: string;
  instance: string;
  outcome: PushOutcome;
  /** Stable error code (PUSHER_ERR_*) when outcome is "failed". */
  code?: string;
  /** The provider's own words, e.g. APNs `Unregistered`. */
  reason?: string;
  /** The token is dead: the plugin removes the device record. */
  dropToken?: boolean;
  /** With dropToken: the token that was pushed. The record goes only while it still holds it (the phone may have
   * registered a new one since). */
  token?: string;
  /** With dropToken, from APNs 410: epoch ms since when the token is invalid. A record registered after that
   * (the phone registered the token again) is kept. */
  tokenInvalidSinceMs?: number;
}

/** helper → plugin, once per connection. */
export interface HelperHello {
  type: "hello";
  version: number;
  pid: number;
}

/** helper → plugin: Prometheus scrapes the helper; the plugin answers with a StatsReport of the same id. */
export interface StatsRequest {
  type: "stats-request";
  id: number;
}

/** plugin → helper: the items of htable pusher_stats (src/kamailio-stats.ts) and evapi's helper connections. */
export interface StatsReport {
  type: "stats";
  id: number;
  values: { [key: string]: number };
  helperConnections: number;
}

export type HelperMessage = PushResult | HelperHello | StatsRequest;
export type PluginMessage = PushRequest | StatsReport;

function isString(value: unknown): value is string {
  return typeof value === "string";
}

/** A JSON object's fields, or null when the text is not JSON or not an object (never throws). */
function parseObject(text: string): { [key: string]: unknown } | null {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    return null;
  }
  return value && typeof value === "object" ? (value as { [key: string]: unknown }) : null;
}

/** Parses and checks a helper message; returns null for anything malformed (never throws). */
export function parseHelperMessage(text: string): HelperMessage | null {
  const message = parseObject(text);
  if (!message) return null;
  if (message.type === "hello") {
    return typeof message.version === "number" && typeof message.pid === "number"
      ? { type: "hello", version: message.version, pid: message.pid }
      : null;
  }
  if (message.type === "stats-request") return typeof message.id === "number" ? { type: "stats-request", id: message.id } : null;
  if (message.type !== "push-result") return null;
  if (!isString(message.callRef) || !isString(message.callId) || !isString(message.aor)) return null;
  if (!isString(message.instance)) return null;
  if (message.outcome !== "sent" && message.outcome !== "failed") return null;
  const result: PushResult = {
    type: "push-result",
    callRef: message.callRef,
    callId: message.callId,
    aor: message.aor,
    instance: message.instance,
    outcome: message.outcome,
  };
  if (isString(message.code)) result.code = message.code;
  if (isString(message.reason)) result.reason = message.reason;
  if (message.dropToken === true) result.dropToken = true;
  if (isString(message.token)) result.token = message.token;
  // Within what a Date can hold (±8.64e15 ms): the plugin prints it as a date.
  const invalidSince = message.tokenInvalidSinceMs;
  if (typeof invalidSince === "number" && invalidSince > 0 && invalidSince <= 8.64e15) result.tokenInvalidSinceMs = invalidSince;
  return result;
}

/** Parses and checks a plugin message on the helper side; returns null for anything malformed. */
export function parsePluginMessage(text: string): PluginMessage | null {
  const message = parseObject(text);
  if (message && message.type === "stats") return parseStatsReport(message);
  if (!message || message.type !== "push") return null;
  const device = message.device as { [key: string]: unknown } | undefined;
  const caller = message.caller as { [key: string]: unknown } | undefined;
  if (!device || typeof device !== "object" || !caller || typeof caller !== "object") return null;
  if (!isString(message.callRef) || !isString(message.callId) || !isString(message.aor)) return null;
  if (!isString(device.instance) || !isString(device.appId) || !isString(device.token)) return null;
  if (device.provider !== "apple" && device.provider !== "firebase" && device.provider !== "webpush") return null;
  if (device.pushKind !== undefined && device.pushKind !== "voip" && device.pushKind !== "alert") return null;
  if (device.fcmProjectId !== undefined && !isString(device.fcmProjectId)) return null;
  if (device.apnsTopic !== undefined && !isString(device.apnsTopic)) return null;
  if (device.sandbox !== undefined && typeof device.sandbox !== "boolean") return null;
  const webpush = device.webpush as { [key: string]: unknown } | undefined;
  if (webpush !== undefined && (!webpush || typeof webpush !== "object" || !isString(webpush.p256dh) || !isString(webpush.auth))) return null;
  if (!isString(caller.number) || !isString(caller.name) || !isString(message.proxy)) return null;
  if (typeof message.ringsUntilMs !== "number") return null;
  if (message.purpose !== undefined && message.purpose !== "call" && message.purpose !== "call-ended") return null;
  if (message.endReason !== undefined && message.endReason !== "cancelled" && message.endReason !== "answered-elsewhere") return null;
  const request: PushRequest = {
    type: "push",
    callRef: message.callRef,
    callId: message.callId,
    aor: message.aor,
    device: { instance: device.instance, appId: device.appId, provider: device.provider, token: device.token },
    caller: { number: caller.number, name: caller.name },
    proxy: message.proxy,
    ringsUntilMs: message.ringsUntilMs,
  };
  if (isString(message.registrationToken)) request.registrationToken = message.registrationToken;
  if (isString(message.accountRef)) request.accountRef = message.accountRef;
  if (device.pushKind !== undefined) request.device.pushKind = device.pushKind;
  if (device.fcmProjectId !== undefined) request.device.fcmProjectId = device.fcmProjectId as string;
  if (device.apnsTopic !== undefined) request.device.apnsTopic = device.apnsTopic as string;
  if (webpush !== undefined) request.device.webpush = { p256dh: webpush.p256dh as string, auth: webpush.auth as string };
  if (device.sandbox === true) request.device.sandbox = true;
  if (message.purpose !== undefined) request.purpose = message.purpose;
  if (message.endReason !== undefined) request.endReason = message.endReason;
  return request;
}

/** A StatsReport's numbers only (anything else in `values` is left out); null without id or values. */
function parseStatsReport(message: { [key: string]: unknown }): StatsReport | null {
  const values = message.values as { [key: string]: unknown } | undefined;
  if (typeof message.id !== "number" || !values || typeof values !== "object" || typeof message.helperConnections !== "number") return null;
  const report: StatsReport = { type: "stats", id: message.id, values: {}, helperConnections: message.helperConnections };
  for (const key in values) {
    if (Object.prototype.hasOwnProperty.call(values, key) && typeof values[key] === "number" && isFinite(values[key] as number)) report.values[key] = values[key] as number;
  }
  return report;
}
