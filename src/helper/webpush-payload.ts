// What a Web Push message for one push says (RFC 8030), as apns-payload.ts and fcm-payload.ts do for APNs and
// FCM: the plaintext, the same flat fields as FCM's data (push-content.ts) as one JSON object, before its RFC 8291
// encryption; and the headers that are about the call: `TTL` = the call's remaining ring time, `Urgency: high`,
// `Topic` = a digest of the call id, so a call-ended message replaces an undelivered ringing one (RFC 8030 §5.4).
// A subscription known without keys (RFC 8599 carries only the endpoint) gets no plaintext at all: webpush-sender.ts.
import { createHash } from "node:crypto";
import type { PushRequest } from "../protocol";
import { messageFields, webPushMessageHeaders } from "./message-payload";
import { flatFields, isCallEnded } from "./push-content";
import { refreshFields, webPushRefreshHeaders } from "./refresh-payload";
import { ENCRYPTION_OVERHEAD_BYTES } from "./webpush-encryption";

/** RFC 8030 §7.2: push services must accept 4096-byte bodies; the encryption takes its share. */
export const MAX_WEBPUSH_PLAINTEXT_BYTES = 4096 - ENCRYPTION_OVERHEAD_BYTES;
/** A call-ended message ("Missed call") is worth delivering for an hour. */
const CALL_ENDED_TTL_SECONDS = 3600;

/** The headers of a Web Push message that depend on the call (VAPID and encryption headers are the sender's). */
export interface WebPushCallHeaders {
  ttl: string;
  urgency: "high";
  topic: string;
}

/** A Web Push topic (≤ 32 URL-safe characters, RFC 8030 §5.4) naming the call. */
export function callTopic(callId: string): string {
  return createHash("sha256").update(callId).digest("base64url").slice(0, 32);
}

/** `TTL` in whole seconds: the call's remaining ring time, at least 1 (`0` = now or never); an hour once it ended. */
export function webPushTtlSeconds(request: PushRequest, nowMs: number): number {
  if (isCallEnded(request)) return CALL_ENDED_TTL_SECONDS;
  return Math.max(1, Math.ceil((request.ringsUntilMs - nowMs) / 1000));
}

export function webPushCallHeaders(request: PushRequest, nowMs: number): WebPushCallHeaders {
  return { ttl: String(webPushTtlSeconds(request, nowMs)), urgency: "high", topic: callTopic(request.callId) };
}

/** The headers of a push's Web Push message that depend on what it says: a call's, a message's or a refresh's. */
export function webPushHeaders(request: PushRequest, nowMs: number): { ttl: string; urgency: string; topic?: string } {
  if (request.purpose === "message") return webPushMessageHeaders(request, nowMs);
  if (request.purpose === "refresh") return webPushRefreshHeaders(request, nowMs);
  return webPushCallHeaders(request, nowMs);
}

/** The plaintext the sender encrypts: the push's flat fields as JSON. `nowMs` is the send time (tests fix it). */
export function buildWebPushPayload(request: PushRequest, nowMs: number): string {
  if (request.purpose === "message") return JSON.stringify(messageFields(request, nowMs));
  if (request.purpose === "refresh") return JSON.stringify(refreshFields(request, nowMs));
  return JSON.stringify(flatFields(request, nowMs));
}
