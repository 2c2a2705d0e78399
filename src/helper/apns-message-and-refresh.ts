// The APNs request of a message or refresh push, whose push type, priority and expiry are not a call's
// (https://developer.apple.com/documentation/usernotifications/sending-notification-requests-to-apns):
//   message  alert push to an alert token (topic <bundle>), priority 10, kept until the message's retention ends;
//   refresh  background push to an alert token (topic <bundle>): "Always use priority 5. Using priority 10 is an
//            error." (Apple, apns-push-type background), kept until the binding expires.
// No collapse id: each message is its own notification, and a background push shows nothing.
import type { PushRequest } from "../protocol";
import { buildApnsMessagePayload } from "./message-payload";
import { buildApnsRefreshPayload } from "./refresh-payload";

export interface ApnsPurposePush {
  pushType: "alert" | "background";
  priority: "10" | "5";
  /** apns-expiration: epoch seconds, "0" (now or never) without an expiry. */
  expiration: string;
  build: (request: PushRequest, nowMs: number) => object;
}

/** The APNs request parts of a message or refresh push; null for a call's pushes (apns-sender.ts builds those). */
export function apnsMessageOrRefreshPush(request: PushRequest): ApnsPurposePush | null {
  const expiration = request.expiresAtMs !== undefined ? String(Math.floor(request.expiresAtMs / 1000)) : "0";
  if (request.purpose === "message")
    return { pushType: "alert", priority: "10", expiration, build: buildApnsMessagePayload };
  if (request.purpose === "refresh")
    return { pushType: "background", priority: "5", expiration, build: buildApnsRefreshPayload };
  return null;
}
