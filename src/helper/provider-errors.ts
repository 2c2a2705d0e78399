// Every stable error code of the helper, and what an APNs answer or a transport failure means for the push.
// Callers and tests match on codes, never on message text. ERROR_CODES is the `Code | Meaning | What to do`
// table the README lists. Actions follow Apple's "Handling notification responses from APNs":
// https://developer.apple.com/documentation/usernotifications/handling-notification-responses-from-apns
import type { PushOutcome } from "../protocol";

export const ERROR_CODES = {
  PUSHER_ERR_CONFIG: {
    meaning: "The configuration file is invalid; the message names the key.",
    action: "Fix that key in pusher.json and restart.",
  },
  PUSHER_ERR_NO_APP: {
    meaning: "No credentials are configured for the device's app id and provider.",
    action: "Add apps.<appId>.apple to pusher.json, spelled exactly as the app sends its app-id.",
  },
  PUSHER_ERR_FCM_NOT_CONFIGURED: {
    meaning: "The device asked for a Firebase push, which this helper does not send yet.",
    action: "None for now; Firebase support comes in a later version.",
  },
  PUSHER_ERR_CALL_ENDED: {
    meaning: "The call had stopped ringing before the push could be sent, so none was sent.",
    action: "None if rare; if frequent, the helper is overloaded or timers.pushWaitMs is too short.",
  },
  PUSHER_ERR_APNS_UNREGISTERED: {
    meaning: "APNs 410 Unregistered/ExpiredToken: the token is no longer valid for the app; it is dropped.",
    action: "None: the app registers a new token when it runs again.",
  },
  PUSHER_ERR_APNS_BAD_DEVICE_TOKEN: {
    meaning: "APNs 400 BadDeviceToken: the token is invalid, often a sandbox token sent to production (or the reverse); it is dropped.",
    action: "Check that apps.<appId>.apple.host matches the app's build (sandbox or production).",
  },
  PUSHER_ERR_APNS_TOKEN_NOT_FOR_TOPIC: {
    meaning: "APNs 400 DeviceTokenNotForTopic: the token belongs to another app or is not a PushKit token; it is dropped.",
    action: "Check the app sends its PushKit (VoIP) token and the app id matches its bundle id.",
  },
  PUSHER_ERR_APNS_CREDENTIALS: {
    meaning: "APNs refused the certificate (403, or the TLS handshake), or the certificate file cannot be read; tokens are kept.",
    action: "Check apps.<appId>.apple.certificateFile: readable, unencrypted PEM with key, not expired, VoIP-enabled, right environment.",
  },
  PUSHER_ERR_APNS_SERVER_UNTRUSTED: {
    meaning: "The APNs server's TLS certificate could not be verified.",
    action: "Check apps.<appId>.apple.host and the system CA store (or NODE_EXTRA_CA_CERTS for a private CA).",
  },
  PUSHER_ERR_APNS_THROTTLED: {
    meaning: "APNs 429: too many pushes to this device token.",
    action: "Retried once while the call rings; if frequent, look for a client that calls in a loop.",
  },
  PUSHER_ERR_APNS_UNAVAILABLE: {
    meaning: "APNs 500/503: APNs had an internal error or is shutting down.",
    action: "Retried once while the call rings; see https://developer.apple.com/system-status/ if it persists.",
  },
  PUSHER_ERR_APNS_TIMEOUT: {
    meaning: "APNs gave no answer in time; the push may or may not have been delivered.",
    action: "Check the network path to APNs (TCP 443) from this host.",
  },
  PUSHER_ERR_APNS_CONNECTION: {
    meaning: "The connection to APNs failed or closed before the answer.",
    action: "Check DNS and the network path to APNs (TCP 443) from this host.",
  },
  PUSHER_ERR_APNS_REJECTED: {
    meaning: "APNs rejected the request (another 4xx, e.g. BadTopic, PayloadTooLarge); the token is kept.",
    action: "Read the reason in the log line; usually a configuration or payload problem.",
  },
  PUSHER_ERR_LINK_FRAME: {
    meaning: "A malformed or oversized (> 1 MiB) netstring frame came from Kamailio; the connection was dropped and reopened.",
    action: "Check that evapi runs with netstring_format=1 and nothing else writes to its port.",
  },
  PUSHER_ERR_BAD_MESSAGE: {
    meaning: "A frame from Kamailio was not a valid plugin message; it was ignored.",
    action: "Check that the plugin and the helper come from the same release.",
  },
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

/** An error the helper raises itself, carrying a stable code. */
export class PusherError extends Error {
  constructor(readonly code: ErrorCode, message: string) {
    super(message);
    this.name = "PusherError";
  }
}

/** What one attempt's result means: the outcome reported to Kamailio, and whether to drop the token or retry. */
export interface Classification {
  outcome: PushOutcome;
  code?: ErrorCode;
  dropToken: boolean;
  retry: boolean;
}

const SENT: Classification = { outcome: "sent", dropToken: false, retry: false };

function failed(code: ErrorCode, options: { dropToken?: boolean; retry?: boolean } = {}): Classification {
  return { outcome: "failed", code, dropToken: options.dropToken === true, retry: options.retry === true };
}

/** Classifies an APNs HTTP answer: its `:status` and the `reason` of its JSON body. */
export function classifyApnsResponse(status: number, reason?: string): Classification {
  if (status === 200) return SENT;
  if (status === 410) return failed("PUSHER_ERR_APNS_UNREGISTERED", { dropToken: true });
  if (status === 400 && reason === "BadDeviceToken") return failed("PUSHER_ERR_APNS_BAD_DEVICE_TOKEN", { dropToken: true });
  if (status === 400 && reason === "DeviceTokenNotForTopic") return failed("PUSHER_ERR_APNS_TOKEN_NOT_FOR_TOPIC", { dropToken: true });
  // The connection went idle on APNs' side: the request was not processed, a new connection will take it.
  if (status === 400 && reason === "IdleTimeout") return failed("PUSHER_ERR_APNS_CONNECTION", { retry: true });
  // Every 403 reason is about the provider's credentials (certificate, or JWT with token auth), never the token.
  if (status === 403) return failed("PUSHER_ERR_APNS_CREDENTIALS");
  if (status === 429) return failed("PUSHER_ERR_APNS_THROTTLED", { retry: true });
  if (status >= 500 && status <= 599) return failed("PUSHER_ERR_APNS_UNAVAILABLE", { retry: true });
  return failed("PUSHER_ERR_APNS_REJECTED");
}

// OpenSSL alerts the server sends when it refuses our client certificate, e.g. ERR_SSL_TLSV1_ALERT_UNKNOWN_CA,
// ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE, ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED.
const CLIENT_CERTIFICATE_REFUSED = /ALERT_(BAD_CERTIFICATE|UNSUPPORTED_CERTIFICATE|CERTIFICATE_|UNKNOWN_CA|ACCESS_DENIED)/;
// Node/OpenSSL codes for a server certificate we cannot verify.
const SERVER_UNTRUSTED = new Set([
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_GET_ISSUER_CERT",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "CERT_HAS_EXPIRED",
  "CERT_NOT_YET_VALID",
  "CERT_UNTRUSTED",
  "CERT_REVOKED",
  "ERR_TLS_CERT_ALTNAME_INVALID",
]);

/** The `code`s along an error's `cause` chain: Node reports a failed connection to a pending stream as
 * ERR_HTTP2_STREAM_CANCEL with the TLS or socket error as its cause. */
function errorCodes(error: unknown): string[] {
  const codes: string[] = [];
  for (let current = error, depth = 0; current && typeof current === "object" && depth < 5; depth++) {
    if ("code" in current) codes.push(String((current as { code: unknown }).code));
    current = (current as { cause?: unknown }).cause;
  }
  return codes;
}

/**
 * Classifies a failure without an HTTP answer: our own PusherErrors (timeout, unreadable certificate), TLS
 * errors, and connection errors. Timeouts and connection errors are retryable: the push may not have gone out.
 */
export function classifyTransportError(error: unknown): Classification {
  if (error instanceof PusherError) {
    const retry = error.code === "PUSHER_ERR_APNS_TIMEOUT" || error.code === "PUSHER_ERR_APNS_CONNECTION";
    return failed(error.code, { retry });
  }
  const codes = errorCodes(error);
  if (codes.some((code) => CLIENT_CERTIFICATE_REFUSED.test(code))) return failed("PUSHER_ERR_APNS_CREDENTIALS");
  // A certificate file that is not a usable PEM key pair (ERR_OSSL_PEM_NO_START_LINE, key mismatch, ...).
  if (codes.some((code) => code.startsWith("ERR_OSSL_"))) return failed("PUSHER_ERR_APNS_CREDENTIALS");
  if (codes.some((code) => SERVER_UNTRUSTED.has(code))) return failed("PUSHER_ERR_APNS_SERVER_UNTRUSTED");
  return failed("PUSHER_ERR_APNS_CONNECTION", { retry: true });
}
