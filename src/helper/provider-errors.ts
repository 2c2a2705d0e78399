// Every stable error code of the helper, and what a provider's answer or a transport failure means for the push.
// Callers and tests match on codes, never on message text. ERROR_CODES is the `Code | Meaning | What to do`
// table docs/errors.md lists. Actions follow one policy for every provider:
//   drop        the token is dead: the plugin removes the record and answers the waiting call at once;
//   retry       backoff + Retry-After, only while the call still rings;
//   credentials alarm the operator (once a minute per app), keep the tokens;
//   give up     anything else: log it, keep the token.
// APNs: https://developer.apple.com/documentation/usernotifications/handling-notification-responses-from-apns
// FCM: https://firebase.google.com/docs/reference/fcm/rest/v1/ErrorCode  Web Push: RFC 8030 §5, RFC 8292 §4.
import http2 from "node:http2";
import type { PushOutcome, PushProvider } from "../protocol";

export const ERROR_CODES = {
  PUSHER_ERR_CONFIG: {
    meaning: "The configuration file is invalid; the message names the key.",
    action: "Fix that key in pusher.json and restart.",
  },
  PUSHER_ERR_NO_APP: {
    meaning: "No credentials are configured for the device's app id and provider.",
    action: "Add the app with `pusher apps add-apple|add-apple-token|add-firebase|add-webpush`, spelled exactly as the app sends its app-id.",
  },
  PUSHER_ERR_APP_DISABLED: {
    meaning: "The device's app is configured with `enabled: false` (Kazoo's per-app switch); no push was sent.",
    action: "Set apps.<appId>.enabled to true (or remove the key) to push to it again.",
  },
  PUSHER_ERR_BAD_DEVICE: {
    meaning: "The device record lacks what its provider needs (e.g. a Web Push endpoint that is not https or not in the app's endpointHosts), or it is a call-ended message for a Web Push subscription without keys; no push was sent.",
    action: "The phone must register again with complete push parameters.",
  },
  PUSHER_ERR_CALL_ENDED: {
    meaning: "The call had stopped ringing before the push could be sent, so none was sent.",
    action: "None if rare; if frequent, the helper is overloaded or timers.pushWaitMs is too short.",
  },
  PUSHER_ERR_APNS_UNREGISTERED: {
    meaning: "APNs 410 Unregistered/ExpiredToken: the token is no longer valid for the app; it is dropped, unless the phone registered it again after the time APNs gives.",
    action: "None: the app registers a new token when it runs again.",
  },
  PUSHER_ERR_APNS_BAD_DEVICE_TOKEN: {
    meaning: "APNs 400 BadDeviceToken at the host of the token's environment. The push is then tried once at the other host (sandboxHost or host): a token accepted there is kept (logged: the phone registered a development token as production or the reverse); one refused there too is dropped; any other answer keeps it.",
    action: "None when dropped. When logged as the other environment's token, have the app register with pn-provider=apns.dev for development builds (or without it for App Store builds).",
  },
  PUSHER_ERR_APNS_TOKEN_NOT_FOR_TOPIC: {
    meaning: "APNs 400 DeviceTokenNotForTopic: the topic we chose (from the app id or pn-param) does not fit the token: another app's bundle, or a PushKit token pushed as an alert (or the reverse). A configuration error, logged as one; the device is kept.",
    action: "Check the app id (or pn-param) matches the app's bundle id, and that the phone sends its PushKit (VoIP) token for calls.",
  },
  PUSHER_ERR_APNS_CREDENTIALS: {
    meaning: "APNs refused the credentials (403 BadCertificate, InvalidProviderToken, ExpiredProviderToken after one refresh, or the TLS handshake), or the certificate/key file cannot be read; tokens are kept.",
    action: "Check apps.<appId>.apple: certificate readable, not expired, VoIP-enabled, right environment; or key file, keyId and teamId as in the Apple developer account, and the host's clock.",
  },
  PUSHER_ERR_APNS_SERVER_UNTRUSTED: {
    meaning: "The APNs server's TLS certificate could not be verified.",
    action: "Check apps.<appId>.apple.host and the system CA store (or NODE_EXTRA_CA_CERTS for a private CA).",
  },
  PUSHER_ERR_APNS_THROTTLED: {
    meaning: "APNs 429: too many pushes to this device token (or too many provider token updates).",
    action: "Retried with backoff while the call rings; if frequent, look for a client that calls in a loop.",
  },
  PUSHER_ERR_APNS_UNAVAILABLE: {
    meaning: "APNs 500/503: APNs had an internal error or is shutting down.",
    action: "Retried with backoff while the call rings; see https://developer.apple.com/system-status/ if it persists.",
  },
  PUSHER_ERR_APNS_TIMEOUT: {
    meaning: "APNs gave no answer in time; the push may or may not have been delivered.",
    action: "Retried once while the call rings; check the network path to APNs (TCP 443) from this host.",
  },
  PUSHER_ERR_APNS_CONNECTION: {
    meaning: "The connection to APNs failed, was reset or closed before the answer.",
    action: "Retried while the call rings; check DNS and the network path to APNs (TCP 443) from this host.",
  },
  PUSHER_ERR_APNS_REJECTED: {
    meaning: "APNs rejected the request (another 4xx, e.g. BadTopic, Forbidden); the token is kept.",
    action: "Read the reason in the log line; usually a configuration or payload problem.",
  },
  PUSHER_ERR_FCM_UNREGISTERED: {
    meaning: "FCM 404 UNREGISTERED: the app instance is gone or its token expired; it is dropped.",
    action: "None: the app registers a new token when it runs again.",
  },
  PUSHER_ERR_FCM_SENDER_ID_MISMATCH: {
    meaning: "FCM 403 SENDER_ID_MISMATCH: the token belongs to another Firebase project; it is dropped.",
    action: "Check the app's service account is from the project the app registers with.",
  },
  PUSHER_ERR_FCM_INVALID_TOKEN: {
    meaning: "FCM 400 INVALID_ARGUMENT: the registration token is not a valid FCM token; it is dropped.",
    action: "None, unless the phone's app sends something other than its FCM token.",
  },
  PUSHER_ERR_FCM_CREDENTIALS: {
    meaning: "FCM or Google's OAuth refused the service account (401 after one refresh, 403 PERMISSION_DENIED, THIRD_PARTY_AUTH_ERROR, invalid_grant), or its file cannot be read; tokens are kept.",
    action: "Check apps.<appId>.firebase.serviceAccountFile: a current key of a service account with the Firebase Messaging role, and the host's clock.",
  },
  PUSHER_ERR_FCM_LEGACY_KEY: {
    meaning: "A legacy FCM server key was given where a service account JSON is expected; Google shut the legacy API down in 2024.",
    action: "Firebase console → Project settings → Service accounts → Generate new private key; then `pusher apps add-firebase <app-id> <that file>`.",
  },
  PUSHER_ERR_FCM_THROTTLED: {
    meaning: "FCM 429 QUOTA_EXCEEDED: the project's or the device's message rate was exceeded.",
    action: "Retried with backoff and Retry-After while the call rings.",
  },
  PUSHER_ERR_FCM_UNAVAILABLE: {
    meaning: "FCM or the OAuth endpoint answered 500/503 (INTERNAL, UNAVAILABLE).",
    action: "Retried with backoff and Retry-After while the call rings; see https://status.firebase.google.com/ if it persists.",
  },
  PUSHER_ERR_FCM_REJECTED: {
    meaning: "FCM rejected the request (another 4xx, e.g. INVALID_ARGUMENT about the message, NOT_FOUND for a wrong project id); the token is kept.",
    action: "Read the reason in the log line; usually a configuration problem (project id).",
  },
  PUSHER_ERR_FCM_TIMEOUT: {
    meaning: "FCM or the OAuth endpoint gave no answer in time; the push may or may not have been delivered.",
    action: "Retried once while the call rings; check the network path to fcm.googleapis.com and oauth2.googleapis.com.",
  },
  PUSHER_ERR_FCM_CONNECTION: {
    meaning: "The connection to FCM or the OAuth endpoint failed, was reset or closed before the answer.",
    action: "Retried while the call rings; check DNS and the network path to Google (TCP 443).",
  },
  PUSHER_ERR_FCM_SERVER_UNTRUSTED: {
    meaning: "The FCM or OAuth server's TLS certificate could not be verified.",
    action: "Check apps.<appId>.firebase.host, the service account's token_uri and the system CA store.",
  },
  PUSHER_ERR_WEBPUSH_GONE: {
    meaning: "The Web Push service answered 404/410: the subscription is gone; it is dropped.",
    action: "None: the browser subscribes again when the web app runs.",
  },
  PUSHER_ERR_WEBPUSH_CREDENTIALS: {
    meaning: "The Web Push service refused the VAPID signature (401/403), or the VAPID key file cannot be read; subscriptions are kept.",
    action: "Check apps.<appId>.webpush: the key is the one whose public key the web app subscribed with, subject is mailto: or https:, the host's clock.",
  },
  PUSHER_ERR_WEBPUSH_THROTTLED: {
    meaning: "The Web Push service answered 429.",
    action: "Retried with backoff and Retry-After while the call rings.",
  },
  PUSHER_ERR_WEBPUSH_UNAVAILABLE: {
    meaning: "The Web Push service answered 5xx.",
    action: "Retried with backoff and Retry-After while the call rings.",
  },
  PUSHER_ERR_WEBPUSH_REJECTED: {
    meaning: "The Web Push service rejected the request (another 4xx, e.g. 413); the subscription is kept.",
    action: "Read the reason in the log line.",
  },
  PUSHER_ERR_WEBPUSH_TIMEOUT: {
    meaning: "The Web Push service gave no answer in time; the push may or may not have been delivered.",
    action: "Retried once while the call rings; check the network path to the push service.",
  },
  PUSHER_ERR_WEBPUSH_CONNECTION: {
    meaning: "The connection to the Web Push service failed, was reset or closed before the answer.",
    action: "Retried while the call rings; check DNS and the network path to the push service.",
  },
  PUSHER_ERR_WEBPUSH_SERVER_UNTRUSTED: {
    meaning: "The Web Push service's TLS certificate could not be verified.",
    action: "Check the system CA store.",
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

/**
 * A request that got no HTTP answer. `unprocessed`: the server provably did not process it (RST_STREAM
 * REFUSED_STREAM, or a stream above GOAWAY's last-stream-id), so it is safe to send again at once;
 * `timeout`: no answer in time, it may have been delivered; `connection`: the connection failed or was reset.
 */
export class TransportError extends Error {
  constructor(readonly kind: "unprocessed" | "timeout" | "connection", message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "TransportError";
  }
}

/**
 * How to go on after one attempt: `backoff` = retry with exponential backoff + jitter (or Retry-After);
 * `now` = retry at once (not processed); `once` = at most one more attempt (ambiguous: may have been delivered).
 */
export type RetryRule = "none" | "backoff" | "now" | "once";

/** What one attempt's result means for the push. */
export interface Classification {
  outcome: PushOutcome;
  code?: ErrorCode;
  dropToken: boolean;
  retry: RetryRule;
  /** A credentials problem: alarm the operator, keep the token. */
  credentials: boolean;
  /** Renew the credential (JWT, OAuth token) and reconnect, then try once more before it counts as credentials. */
  refresh: boolean;
}

const SENT: Classification = { outcome: "sent", dropToken: false, retry: "none", credentials: false, refresh: false };

function failed(code: ErrorCode, options: { dropToken?: boolean; retry?: RetryRule; credentials?: boolean; refresh?: boolean } = {}): Classification {
  return {
    outcome: "failed",
    code,
    dropToken: options.dropToken === true,
    retry: options.retry ?? "none",
    credentials: options.credentials === true,
    refresh: options.refresh === true,
  };
}

/** Classifies an APNs HTTP answer: its `:status` and the `reason` of its JSON body. */
export function classifyApnsResponse(status: number, reason?: string): Classification {
  if (status === 200) return SENT;
  if (status === 410) return failed("PUSHER_ERR_APNS_UNREGISTERED", { dropToken: true });
  if (status === 400 && reason === "BadDeviceToken") return failed("PUSHER_ERR_APNS_BAD_DEVICE_TOKEN", { dropToken: true });
  // The topic is ours (app id or pn-param), so a token that does not fit it proves nothing against the token.
  if (status === 400 && reason === "DeviceTokenNotForTopic") return failed("PUSHER_ERR_APNS_TOKEN_NOT_FOR_TOPIC");
  // The connection went idle on APNs' side: the request was not processed, a new connection will take it.
  if (status === 400 && reason === "IdleTimeout") return failed("PUSHER_ERR_APNS_CONNECTION", { retry: "now", refresh: true });
  if (status === 403) {
    // A stale or refused JWT, or a key unrelated to this connection's first push: new JWT + new connection,
    // one more try; the same answer again is a credentials problem (clock skew, revoked key).
    if (reason === "ExpiredProviderToken" || reason === "InvalidProviderToken" || reason === "UnrelatedKeyIdInToken") {
      return failed("PUSHER_ERR_APNS_CREDENTIALS", { credentials: true, refresh: true });
    }
    // Apple: "don't retry"; not a credentials problem either.
    if (reason === "Forbidden") return failed("PUSHER_ERR_APNS_REJECTED");
    return failed("PUSHER_ERR_APNS_CREDENTIALS", { credentials: true });
  }
  if (status === 429) return failed("PUSHER_ERR_APNS_THROTTLED", { retry: "backoff" });
  if (status >= 500 && status <= 599) return failed("PUSHER_ERR_APNS_UNAVAILABLE", { retry: "backoff" });
  return failed("PUSHER_ERR_APNS_REJECTED");
}

/** FCM's actionable word: `details[].errorCode` of the FcmError detail, else `error.status` (firebase-admin's rule). */
export function fcmErrorCode(body: unknown): { errorCode?: string; status?: string; message?: string } {
  const error = (body as { error?: { status?: unknown; message?: unknown; details?: unknown } } | null)?.error;
  if (!error || typeof error !== "object") return {};
  const result: { errorCode?: string; status?: string; message?: string } = {};
  if (typeof error.status === "string") result.status = error.status;
  if (typeof error.message === "string") result.message = error.message;
  if (Array.isArray(error.details)) {
    for (const detail of error.details as { [key: string]: unknown }[]) {
      if (detail && String(detail["@type"] ?? "").endsWith("google.firebase.fcm.v1.FcmError") && typeof detail.errorCode === "string") {
        result.errorCode = detail.errorCode;
      }
    }
  }
  return result;
}

/** Classifies an FCM HTTP v1 answer (FCM's ErrorCode page, above). */
export function classifyFcmResponse(status: number, body: unknown): Classification {
  if (status === 200) return SENT;
  const { errorCode, status: errorStatus, message } = fcmErrorCode(body);
  if (errorCode === "UNREGISTERED") return failed("PUSHER_ERR_FCM_UNREGISTERED", { dropToken: true });
  if (errorCode === "SENDER_ID_MISMATCH") return failed("PUSHER_ERR_FCM_SENDER_ID_MISMATCH", { dropToken: true });
  if (errorCode === "INVALID_ARGUMENT" && /registration token/i.test(message ?? "")) {
    return failed("PUSHER_ERR_FCM_INVALID_TOKEN", { dropToken: true });
  }
  if (errorCode === "THIRD_PARTY_AUTH_ERROR") return failed("PUSHER_ERR_FCM_CREDENTIALS", { credentials: true });
  if (errorCode === "QUOTA_EXCEEDED" || status === 429) return failed("PUSHER_ERR_FCM_THROTTLED", { retry: "backoff" });
  if (errorCode === "UNAVAILABLE" || errorCode === "INTERNAL" || (status >= 500 && status <= 599)) {
    return failed("PUSHER_ERR_FCM_UNAVAILABLE", { retry: "backoff" });
  }
  // Our own access token was refused: fetch a new one once, then it is a credentials problem.
  if (status === 401) return failed("PUSHER_ERR_FCM_CREDENTIALS", { credentials: true, refresh: true });
  // PERMISSION_DENIED without SENDER_ID_MISMATCH: IAM role or project, never the device's token.
  if (status === 403 || errorStatus === "PERMISSION_DENIED") return failed("PUSHER_ERR_FCM_CREDENTIALS", { credentials: true });
  return failed("PUSHER_ERR_FCM_REJECTED");
}

/** Classifies an answer of Google's OAuth token endpoint that was not a token (RFC 6749 §5.2). */
export function classifyOAuthResponse(status: number, error?: string): Classification {
  if (status >= 500 && status <= 599) return failed("PUSHER_ERR_FCM_UNAVAILABLE", { retry: "backoff" });
  if (status === 429) return failed("PUSHER_ERR_FCM_THROTTLED", { retry: "backoff" });
  // invalid_grant (clock skew, revoked key), invalid_client, unauthorized_client, …
  void error;
  return failed("PUSHER_ERR_FCM_CREDENTIALS", { credentials: true });
}

/** Classifies a Web Push service's answer (RFC 8030 §5, RFC 8292 §4). */
export function classifyWebPushResponse(status: number): Classification {
  if (status === 200 || status === 201 || status === 202) return SENT;
  if (status === 404 || status === 410) return failed("PUSHER_ERR_WEBPUSH_GONE", { dropToken: true });
  if (status === 401 || status === 403) return failed("PUSHER_ERR_WEBPUSH_CREDENTIALS", { credentials: true });
  if (status === 429) return failed("PUSHER_ERR_WEBPUSH_THROTTLED", { retry: "backoff" });
  if (status >= 500 && status <= 599) return failed("PUSHER_ERR_WEBPUSH_UNAVAILABLE", { retry: "backoff" });
  return failed("PUSHER_ERR_WEBPUSH_REJECTED");
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

const PROVIDER_PREFIX: { [provider in PushProvider]: "APNS" | "FCM" | "WEBPUSH" } = { apple: "APNS", firebase: "FCM", webpush: "WEBPUSH" };

/** The provider's variant of a transport code: `transportCode("firebase", "TIMEOUT")` → PUSHER_ERR_FCM_TIMEOUT. */
export function transportCode(provider: PushProvider, what: "TIMEOUT" | "CONNECTION" | "SERVER_UNTRUSTED" | "CREDENTIALS"): ErrorCode {
  return `PUSHER_ERR_${PROVIDER_PREFIX[provider]}_${what}` as ErrorCode;
}

/**
 * Classifies a failure without an HTTP answer: our own PusherErrors (unreadable credentials), TransportErrors
 * (timeout, refused stream, GOAWAY, reset), TLS errors and socket errors.
 */
export function classifyTransportError(error: unknown, provider: PushProvider = "apple"): Classification {
  if (error instanceof PusherError) {
    const credentials = error.code.endsWith("_CREDENTIALS") || error.code === "PUSHER_ERR_FCM_LEGACY_KEY";
    const retry: RetryRule = error.code.endsWith("_TIMEOUT") ? "once" : error.code.endsWith("_CONNECTION") || error.code.endsWith("_UNAVAILABLE") ? "backoff" : "none";
    return failed(error.code, { retry, credentials });
  }
  const codes = errorCodes(error);
  if (codes.some((code) => CLIENT_CERTIFICATE_REFUSED.test(code))) return failed(transportCode(provider, "CREDENTIALS"), { credentials: true });
  // A certificate file that is not a usable PEM key pair (ERR_OSSL_PEM_NO_START_LINE, key mismatch, ...).
  if (codes.some((code) => code.startsWith("ERR_OSSL_"))) return failed(transportCode(provider, "CREDENTIALS"), { credentials: true });
  if (codes.some((code) => SERVER_UNTRUSTED.has(code))) return failed(transportCode(provider, "SERVER_UNTRUSTED"));
  if (error instanceof TransportError) {
    if (error.kind === "timeout") return failed(transportCode(provider, "TIMEOUT"), { retry: "once" });
    if (error.kind === "unprocessed") return failed(transportCode(provider, "CONNECTION"), { retry: "now" });
  }
  if (codes.includes("ERR_HTTP2_STREAM_ERROR") && /REFUSED_STREAM/.test(String((error as Error)?.message))) {
    return failed(transportCode(provider, "CONNECTION"), { retry: "now" });
  }
  return failed(transportCode(provider, "CONNECTION"), { retry: "backoff" });
}

/** `Retry-After` as milliseconds from `nowMs`: delay-seconds or an HTTP-date (RFC 9110 §10.2.3); undefined if absent or unreadable. */
export function retryAfterMs(value: string | string[] | undefined, nowMs: number): number | undefined {
  const text = Array.isArray(value) ? value[0] : value;
  if (text === undefined || text.trim() === "") return undefined;
  if (/^\s*\d+\s*$/.test(text)) return Number(text) * 1000;
  const date = Date.parse(text);
  return Number.isNaN(date) ? undefined : Math.max(0, date - nowMs);
}

export const REFUSED_STREAM = http2.constants.NGHTTP2_REFUSED_STREAM;
