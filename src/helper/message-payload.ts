// What a message push says (docs/messages.md): a MESSAGE is stored for a sleeping phone and waits for its next
// REGISTER; the push tells the app so, with the sender (number and name, found as a call's caller is:
// src/plugin/caller-id.ts), the stored message's id and, with messages.previewInPush, the start of its text. Apple
// gets an alert push to an alert token (the text shows without the app's help), FCM a data message, Web Push the
// same fields as JSON. The flat fields are every provider's; the senders pick these builders by `purpose`.
import type { PushRequest } from "../protocol";
import { pushLifetimeSeconds } from "./push-content";

export const MESSAGE_EVENT = "message";
const DEFAULT_TEXT = "New message";

/** The fields every provider's message push carries (FCM data values are strings). */
export function messageFields(request: PushRequest, nowMs: number): { [key: string]: string } {
  const fields: { [key: string]: string } = {
    event: MESSAGE_EVENT,
    "message-id": request.messageId ?? "",
    "call-id": request.callId,
    "sender-number": request.caller.number,
    "sender-name": request.caller.name,
    proxy: request.proxy,
    utc_unix_timestamp_ms: String(Math.floor(nowMs)),
  };
  if (request.preview !== undefined) fields.preview = request.preview;
  return fields;
}

/** The alert iOS shows: the sender as title, the preview (or "New message") as body. */
export function messageAlertText(request: PushRequest): { title: string; body: string } {
  return { title: request.caller.name || request.caller.number || DEFAULT_TEXT, body: request.preview || DEFAULT_TEXT };
}

export interface ApnsMessagePayload {
  aps: { alert: { title: string; body: string }; sound: string; "thread-id": string };
  [field: string]: unknown;
}

/** The body of an APNs alert push for a stored message; `thread-id` groups a sender's messages on the device. */
export function buildApnsMessagePayload(request: PushRequest, nowMs: number): ApnsMessagePayload {
  const thread = request.caller.number || request.caller.name || MESSAGE_EVENT;
  return {
    aps: { alert: messageAlertText(request), sound: "default", "thread-id": thread },
    ...messageFields(request, nowMs),
  };
}

/** Web Push for a message: `normal` urgency (RFC 8030 §5.3: "incoming chat message"), kept until retention ends. */
export function webPushMessageHeaders(request: PushRequest, nowMs: number): { ttl: string; urgency: "normal" } {
  return { ttl: String(pushLifetimeSeconds(request, nowMs)), urgency: "normal" };
}
