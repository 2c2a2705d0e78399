// What an incoming-call push says to the app, in the shape apps built for Kazoo already parse
// (applications/pusher/src/modules/pm_apple.erl of https://github.com/2600hz/kazoo), and the APNs topic it goes
// to.
import { appleBundleOf } from "../apple-bundle";
import type { PushRequest } from "../protocol";
import { alertText, CALL_ENDED_EVENTS, isCallEnded } from "./push-content";

export interface ApnsPayload {
  aps: {
    /** Absent in a call-ended VoIP push: it must not read as an incoming call to an app that shows `alert`. */
    alert?: { "loc-key": string; "loc-args": string[] };
    sound?: string;
    "call-id": string;
  };
  "call-id": string;
  "caller-id-number": string;
  "caller-id-name": string;
  proxy: string;
  /** Epoch milliseconds as a decimal string, as Kazoo sends it. */
  utc_unix_timestamp_ms: string;
  /** Kazoo's one-time token for the waking REGISTER (`X-Token-Reg`), when the plugin issued one. */
  "registration-token"?: string;
  /** Kazoo's account reference, only in Kazoo mode. */
  "account-ref"?: string;
  /** Only for call-ended VoIP pushes (apps.<app>.apple.callEndedVoipPush): `call-cancelled` or `answered-elsewhere`. */
  event?: string;
}

// Localisation key of Kazoo's incoming-call alert (Linphone/Flexisip convention); apps define it in
// Localizable.strings. PushKit ignores `alert` but Kazoo apps may read it.
const INCOMING_CALL_LOC_KEY = "IC_SIL";
const RING_SOUND = "ring.caf";

/**
 * The APNs body of a VoIP push: one held call, or (apps.<app>.apple.callEndedVoipPush) the notice that it ended,
 * which carries `event` and no incoming-call alert or ring. `nowMs` is the send time (tests fix it).
 */
export function buildApnsPayload(request: PushRequest, nowMs: number): ApnsPayload {
  const aps: ApnsPayload["aps"] = isCallEnded(request)
    ? { "call-id": request.callId }
    : {
        alert: { "loc-key": INCOMING_CALL_LOC_KEY, "loc-args": [`${request.caller.number} - ${request.caller.name}`] },
        sound: RING_SOUND,
        "call-id": request.callId,
      };
  const payload: ApnsPayload = {
    aps: aps,
    "call-id": request.callId,
    "caller-id-number": request.caller.number,
    "caller-id-name": request.caller.name,
    proxy: request.proxy,
    utc_unix_timestamp_ms: String(Math.floor(nowMs)),
  };
  if (request.registrationToken) payload["registration-token"] = request.registrationToken;
  if (request.accountRef) payload["account-ref"] = request.accountRef;
  if (isCallEnded(request)) payload.event = CALL_ENDED_EVENTS[request.endReason ?? "cancelled"];
  return payload;
}

/**
 * The `apns-topic` for a VoIP push to `appId`: Kazoo's rule (a trailing `.dev` or `.prod` names the environment
 * and is removed) plus the `.voip` suffix APNs requires for push type voip
 * (https://developer.apple.com/documentation/usernotifications/sending-notification-requests-to-apns).
 * An app id already ending in `.voip` keeps it once: Kazoo sent no suffix, so Kazoo operators spelled it in the
 * app id (`com.acme.phone.voip.dev` → `com.acme.phone.voip`); a bundle id that itself ends in `.voip` is written
 * with the suffix twice, as it had to be under Kazoo.
 */
export function apnsTopic(appId: string): string {
  return appleBundleOf(appId) + ".voip";
}

/**
 * The `apns-topic` for an alert push to `appId`: the bundle id, i.e. the app id without `.dev`/`.prod` and
 * without a `.voip` a Kazoo operator may have spelled into it (src/apple-bundle.ts).
 */
export function apnsAlertTopic(appId: string): string {
  return appleBundleOf(appId);
}

/** APNs body limits (sending-notification-requests-to-apns): 5 KB for VoIP, 4 KB for everything else. */
export const MAX_VOIP_PAYLOAD_BYTES = 5120;
export const MAX_ALERT_PAYLOAD_BYTES = 4096;

export interface ApnsAlertPayload {
  aps: {
    alert: { title: string; body: string };
    sound?: string;
    "thread-id": string;
  };
  "call-id": string;
  "caller-id-number": string;
  "caller-id-name": string;
  proxy: string;
  utc_unix_timestamp_ms: string;
  /** Only for call-ended pushes: `call-cancelled` or `answered-elsewhere`. */
  event?: string;
  "registration-token"?: string;
  "account-ref"?: string;
}

/**
 * The body of an alert push: to ring a device that registered only an alert token (Linphone `:remote`), or to
 * say a call is over at an alert token (a VoIP push would make iOS 13+ show a new CallKit call unless the app
 * ends it at once, which apps opt into with apple.callEndedVoipPush; Apple's PushKit rule,
 * https://developer.apple.com/documentation/pushkit/pkpushregistrydelegate/pushregistry(_:didreceiveincomingpushwith:for:completion:)).
 * The call text is in `title`/`body` so iOS shows it without the app's help; `thread-id` groups by call.
 */
export function buildApnsAlertPayload(request: PushRequest, nowMs: number): ApnsAlertPayload {
  const text = alertText(request);
  const payload: ApnsAlertPayload = {
    aps: { alert: { title: text.title, body: text.body }, "thread-id": request.callId },
    "call-id": request.callId,
    "caller-id-number": request.caller.number,
    "caller-id-name": request.caller.name,
    proxy: request.proxy,
    utc_unix_timestamp_ms: String(Math.floor(nowMs)),
  };
  if (isCallEnded(request)) payload.event = CALL_ENDED_EVENTS[request.endReason ?? "cancelled"];
  else payload.aps.sound = RING_SOUND;
  if (request.registrationToken) payload["registration-token"] = request.registrationToken;
  if (request.accountRef) payload["account-ref"] = request.accountRef;
  return payload;
}
