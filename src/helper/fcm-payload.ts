// The FCM HTTP v1 message for one push: data-only (the app builds its own call UI), `android.priority: HIGH`
// (a ringing call is what high priority is for), `android.ttl` = the call's remaining ring time, every data
// value a string (https://firebase.google.com/docs/reference/fcm/rest/v1/projects.messages). Same logical
// fields as the APNs payload (push-content.ts).
import type { PushRequest } from "../protocol";
import { messageFields } from "./message-payload";
import { flatFields, isCallEnded, pushLifetimeSeconds } from "./push-content";
import { refreshFields } from "./refresh-payload";

/** FCM: 4096 bytes of data, keys and values included. */
export const MAX_FCM_DATA_BYTES = 4096;
/** A call-ended message ("Missed call") is worth delivering for an hour. */
const CALL_ENDED_TTL_SECONDS = 3600;

export interface FcmMessage {
  message: {
    token: string;
    data: { [key: string]: string };
    android: { priority: "HIGH"; ttl: string };
  };
}

/** `android.ttl` as FCM's Duration string: whole seconds the call still rings, at least 1 (`0` = now or never). */
export function ringTtl(request: PushRequest, nowMs: number): string {
  if (isCallEnded(request)) return `${CALL_ENDED_TTL_SECONDS}s`;
  return `${Math.max(1, Math.ceil((request.ringsUntilMs - nowMs) / 1000))}s`;
}

/**
 * The FCM message of a push. A message or refresh push is a data message too, HIGH priority (a normal one waits
 * for Doze's maintenance window: the binding would expire first, the message would wait hours), kept until the
 * message's retention ends or the binding expires (message-payload.ts, refresh-payload.ts).
 */
export function buildFcmMessage(request: PushRequest, nowMs: number): FcmMessage {
  if (request.purpose === "message" || request.purpose === "refresh") {
    const data = request.purpose === "message" ? messageFields(request, nowMs) : refreshFields(request, nowMs);
    return {
      message: {
        token: request.device.token,
        data,
        android: { priority: "HIGH", ttl: `${pushLifetimeSeconds(request, nowMs)}s` },
      },
    };
  }
  return {
    message: {
      token: request.device.token,
      data: flatFields(request, nowMs),
      android: { priority: "HIGH", ttl: ringTtl(request, nowMs) },
    },
  };
}

/** The bytes FCM counts against its 4096-byte limit: every data key and value. */
export function fcmDataBytes(message: FcmMessage): number {
  let bytes = 0;
  for (const [key, value] of Object.entries(message.message.data))
    bytes += Buffer.byteLength(key) + Buffer.byteLength(value);
  return bytes;
}
