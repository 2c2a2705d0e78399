// Messages between the plugin (inside Kamailio, Duktape ES5) and the helper (Node).
// Transport: evapi netstrings over TCP on loopback; each frame is one JSON object. A connection carries nothing
// but link-challenge and link-proof frames until both sides proved the link secret (src/link-auth.ts).
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

/**
 * Why a push is sent: to ring a call, to tell a phone that showed the call that it is over, to say a MESSAGE waits
 * for the phone (docs/messages.md), or to have it refresh its binding before it expires (RFC 8599 §5.5).
 */
export type PushPurpose = "call" | "call-ended" | "message" | "refresh";
export const PUSH_PURPOSES: PushPurpose[] = ["call", "call-ended", "message", "refresh"];

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
  /** Epoch ms after which the call stops ringing: no retry may be sent after it (message, refresh: after which the
   * helper stops retrying). */
  ringsUntilMs: number;
  /** message: the stored MESSAGE's id (`caller` is its sender, `callId` its Call-ID). */
  messageId?: string;
  /** message, with messages.previewInPush: the first 100 characters of its text/plain body. */
  preview?: string;
  /** message, refresh: epoch ms when the push loses its use (the message's retention ends, the binding expires): the
   * provider keeps an undelivered push until then (apns-expiration, FCM ttl, Web Push TTL). */
  expiresAtMs?: number;
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
  /** The token that was pushed (the helper always sends it). The plugin changes nothing unless callRef, callId, aor,
   * instance and this token name a push it sent and still knows: one of a call it holds, one of a call that ended
   * since (there callRef, instance and token alone), or one for no call (src/plugin/sent-pushes.ts); with dropToken
   * the record goes only while it still holds this token (the phone may have registered a new one since). */
  token?: string;
  /** With dropToken, from APNs 410: epoch ms since when the token is invalid. A record registered after that
   * (the phone registered the token again) is kept. */
  tokenInvalidSinceMs?: number;
}

/**
 * Both ways, before anything else on a connection (src/link-auth.ts): Kamailio's challenge first, then the
 * helper's. Nonces are 32–128 lower-case hex digits.
 */
export interface LinkChallenge {
  type: "link-challenge";
  nonce: string;
}

/** Both ways: the answer to the other side's challenge, HMAC-SHA-256 hex (src/link-auth.ts linkProofText). */
export interface LinkProof {
  type: "link-proof";
  proof: string;
}

/** helper → plugin, once per connection, after the link is authenticated. */
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

export type HelperMessage = PushResult | HelperHello | StatsRequest | LinkChallenge | LinkProof;
export type PluginMessage = PushRequest | StatsReport | LinkChallenge | LinkProof;

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

/** A link-challenge or link-proof with a well-formed nonce or proof; null for any other message. */
function parseLinkMessage(message: { [key: string]: unknown }): LinkChallenge | LinkProof | null {
  if (message.type === "link-challenge")
    return isString(message.nonce) && /^[0-9a-f]{32,128}$/.test(message.nonce)
      ? { type: "link-challenge", nonce: message.nonce }
      : null;
  if (message.type === "link-proof")
    return isString(message.proof) && /^[0-9a-f]{64}$/.test(message.proof)
      ? { type: "link-proof", proof: message.proof }
      : null;
  return null;
}

/** Parses and checks a helper message; returns null for anything malformed (never throws). */
export function parseHelperMessage(text: string): HelperMessage | null {
  const message = parseObject(text);
  if (!message) return null;
  if (message.type === "link-challenge" || message.type === "link-proof") return parseLinkMessage(message);
  if (message.type === "hello") {
    return typeof message.version === "number" && typeof message.pid === "number"
      ? { type: "hello", version: message.version, pid: message.pid }
      : null;
  }
  if (message.type === "stats-request")
    return typeof message.id === "number" ? { type: "stats-request", id: message.id } : null;
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
  if (typeof invalidSince === "number" && invalidSince > 0 && invalidSince <= 8.64e15)
    result.tokenInvalidSinceMs = invalidSince;
  return result;
}

/** Parses and checks a plugin message on the helper side; returns null for anything malformed. */
export function parsePluginMessage(text: string): PluginMessage | null {
  const message = parseObject(text);
  if (message && message.type === "stats") return parseStatsReport(message);
  if (message && (message.type === "link-challenge" || message.type === "link-proof")) return parseLinkMessage(message);
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
  if (
    webpush !== undefined &&
    (!webpush || typeof webpush !== "object" || !isString(webpush.p256dh) || !isString(webpush.auth))
  )
    return null;
  if (!isString(caller.number) || !isString(caller.name) || !isString(message.proxy)) return null;
  if (typeof message.ringsUntilMs !== "number") return null;
  if (message.purpose !== undefined && PUSH_PURPOSES.indexOf(message.purpose as PushPurpose) < 0) return null;
  if (message.messageId !== undefined && !isString(message.messageId)) return null;
  if (message.preview !== undefined && !isString(message.preview)) return null;
  if (message.expiresAtMs !== undefined && typeof message.expiresAtMs !== "number") return null;
  if (
    message.endReason !== undefined &&
    message.endReason !== "cancelled" &&
    message.endReason !== "answered-elsewhere"
  )
    return null;
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
  if (webpush !== undefined)
    request.device.webpush = { p256dh: webpush.p256dh as string, auth: webpush.auth as string };
  if (device.sandbox === true) request.device.sandbox = true;
  if (message.purpose !== undefined) request.purpose = message.purpose as PushPurpose;
  if (isString(message.messageId)) request.messageId = message.messageId;
  if (isString(message.preview)) request.preview = message.preview;
  if (typeof message.expiresAtMs === "number") request.expiresAtMs = message.expiresAtMs;
  if (message.endReason !== undefined) request.endReason = message.endReason;
  return request;
}

/** A StatsReport's numbers only (anything else in `values` is left out); null without id or values. */
function parseStatsReport(message: { [key: string]: unknown }): StatsReport | null {
  const values = message.values as { [key: string]: unknown } | undefined;
  if (
    typeof message.id !== "number" ||
    !values ||
    typeof values !== "object" ||
    typeof message.helperConnections !== "number"
  )
    return null;
  const report: StatsReport = {
    type: "stats",
    id: message.id,
    values: {},
    helperConnections: message.helperConnections,
  };
  for (const key in values) {
    if (
      Object.prototype.hasOwnProperty.call(values, key) &&
      typeof values[key] === "number" &&
      isFinite(values[key] as number)
    )
      report.values[key] = values[key] as number;
  }
  return report;
}

// ----- Between Kamailio nodes of a cluster (src/plugin/cluster.ts; KDMQ requests of peer "pusher") -----

export const CLUSTER_MESSAGE_VERSION = 1;

/** A phone of `aor` registered on the sending node: the node holding or ringing a call for it delivers or forks it. */
export interface ClusterRegistration {
  v: number;
  type: "registered";
  aor: string;
  /** The device instance that registered and the push tokens its REGISTER carried (hold-call.ts RegisteringPhone). */
  instance: string;
  tokens: string[];
  /** The registering Contact URI, push params and all (the holding node's branch_route strips them). */
  contact: string;
  /** The Path the sending node stored with the binding: `<sip:node;lr;received=…>` (RFC 3327). */
  path: string;
  /** When the REGISTER reached the sending node ($TV(Sn): "<s>.<µs>"), where the wake latency starts. */
  registeredAt: string;
}

/**
 * A REGISTER of a pushed phone of `aor` failed on the sending node (RFC 8599 §5.6.2): the node holding calls pushed
 * to one of `tokens` ends them at once.
 */
export interface ClusterRegisterFailed {
  v: number;
  type: "register-failed";
  aor: string;
  tokens: string[];
  /** The code the sending node answered (or any text when its cfg did not know it), for the log. */
  code: string;
}

export type ClusterMessage = ClusterRegistration | ClusterRegisterFailed;

/** A ClusterMessage from a KDMQ body, or null when it is not one (or another version's). */
export function parseClusterMessage(text: string): ClusterMessage | null {
  const message = parseObject(text);
  if (!message || message.v !== CLUSTER_MESSAGE_VERSION || !isString(message.aor)) return null;
  const tokens = message.tokens;
  if (!(tokens instanceof Array) || !tokens.every(isString)) return null;
  if (message.type === "register-failed") {
    return {
      v: CLUSTER_MESSAGE_VERSION,
      type: "register-failed",
      aor: message.aor,
      tokens: tokens as string[],
      code: isString(message.code) ? message.code.substring(0, 32) : "",
    };
  }
  if (message.type !== "registered") return null;
  if (!isString(message.instance) || !isString(message.contact) || !isString(message.path)) return null;
  if (!/^sips?:/i.test(message.contact) || !/^\s*<sips?:[^>]+>/i.test(message.path)) return null;
  // Both go into the relayed INVITE (R-URI, Route header): no control character may split a header.
  if (/[\x00-\x1f\x7f]/.test(message.contact + message.path)) return null;
  return {
    v: CLUSTER_MESSAGE_VERSION,
    type: "registered",
    aor: message.aor,
    instance: message.instance,
    tokens: tokens as string[],
    contact: message.contact,
    path: message.path,
    registeredAt: isString(message.registeredAt) && /^\d+\.\d+$/.test(message.registeredAt) ? message.registeredAt : "",
  };
}
