import { describe, expect, it } from "vitest";
import {
  classifyApnsResponse,
  classifyFcmResponse,
  classifyOAuthResponse,
  classifyTransportError,
  classifyWebPushResponse,
  PusherError,
  retryAfterMs,
  TransportError,
} from "../../src/helper/provider-errors";
import { ERROR_CODES } from "../../src/errors";

// The policy in one word per row: drop, retry (backoff|now|once), alarm (credentials), refresh+alarm, give up.
function action(classification: ReturnType<typeof classifyApnsResponse>): string {
  if (classification.outcome === "sent") return "sent";
  if (classification.dropToken) return "drop";
  if (classification.refresh)
    return classification.credentials ? "refresh-then-alarm" : `refresh-then-retry-${classification.retry}`;
  if (classification.credentials) return "alarm";
  if (classification.retry !== "none") return `retry-${classification.retry}`;
  return "give-up";
}

describe("classifyApnsResponse (Apple: Handling notification responses from APNs)", () => {
  it.each([
    [200, undefined, "sent", undefined],
    [410, "Unregistered", "drop", "PUSHER_ERR_APNS_UNREGISTERED"],
    [410, "ExpiredToken", "drop", "PUSHER_ERR_APNS_UNREGISTERED"],
    [400, "BadDeviceToken", "drop", "PUSHER_ERR_APNS_BAD_DEVICE_TOKEN"],
    // Our topic did not fit the token: a configuration error, never a reason to drop it (issue 12).
    [400, "DeviceTokenNotForTopic", "give-up", "PUSHER_ERR_APNS_TOKEN_NOT_FOR_TOPIC"],
    [400, "IdleTimeout", "refresh-then-retry-now", "PUSHER_ERR_APNS_CONNECTION"],
    [400, "BadTopic", "give-up", "PUSHER_ERR_APNS_REJECTED"],
    [400, "MissingTopic", "give-up", "PUSHER_ERR_APNS_REJECTED"],
    [400, "PayloadEmpty", "give-up", "PUSHER_ERR_APNS_REJECTED"],
    [400, undefined, "give-up", "PUSHER_ERR_APNS_REJECTED"],
    [403, "ExpiredProviderToken", "refresh-then-alarm", "PUSHER_ERR_APNS_CREDENTIALS"],
    [403, "InvalidProviderToken", "refresh-then-alarm", "PUSHER_ERR_APNS_CREDENTIALS"],
    [403, "UnrelatedKeyIdInToken", "refresh-then-alarm", "PUSHER_ERR_APNS_CREDENTIALS"],
    [403, "BadCertificate", "alarm", "PUSHER_ERR_APNS_CREDENTIALS"],
    [403, "BadCertificateEnvironment", "alarm", "PUSHER_ERR_APNS_CREDENTIALS"],
    [403, "MissingProviderToken", "alarm", "PUSHER_ERR_APNS_CREDENTIALS"],
    [403, "BadEnvironmentKeyIdInToken", "alarm", "PUSHER_ERR_APNS_CREDENTIALS"],
    [403, "Forbidden", "give-up", "PUSHER_ERR_APNS_REJECTED"],
    // A 403 that does not prove our certificate or key bad never holds the app's pushes.
    [403, "SomeReasonAppleAddsLater", "give-up", "PUSHER_ERR_APNS_REJECTED"],
    [403, undefined, "give-up", "PUSHER_ERR_APNS_REJECTED"],
    [404, "BadPath", "give-up", "PUSHER_ERR_APNS_REJECTED"],
    [405, "MethodNotAllowed", "give-up", "PUSHER_ERR_APNS_REJECTED"],
    [413, "PayloadTooLarge", "give-up", "PUSHER_ERR_APNS_REJECTED"],
    [429, "TooManyRequests", "retry-backoff", "PUSHER_ERR_APNS_THROTTLED"],
    [429, "TooManyProviderTokenUpdates", "retry-backoff", "PUSHER_ERR_APNS_THROTTLED"],
    [500, "InternalServerError", "retry-backoff", "PUSHER_ERR_APNS_UNAVAILABLE"],
    [503, "ServiceUnavailable", "retry-backoff", "PUSHER_ERR_APNS_UNAVAILABLE"],
    [503, "Shutdown", "retry-backoff", "PUSHER_ERR_APNS_UNAVAILABLE"],
  ] as const)("%i %s → %s %s", (status, reason, expected, code) => {
    const classification = classifyApnsResponse(status, reason);
    expect(action(classification)).toBe(expected);
    expect(classification.code).toBe(code);
  });

  it("never drops a token for a retryable or credentials answer", () => {
    for (const status of [200, 400, 403, 404, 405, 410, 413, 429, 500, 503]) {
      for (const reason of ["BadDeviceToken", "Unregistered", "Shutdown", "ExpiredProviderToken", undefined]) {
        const classification = classifyApnsResponse(status, reason);
        if (classification.dropToken)
          expect([classification.retry, classification.credentials]).toEqual(["none", false]);
      }
    }
  });
});

function fcmBody(status: string, errorCode?: string, message = "scripted") {
  return {
    error: {
      code: 0,
      message,
      status,
      details: errorCode ? [{ "@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", errorCode }] : [],
    },
  };
}

describe("classifyFcmResponse (FCM HTTP v1 ErrorCode)", () => {
  it.each([
    [200, { name: "projects/p/messages/1" }, "sent", undefined],
    [404, fcmBody("NOT_FOUND", "UNREGISTERED"), "drop", "PUSHER_ERR_FCM_UNREGISTERED"],
    [403, fcmBody("PERMISSION_DENIED", "SENDER_ID_MISMATCH"), "drop", "PUSHER_ERR_FCM_SENDER_ID_MISMATCH"],
    [
      400,
      fcmBody("INVALID_ARGUMENT", "INVALID_ARGUMENT", "The registration token is not a valid FCM registration token"),
      "drop",
      "PUSHER_ERR_FCM_INVALID_TOKEN",
    ],
    [
      400,
      fcmBody("INVALID_ARGUMENT", undefined, "Invalid value at 'message.data[0].value' (TYPE_STRING), 12"),
      "give-up",
      "PUSHER_ERR_FCM_REJECTED",
    ],
    [429, fcmBody("RESOURCE_EXHAUSTED", "QUOTA_EXCEEDED"), "retry-backoff", "PUSHER_ERR_FCM_THROTTLED"],
    [500, fcmBody("INTERNAL", "INTERNAL"), "retry-backoff", "PUSHER_ERR_FCM_UNAVAILABLE"],
    [503, fcmBody("UNAVAILABLE", "UNAVAILABLE"), "retry-backoff", "PUSHER_ERR_FCM_UNAVAILABLE"],
    [401, fcmBody("UNAUTHENTICATED"), "refresh-then-alarm", "PUSHER_ERR_FCM_CREDENTIALS"],
    [401, fcmBody("UNAUTHENTICATED", "THIRD_PARTY_AUTH_ERROR"), "alarm", "PUSHER_ERR_FCM_CREDENTIALS"],
    [
      403,
      fcmBody("PERMISSION_DENIED", undefined, "The caller does not have permission"),
      "alarm",
      "PUSHER_ERR_FCM_CREDENTIALS",
    ],
    [404, fcmBody("NOT_FOUND"), "give-up", "PUSHER_ERR_FCM_REJECTED"],
  ] as const)("%i %j → %s %s", (status, body, expected, code) => {
    const classification = classifyFcmResponse(status, body);
    expect(action(classification)).toBe(expected);
    expect(classification.code).toBe(code);
  });

  it("proves nothing against the credentials with a 403 or THIRD_PARTY_AUTH_ERROR on a project the device named", () => {
    // FCM answers PERMISSION_DENIED for a project the service account does not own: that push fails, no alarm.
    for (const [status, body] of [
      [403, fcmBody("PERMISSION_DENIED", undefined, "The caller does not have permission")],
      [401, fcmBody("UNAUTHENTICATED", "THIRD_PARTY_AUTH_ERROR")],
    ] as const) {
      const classification = classifyFcmResponse(status, body, false);
      expect(action(classification)).toBe("give-up");
      expect(classification.code).toBe("PUSHER_ERR_FCM_REJECTED");
    }
    // A refused access token is ours whatever the project.
    expect(action(classifyFcmResponse(401, fcmBody("UNAUTHENTICATED"), false))).toBe("refresh-then-alarm");
  });

  it("treats an OAuth invalid_grant as a credentials alarm and a 5xx as retryable", () => {
    expect(action(classifyOAuthResponse(400, "invalid_grant"))).toBe("alarm");
    expect(action(classifyOAuthResponse(401, "invalid_client"))).toBe("alarm");
    expect(action(classifyOAuthResponse(503))).toBe("retry-backoff");
  });
});

describe("classifyWebPushResponse (RFC 8030 §5, RFC 8292 §4)", () => {
  it.each([
    [201, "sent", undefined],
    [404, "drop", "PUSHER_ERR_WEBPUSH_GONE"],
    [410, "drop", "PUSHER_ERR_WEBPUSH_GONE"],
    [401, "alarm", "PUSHER_ERR_WEBPUSH_CREDENTIALS"],
    [403, "alarm", "PUSHER_ERR_WEBPUSH_CREDENTIALS"],
    [413, "give-up", "PUSHER_ERR_WEBPUSH_REJECTED"],
    [429, "retry-backoff", "PUSHER_ERR_WEBPUSH_THROTTLED"],
    [503, "retry-backoff", "PUSHER_ERR_WEBPUSH_UNAVAILABLE"],
  ] as const)("%i → %s %s", (status, expected, code) => {
    const classification = classifyWebPushResponse(status);
    expect(action(classification)).toBe(expected);
    expect(classification.code).toBe(code);
  });
});

function errorWithCode(code: string, message = code): Error {
  return Object.assign(new Error(message), { code });
}

describe("classifyTransportError", () => {
  it.each([
    [new TransportError("timeout", "no answer"), "apple", "PUSHER_ERR_APNS_TIMEOUT", "retry-once"],
    [new TransportError("unprocessed", "REFUSED_STREAM"), "apple", "PUSHER_ERR_APNS_CONNECTION", "retry-now"],
    [new TransportError("connection", "stream closed"), "apple", "PUSHER_ERR_APNS_CONNECTION", "retry-backoff"],
    [new TransportError("timeout", "no answer"), "firebase", "PUSHER_ERR_FCM_TIMEOUT", "retry-once"],
    [new TransportError("unprocessed", "GOAWAY"), "webpush", "PUSHER_ERR_WEBPUSH_CONNECTION", "retry-now"],
    [
      new PusherError("PUSHER_ERR_APNS_CREDENTIALS", "cannot read certificateFile"),
      "apple",
      "PUSHER_ERR_APNS_CREDENTIALS",
      "alarm",
    ],
    [new PusherError("PUSHER_ERR_FCM_LEGACY_KEY", "legacy"), "firebase", "PUSHER_ERR_FCM_LEGACY_KEY", "alarm"],
    [new PusherError("PUSHER_ERR_BAD_DEVICE", "no keys"), "webpush", "PUSHER_ERR_BAD_DEVICE", "give-up"],
    [errorWithCode("ECONNREFUSED"), "apple", "PUSHER_ERR_APNS_CONNECTION", "retry-backoff"],
    [errorWithCode("ECONNRESET"), "firebase", "PUSHER_ERR_FCM_CONNECTION", "retry-backoff"],
    [
      errorWithCode("ERR_HTTP2_STREAM_ERROR", "Stream closed with error code NGHTTP2_REFUSED_STREAM"),
      "apple",
      "PUSHER_ERR_APNS_CONNECTION",
      "retry-now",
    ],
    [errorWithCode("ERR_SSL_TLSV1_ALERT_UNKNOWN_CA"), "apple", "PUSHER_ERR_APNS_CREDENTIALS", "alarm"],
    [errorWithCode("ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE"), "apple", "PUSHER_ERR_APNS_CREDENTIALS", "alarm"],
    [errorWithCode("ERR_OSSL_PEM_NO_START_LINE"), "apple", "PUSHER_ERR_APNS_CREDENTIALS", "alarm"],
    [errorWithCode("UNABLE_TO_VERIFY_LEAF_SIGNATURE"), "apple", "PUSHER_ERR_APNS_SERVER_UNTRUSTED", "give-up"],
    [errorWithCode("ERR_TLS_CERT_ALTNAME_INVALID"), "webpush", "PUSHER_ERR_WEBPUSH_SERVER_UNTRUSTED", "give-up"],
    [new Error("no code at all"), "apple", "PUSHER_ERR_APNS_CONNECTION", "retry-backoff"],
    // Node reports a failed connection to a pending stream as a cancel whose cause is the real error.
    [
      Object.assign(errorWithCode("ERR_HTTP2_STREAM_CANCEL"), { cause: errorWithCode("SELF_SIGNED_CERT_IN_CHAIN") }),
      "apple",
      "PUSHER_ERR_APNS_SERVER_UNTRUSTED",
      "give-up",
    ],
    [
      Object.assign(errorWithCode("ERR_HTTP2_STREAM_CANCEL"), { cause: errorWithCode("ECONNREFUSED") }),
      "apple",
      "PUSHER_ERR_APNS_CONNECTION",
      "retry-backoff",
    ],
  ] as const)("%s (%s) → %s %s", (error, provider, code, expected) => {
    const classification = classifyTransportError(error, provider);
    expect(classification.code).toBe(code);
    expect(action(classification)).toBe(expected);
  });
});

describe("retryAfterMs", () => {
  it("reads delay-seconds and HTTP-dates, and ignores anything else", () => {
    const nowMs = Date.parse("2026-01-01T00:00:00Z");
    expect(retryAfterMs("7", nowMs)).toBe(7000);
    expect(retryAfterMs("Thu, 01 Jan 2026 00:00:05 GMT", nowMs)).toBe(5000);
    expect(retryAfterMs("soon", nowMs)).toBeUndefined();
    expect(retryAfterMs(undefined, nowMs)).toBeUndefined();
  });
});

describe("ERROR_CODES", () => {
  it("lists every code the classifiers can return", () => {
    const codes = new Set<string>();
    for (const status of [200, 400, 401, 403, 404, 410, 413, 429, 500, 503]) {
      for (const reason of [
        "BadDeviceToken",
        "DeviceTokenNotForTopic",
        "IdleTimeout",
        "Unregistered",
        "ExpiredProviderToken",
        "Forbidden",
        undefined,
      ]) {
        codes.add(classifyApnsResponse(status, reason).code ?? "");
      }
      for (const errorCode of [
        "UNREGISTERED",
        "SENDER_ID_MISMATCH",
        "QUOTA_EXCEEDED",
        "THIRD_PARTY_AUTH_ERROR",
        "INTERNAL",
        undefined,
      ]) {
        codes.add(classifyFcmResponse(status, fcmBody("X", errorCode)).code ?? "");
      }
      codes.add(classifyWebPushResponse(status).code ?? "");
      codes.add(classifyOAuthResponse(status).code ?? "");
    }
    for (const provider of ["apple", "firebase", "webpush"] as const) {
      for (const error of [
        errorWithCode("ECONNRESET"),
        errorWithCode("ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE"),
        errorWithCode("CERT_HAS_EXPIRED"),
        new TransportError("timeout", "t"),
      ]) {
        codes.add(classifyTransportError(error, provider).code ?? "");
      }
    }
    codes.delete("");
    for (const code of codes) expect(ERROR_CODES).toHaveProperty(code);
  });
});
