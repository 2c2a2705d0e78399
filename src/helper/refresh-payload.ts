// What a refresh push says (RFC 8599 §5.5): nothing but "register again", sent shortly before the phone's binding
// expires (src/plugin/refresh-pushes.ts). A phone that gets any push sends a binding-refresh REGISTER (RFC 8599
// §4.2), so the payload is only `event: refresh` and the proxy to register through. Apple: a background push to an
// alert token (apns-push-type background, priority 5, aps content-available 1 and nothing the user sees: "Pushing
// background updates to your app", developer.apple.com); FCM: a data message; Web Push: the fields as JSON.
import { createHash } from "node:crypto";
import type { PushRequest } from "../protocol";
import { pushLifetimeSeconds } from "./push-content";

export const REFRESH_EVENT = "refresh";

/** The fields every provider's refresh push carries. */
export function refreshFields(request: PushRequest, nowMs: number): { [key: string]: string } {
  return { event: REFRESH_EVENT, proxy: request.proxy, utc_unix_timestamp_ms: String(Math.floor(nowMs)) };
}

export interface ApnsRefreshPayload {
  aps: { "content-available": 1 };
  [field: string]: unknown;
}

/** A background notification: `content-available` and no alert, sound or badge (Apple's rule for the type). */
export function buildApnsRefreshPayload(request: PushRequest, nowMs: number): ApnsRefreshPayload {
  return { aps: { "content-available": 1 }, ...refreshFields(request, nowMs) };
}

/**
 * Web Push for a refresh: `normal` urgency, kept until the binding expires, and a Topic per binding so that a newer
 * refresh replaces one still undelivered (RFC 8030 §5.4).
 */
export function webPushRefreshHeaders(
  request: PushRequest,
  nowMs: number,
): { ttl: string; urgency: "normal"; topic: string } {
  const topic = createHash("sha256")
    .update(`${request.aor}\n${request.device.instance}`)
    .digest("base64url")
    .slice(0, 32);
  return { ttl: String(pushLifetimeSeconds(request, nowMs)), urgency: "normal", topic };
}
