import { describe, expect, it } from "vitest";
import { classifyApnsResponse, classifyTransportError, ERROR_CODES, PusherError } from "../../src/helper/provider-errors";

describe("classifyApnsResponse", () => {
  it.each([
    // status, reason, outcome, code, dropToken, retry
    [200, undefined, "sent", undefined, false, false],
    [410, "Unregistered", "failed", "PUSHER_ERR_APNS_UNREGISTERED", true, false],
    [410, "ExpiredToken", "failed", "PUSHER_ERR_APNS_UNREGISTERED", true, false],
    [400, "BadDeviceToken", "failed", "PUSHER_ERR_APNS_BAD_DEVICE_TOKEN", true, false],
    [400, "DeviceTokenNotForTopic", "failed", "PUSHER_ERR_APNS_TOKEN_NOT_FOR_TOPIC", true, false],
    [400, "IdleTimeout", "failed", "PUSHER_ERR_APNS_CONNECTION", false, true],
    [400, "BadTopic", "failed", "PUSHER_ERR_APNS_REJECTED", false, false],
    [400, "MissingTopic", "failed", "PUSHER_ERR_APNS_REJECTED", false, false],
    [400, "PayloadEmpty", "failed", "PUSHER_ERR_APNS_REJECTED", false, false],
    [400, undefined, "failed", "PUSHER_ERR_APNS_REJECTED", false, false],
    [403, "BadCertificate", "failed", "PUSHER_ERR_APNS_CREDENTIALS", false, false],
    [403, "BadCertificateEnvironment", "failed", "PUSHER_ERR_APNS_CREDENTIALS", false, false],
    [403, "Forbidden", "failed", "PUSHER_ERR_APNS_CREDENTIALS", false, false],
    [403, "MissingProviderToken", "failed", "PUSHER_ERR_APNS_CREDENTIALS", false, false],
    [404, "BadPath", "failed", "PUSHER_ERR_APNS_REJECTED", false, false],
    [405, "MethodNotAllowed", "failed", "PUSHER_ERR_APNS_REJECTED", false, false],
    [413, "PayloadTooLarge", "failed", "PUSHER_ERR_APNS_REJECTED", false, false],
    [429, "TooManyRequests", "failed", "PUSHER_ERR_APNS_THROTTLED", false, true],
    [500, "InternalServerError", "failed", "PUSHER_ERR_APNS_UNAVAILABLE", false, true],
    [503, "ServiceUnavailable", "failed", "PUSHER_ERR_APNS_UNAVAILABLE", false, true],
    [503, "Shutdown", "failed", "PUSHER_ERR_APNS_UNAVAILABLE", false, true],
  ] as const)("%i %s → %s %s drop=%s retry=%s", (status, reason, outcome, code, dropToken, retry) => {
    expect(classifyApnsResponse(status, reason)).toEqual({ outcome, code, dropToken, retry });
  });

  it("never drops a token for a retryable answer, nor retries a dropped one", () => {
    for (const status of [200, 400, 403, 404, 405, 410, 413, 429, 500, 503]) {
      for (const reason of ["BadDeviceToken", "Unregistered", "Shutdown", undefined]) {
        const classification = classifyApnsResponse(status, reason);
        expect(classification.dropToken && classification.retry).toBe(false);
      }
    }
  });
});

function errorWithCode(code: string, message = code): Error {
  return Object.assign(new Error(message), { code });
}

describe("classifyTransportError", () => {
  it.each([
    [new PusherError("PUSHER_ERR_APNS_TIMEOUT", "no answer"), "PUSHER_ERR_APNS_TIMEOUT", true],
    [new PusherError("PUSHER_ERR_APNS_CONNECTION", "stream closed"), "PUSHER_ERR_APNS_CONNECTION", true],
    [new PusherError("PUSHER_ERR_APNS_CREDENTIALS", "cannot read certificateFile"), "PUSHER_ERR_APNS_CREDENTIALS", false],
    [errorWithCode("ECONNREFUSED"), "PUSHER_ERR_APNS_CONNECTION", true],
    [errorWithCode("ECONNRESET"), "PUSHER_ERR_APNS_CONNECTION", true],
    [errorWithCode("ENOTFOUND"), "PUSHER_ERR_APNS_CONNECTION", true],
    [errorWithCode("ERR_HTTP2_STREAM_ERROR", "Stream closed with error code NGHTTP2_REFUSED_STREAM"), "PUSHER_ERR_APNS_CONNECTION", true],
    [errorWithCode("ERR_SSL_TLSV1_ALERT_UNKNOWN_CA"), "PUSHER_ERR_APNS_CREDENTIALS", false],
    [errorWithCode("ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE"), "PUSHER_ERR_APNS_CREDENTIALS", false],
    [errorWithCode("ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED"), "PUSHER_ERR_APNS_CREDENTIALS", false],
    [errorWithCode("ERR_OSSL_PEM_NO_START_LINE"), "PUSHER_ERR_APNS_CREDENTIALS", false],
    [errorWithCode("UNABLE_TO_VERIFY_LEAF_SIGNATURE"), "PUSHER_ERR_APNS_SERVER_UNTRUSTED", false],
    [errorWithCode("ERR_TLS_CERT_ALTNAME_INVALID"), "PUSHER_ERR_APNS_SERVER_UNTRUSTED", false],
    [new Error("no code at all"), "PUSHER_ERR_APNS_CONNECTION", true],
    // Node reports a failed connection to a pending stream as a cancel whose cause is the real error.
    [Object.assign(errorWithCode("ERR_HTTP2_STREAM_CANCEL"), { cause: errorWithCode("SELF_SIGNED_CERT_IN_CHAIN") }), "PUSHER_ERR_APNS_SERVER_UNTRUSTED", false],
    [Object.assign(errorWithCode("ERR_HTTP2_STREAM_CANCEL"), { cause: errorWithCode("ECONNREFUSED") }), "PUSHER_ERR_APNS_CONNECTION", true],
  ])("%s → %s retry=%s", (error, code, retry) => {
    expect(classifyTransportError(error)).toEqual({ outcome: "failed", code, dropToken: false, retry });
  });
});

describe("ERROR_CODES", () => {
  it("gives every code the PUSHER_ERR_ prefix, a meaning and an action", () => {
    for (const [code, entry] of Object.entries(ERROR_CODES)) {
      expect(code).toMatch(/^PUSHER_ERR_[A-Z0-9_]+$/);
      expect(entry.meaning.length).toBeGreaterThan(10);
      expect(entry.action.length).toBeGreaterThan(3);
    }
  });

  it("lists every code the classifiers can return", () => {
    const statuses = [200, 400, 403, 404, 410, 413, 429, 500, 503];
    const reasons = ["BadDeviceToken", "DeviceTokenNotForTopic", "IdleTimeout", "Unregistered", undefined];
    for (const status of statuses) {
      for (const reason of reasons) {
        const { code } = classifyApnsResponse(status, reason);
        if (code) expect(ERROR_CODES).toHaveProperty(code);
      }
    }
    for (const code of ["ECONNRESET", "ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE", "CERT_HAS_EXPIRED", "ERR_OSSL_X"]) {
      expect(ERROR_CODES).toHaveProperty(classifyTransportError(errorWithCode(code)).code!);
    }
  });
});
