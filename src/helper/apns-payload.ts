// What an incoming-call push says to the app, in the shape apps built for Kazoo already parse
// (Kazoo pm_apple.erl; see /work/shared/reference/kazoo-pusher.md §8), and the APNs topic it goes to.
import type { PushRequest } from "../protocol";

export interface ApnsPayload {
  aps: {
    alert: { "loc-key": string; "loc-args": string[] };
    sound: string;
    "call-id": string;
  };
  "call-id": string;
  "caller-id-number": string;
  "caller-id-name": string;
  proxy: string;
  /** Epoch milliseconds as a decimal string, as Kazoo sends it. */
  utc_unix_timestamp_ms: string;
}

// Localisation key of Kazoo's incoming-call alert (Linphone/Flexisip convention); apps define it in
// Localizable.strings. PushKit ignores `alert` but Kazoo apps may read it.
const INCOMING_CALL_LOC_KEY = "IC_SIL";
const RING_SOUND = "ring.caf";

/** The APNs body for one held call. `nowMs` is the send time (a parameter so tests can fix it). */
export function buildApnsPayload(request: PushRequest, nowMs: number): ApnsPayload {
  return {
    aps: {
      alert: { "loc-key": INCOMING_CALL_LOC_KEY, "loc-args": [`${request.caller.number} - ${request.caller.name}`] },
      sound: RING_SOUND,
      "call-id": request.callId,
    },
    "call-id": request.callId,
    "caller-id-number": request.caller.number,
    "caller-id-name": request.caller.name,
    proxy: request.proxy,
    utc_unix_timestamp_ms: String(Math.floor(nowMs)),
  };
}

const ENVIRONMENT_SUFFIX = /\.(dev|prod)$/;
const VOIP_SUFFIX = ".voip";

/**
 * The `apns-topic` for a VoIP push to `appId`: Kazoo's rule (a trailing `.dev` or `.prod` names the environment
 * and is removed) plus the `.voip` suffix APNs requires for push type voip
 * (https://developer.apple.com/documentation/usernotifications/sending-notification-requests-to-apns).
 * An app id already ending in `.voip` is kept as is: Kazoo sent no suffix, so Kazoo operators spelled it in the
 * app id (`com.acme.phone.voip.dev` → `com.acme.phone.voip`); a bundle id that itself ends in `.voip` is written
 * with the suffix twice, as it had to be under Kazoo.
 */
export function apnsTopic(appId: string): string {
  const bundleOrTopic = appId.replace(ENVIRONMENT_SUFFIX, "");
  return bundleOrTopic.endsWith(VOIP_SUFFIX) ? bundleOrTopic : bundleOrTopic + VOIP_SUFFIX;
}
