// What a push says, whatever the provider: the logical fields of Kazoo's call push
// (applications/pusher/src/modules/pm_apple.erl of https://github.com/2600hz/kazoo), the text an alert shows,
// and the `event` of a call-ended push. Every provider's payload is built from these, and trimmed here to the
// provider's size limit: a long caller name must shorten the push, never get it rejected.
import type { PushRequest } from "../protocol";

/** `event` of a call-ended push, by end reason. */
export const CALL_ENDED_EVENTS = { cancelled: "call-cancelled", "answered-elsewhere": "answered-elsewhere" } as const;

/** Whether the push rings a call (VoIP where possible) or tells the phone a call is over (alert only). */
export function isCallEnded(request: PushRequest): boolean {
  return request.purpose === "call-ended";
}

/** "<number> - <name>", Kazoo's `loc-args` entry. */
export function callerText(request: PushRequest): string {
  const { number, name } = request.caller;
  if (!name) return number;
  if (!number) return name;
  return `${number} - ${name}`;
}

/** The alert title and body: "Incoming call" / "Missed call from <caller>" / "Answered elsewhere". */
export function alertText(request: PushRequest): { title: string; body: string } {
  const caller = request.caller.name || request.caller.number || "unknown caller";
  if (!isCallEnded(request)) return { title: "Incoming call", body: callerText(request) || caller };
  if (request.endReason === "answered-elsewhere")
    return { title: "Answered elsewhere", body: `Call from ${caller} answered elsewhere` };
  return { title: "Missed call", body: `Missed call from ${caller}` };
}

/**
 * The logical fields as a flat string map (FCM `data`, Web Push JSON): Kazoo's keys, `Call-ID` as Kazoo's FCM
 * sent it, `loc-args` JSON-encoded (FCM v1 data values must be strings), and for call-ended pushes `event`,
 * `title` and `body`.
 */
export function flatFields(request: PushRequest, nowMs: number): { [key: string]: string } {
  const fields: { [key: string]: string } = {
    "call-id": request.callId,
    "Call-ID": request.callId,
    "caller-id-number": request.caller.number,
    "caller-id-name": request.caller.name,
    proxy: request.proxy,
    utc_unix_timestamp_ms: String(Math.floor(nowMs)),
    "loc-key": "IC_SIL",
    "loc-args": JSON.stringify([callerText(request)]),
    sound: "ring.caf",
  };
  if (request.registrationToken) fields["registration-token"] = request.registrationToken;
  if (request.accountRef) fields["account-ref"] = request.accountRef;
  if (isCallEnded(request)) {
    const text = alertText(request);
    fields.event = CALL_ENDED_EVENTS[request.endReason ?? "cancelled"];
    fields.title = text.title;
    fields.body = text.body;
  }
  return fields;
}

/** FCM's longest TTL: 4 weeks (https://firebase.google.com/docs/cloud-messaging/concept-options#ttl). */
const MAX_LIFETIME_SECONDS = 28 * 24 * 3600;

/**
 * How long a provider keeps an undelivered message or refresh push: until `expiresAtMs` (the message's retention
 * ends, the binding expires), at least 1 s (`0` means now or never), at most FCM's 4 weeks.
 */
export function pushLifetimeSeconds(request: PushRequest, nowMs: number): number {
  const seconds = Math.ceil(((request.expiresAtMs ?? nowMs) - nowMs) / 1000);
  return Math.min(MAX_LIFETIME_SECONDS, Math.max(1, seconds));
}

/** Cuts `text` to at most `bytes` UTF-8 bytes on a character boundary, marking the cut with "…". */
function cutToBytes(text: string, bytes: number): string {
  if (Buffer.byteLength(text) <= bytes) return text;
  if (bytes < 4) return "";
  const characters = Array.from(text);
  let result = "";
  let used = 0;
  for (const character of characters) {
    const size = Buffer.byteLength(character);
    if (used + size > bytes - 3) break;
    result += character;
    used += size;
  }
  return result + "…";
}

/** The free-text fields fitToSize cuts, in order (module constants: fitToSize runs once per push). */
const TRIMMABLE: ((r: PushRequest, keepBytes: number) => PushRequest)[] = [
  (r, keep) => ({ ...r, caller: { ...r.caller, name: cutToBytes(r.caller.name, keep) } }),
  (r, keep) => ({ ...r, caller: { ...r.caller, number: cutToBytes(r.caller.number, keep) } }),
  (r, keep) => ({ ...r, proxy: cutToBytes(r.proxy, keep) }),
  (r, keep) => (r.registrationToken ? { ...r, registrationToken: cutToBytes(r.registrationToken, keep) } : r),
  (r, keep) => (r.accountRef ? { ...r, accountRef: cutToBytes(r.accountRef, keep) } : r),
];
const FIELD_BYTES = [
  (r: PushRequest) => Buffer.byteLength(r.caller.name),
  (r: PushRequest) => Buffer.byteLength(r.caller.number),
  (r: PushRequest) => Buffer.byteLength(r.proxy),
  (r: PushRequest) => Buffer.byteLength(r.registrationToken ?? ""),
  (r: PushRequest) => Buffer.byteLength(r.accountRef ?? ""),
];

/**
 * Builds with `build` and, while the result's `size` is over `limitBytes`, rebuilds from a request whose free-text
 * fields (caller name, then number, then proxy, then the registration and account references) are cut by the
 * shortest cut that fits. The call id is never cut: the app needs it whole to match the call.
 */
export function fitToSize<T>(
  request: PushRequest,
  build: (request: PushRequest) => T,
  limitBytes: number,
  size: (built: T) => number,
): { value: T; trimmed: boolean } {
  let current = request;
  let value = build(current);
  let trimmed = false;
  for (let index = 0; index < TRIMMABLE.length && size(value) > limitBytes; index++) {
    // A field can appear several times in a payload (the name in loc-args and caller-id-name, JSON escapes):
    // find by bisection the longest cut that fits; if none does, the field is emptied and the next one cut.
    const before = current;
    let low = 0;
    let high = FIELD_BYTES[index](before);
    while (low < high) {
      const middle = Math.ceil((low + high) / 2);
      if (size(build(TRIMMABLE[index](before, middle))) <= limitBytes) low = middle;
      else high = middle - 1;
    }
    current = TRIMMABLE[index](before, low);
    value = build(current);
    trimmed = true;
  }
  return { value, trimmed };
}
