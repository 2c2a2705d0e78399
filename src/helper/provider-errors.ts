// What a provider's answer or a transport failure means for the push: its stable code (src/errors.ts, the one
// catalog, which docs/errors.md lists) and what to do next. Actions follow one policy for every provider:
//   drop        the token is dead: the plugin removes the record and answers the waiting call at once;
//   retry       backoff + Retry-After, only while the call still rings;
//   credentials alarm the operator (once a minute per app), keep the tokens;
//   give up     anything else: log it, keep the token.
// APNs: https://developer.apple.com/documentation/usernotifications/handling-notification-responses-from-apns
// FCM: https://firebase.google.com/docs/reference/fcm/rest/v1/ErrorCode  Web Push: RFC 8030 §5, RFC 8292 §4.
import http2 from "node:http2";
import type { ErrorCode } from "../errors";
import type { PushOutcome, PushProvider } from "../protocol";

/** An error the helper raises itself, carrying a stable code. */
export class PusherError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
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
  constructor(
    readonly kind: "unprocessed" | "timeout" | "connection",
    message: string,
    options?: { cause?: unknown },
  ) {
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

function failed(
  code: ErrorCode,
  options: { dropToken?: boolean; retry?: RetryRule; credentials?: boolean; refresh?: boolean } = {},
): Classification {
  return {
    outcome: "failed",
    code,
    dropToken: options.dropToken === true,
    retry: options.retry ?? "none",
    credentials: options.credentials === true,
    refresh: options.refresh === true,
  };
}

/** 403 reasons that prove our certificate or key bad without a refresh (Apple's error table, above). */
const PROVEN_APNS_CREDENTIALS_FAULTS = [
  "BadCertificate",
  "BadCertificateEnvironment",
  "MissingProviderToken",
  "BadEnvironmentKeyIdInToken",
  "BadEnvironmentKeyInToken",
];

/** Classifies an APNs HTTP answer: its `:status` and the `reason` of its JSON body. */
export function classifyApnsResponse(status: number, reason?: string): Classification {
  if (status === 200) return SENT;
  if (status === 410) return failed("PUSHER_ERR_APNS_UNREGISTERED", { dropToken: true });
  if (status === 400 && reason === "BadDeviceToken")
    return failed("PUSHER_ERR_APNS_BAD_DEVICE_TOKEN", { dropToken: true });
  // The topic is ours (app id or pn-param), so a token that does not fit it proves nothing against the token.
  if (status === 400 && reason === "DeviceTokenNotForTopic") return failed("PUSHER_ERR_APNS_TOKEN_NOT_FOR_TOPIC");
  // The connection went idle on APNs' side: the request was not processed, a new connection will take it.
  if (status === 400 && reason === "IdleTimeout")
    return failed("PUSHER_ERR_APNS_CONNECTION", { retry: "now", refresh: true });
  if (status === 403) {
    // A stale or refused JWT, or a key unrelated to this connection's first push: new JWT + new connection,
    // one more try; the same answer again is a credentials problem (clock skew, revoked key).
    if (reason === "ExpiredProviderToken" || reason === "InvalidProviderToken" || reason === "UnrelatedKeyIdInToken") {
      return failed("PUSHER_ERR_APNS_CREDENTIALS", { credentials: true, refresh: true });
    }
    // The certificate, or the key's environment: ours.
    if (reason !== undefined && PROVEN_APNS_CREDENTIALS_FAULTS.indexOf(reason) >= 0)
      return failed("PUSHER_ERR_APNS_CREDENTIALS", { credentials: true });
    // Forbidden (Apple: "don't retry") or a reason Apple may add: it proves nothing against the credentials, and a
    // credentials hold stops the whole app.
    return failed("PUSHER_ERR_APNS_REJECTED");
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
      if (
        detail &&
        String(detail["@type"] ?? "").endsWith("google.firebase.fcm.v1.FcmError") &&
        typeof detail.errorCode === "string"
      ) {
        result.errorCode = detail.errorCode;
      }
    }
  }
  return result;
}

/**
 * Classifies an FCM HTTP v1 answer (FCM's ErrorCode page, above). `ownProject`: the push went to the service
 * account's own project; a project the device named (RFC 8599 pn-param) can make FCM answer 403 or
 * THIRD_PARTY_AUTH_ERROR without anything being wrong with our credentials, so there it only fails that push.
 */
export function classifyFcmResponse(status: number, body: unknown, ownProject = true): Classification {
  if (status === 200) return SENT;
  const { errorCode, status: errorStatus, message } = fcmErrorCode(body);
  if (errorCode === "UNREGISTERED") return failed("PUSHER_ERR_FCM_UNREGISTERED", { dropToken: true });
  if (errorCode === "SENDER_ID_MISMATCH") return failed("PUSHER_ERR_FCM_SENDER_ID_MISMATCH", { dropToken: true });
  if (errorCode === "INVALID_ARGUMENT" && /registration token/i.test(message ?? "")) {
    return failed("PUSHER_ERR_FCM_INVALID_TOKEN", { dropToken: true });
  }
  if (errorCode === "THIRD_PARTY_AUTH_ERROR")
    return failed(ownProject ? "PUSHER_ERR_FCM_CREDENTIALS" : "PUSHER_ERR_FCM_REJECTED", { credentials: ownProject });
  if (errorCode === "QUOTA_EXCEEDED" || status === 429) return failed("PUSHER_ERR_FCM_THROTTLED", { retry: "backoff" });
  if (errorCode === "UNAVAILABLE" || errorCode === "INTERNAL" || (status >= 500 && status <= 599)) {
    return failed("PUSHER_ERR_FCM_UNAVAILABLE", { retry: "backoff" });
  }
  // Our own access token was refused: fetch a new one once, then it is a credentials problem.
  if (status === 401) return failed("PUSHER_ERR_FCM_CREDENTIALS", { credentials: true, refresh: true });
  // PERMISSION_DENIED without SENDER_ID_MISMATCH: IAM role or project, never the device's token. On a project the
  // device named it says nothing about the service account's rights on its own.
  if (status === 403 || errorStatus === "PERMISSION_DENIED")
    return failed(ownProject ? "PUSHER_ERR_FCM_CREDENTIALS" : "PUSHER_ERR_FCM_REJECTED", { credentials: ownProject });
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
const CLIENT_CERTIFICATE_REFUSED =
  /ALERT_(BAD_CERTIFICATE|UNSUPPORTED_CERTIFICATE|CERTIFICATE_|UNKNOWN_CA|ACCESS_DENIED)/;
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

const PROVIDER_PREFIX: { [provider in PushProvider]: "APNS" | "FCM" | "WEBPUSH" } = {
  apple: "APNS",
  firebase: "FCM",
  webpush: "WEBPUSH",
};

type TransportFailure = "TIMEOUT" | "CONNECTION" | "SERVER_UNTRUSTED" | "CREDENTIALS";

/** The provider's variant of a transport code: `transportCode("firebase", "TIMEOUT")` → PUSHER_ERR_FCM_TIMEOUT. */
export function transportCode(provider: PushProvider, what: TransportFailure): ErrorCode {
  // Typed without a cast: tsc refuses this return if the catalog lacks one provider's variant.
  const code: `PUSHER_ERR_${(typeof PROVIDER_PREFIX)[PushProvider]}_${TransportFailure}` = `PUSHER_ERR_${PROVIDER_PREFIX[provider]}_${what}`;
  return code;
}

/**
 * Classifies a failure without an HTTP answer: our own PusherErrors (unreadable credentials), TransportErrors
 * (timeout, refused stream, GOAWAY, reset), TLS errors and socket errors.
 */
export function classifyTransportError(error: unknown, provider: PushProvider = "apple"): Classification {
  if (error instanceof PusherError) {
    const credentials = error.code.endsWith("_CREDENTIALS") || error.code === "PUSHER_ERR_FCM_LEGACY_KEY";
    const retry: RetryRule = error.code.endsWith("_TIMEOUT")
      ? "once"
      : error.code.endsWith("_CONNECTION") || error.code.endsWith("_UNAVAILABLE")
        ? "backoff"
        : "none";
    return failed(error.code, { retry, credentials });
  }
  const codes = errorCodes(error);
  if (codes.some((code) => CLIENT_CERTIFICATE_REFUSED.test(code)))
    return failed(transportCode(provider, "CREDENTIALS"), { credentials: true });
  // A certificate file that is not a usable PEM key pair (ERR_OSSL_PEM_NO_START_LINE, key mismatch, ...).
  if (codes.some((code) => code.startsWith("ERR_OSSL_")))
    return failed(transportCode(provider, "CREDENTIALS"), { credentials: true });
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
