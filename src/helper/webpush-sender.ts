// Sends Web Push messages (RFC 8030) to a subscription's endpoint, authenticated with VAPID (RFC 8292) and
// encrypted (RFC 8291). The device token is the endpoint URL (RFC 8599 pn-prid); its keys come with the device.
// A subscription known without keys (RFC 8599 carries only the endpoint) gets a message without payload, which
// RFC 8030 §5 allows: its push event wakes the web app, which registers and gets the call. Such a message cannot
// say "the call ended", so a call-ended push is not sent to it. What the message says (plaintext, TTL, Urgency,
// Topic) is webpush-payload.ts. One HTTP/2 session per (push service origin, VAPID key).
import { createPrivateKey, createPublicKey, type KeyObject } from "node:crypto";
import { readFileSync } from "node:fs";
import type { WebPushCredentials } from "../config";
import type { PushRequest } from "../protocol";
import { DEFAULT_WEBPUSH_ENDPOINT_HOSTS, parsedEndpointAllowed } from "../webpush-endpoint";
import { ProviderSender, type SenderOptions } from "./provider-sender";
import { signJwt } from "./jwt";
import { classifyTransportError, classifyWebPushResponse, PusherError, retryAfterMs } from "./provider-errors";
import { fitToSize, isCallEnded } from "./push-content";
import { pushDeadlineMs, sendWithRetries, type AttemptResult, type SendOutcome } from "./retry-policy";
import { encryptWebPush } from "./webpush-encryption";
import { buildWebPushPayload, MAX_WEBPUSH_PLAINTEXT_BYTES, webPushHeaders } from "./webpush-payload";

/** VAPID `exp` at most 24 h ahead (RFC 8292 §2); 12 h leaves room for skew, and the token is reused meanwhile. */
const VAPID_LIFETIME_SECONDS = 12 * 3600;
/** Renew a cached VAPID token this long before its `exp`. */
const VAPID_RENEW_MARGIN_SECONDS = 3600;
const EMPTY_BODY = Buffer.alloc(0);
const ENCRYPTED_BODY_HEADERS = { "content-encoding": "aes128gcm", "content-type": "application/octet-stream" };

/** Reads a VAPID key: a P-256 private key PEM. Throws PusherError PUSHER_ERR_WEBPUSH_CREDENTIALS. */
export function readVapidKey(file: string): KeyObject {
  let pem: Buffer;
  try {
    pem = readFileSync(file);
  } catch (error) {
    throw new PusherError(
      "PUSHER_ERR_WEBPUSH_CREDENTIALS",
      `cannot read vapidKeyFile ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
    );
  }
  let key: KeyObject;
  try {
    key = createPrivateKey(pem);
  } catch (error) {
    throw new PusherError(
      "PUSHER_ERR_WEBPUSH_CREDENTIALS",
      `vapidKeyFile ${file} is not a private key: ${(error as Error).message}`,
    );
  }
  if (key.asymmetricKeyType !== "ec" || key.asymmetricKeyDetails?.namedCurve !== "prime256v1") {
    throw new PusherError("PUSHER_ERR_WEBPUSH_CREDENTIALS", `vapidKeyFile ${file} is not an EC P-256 key`);
  }
  return key;
}

/** The VAPID public key as browsers and `+sip.vapid` want it: base64url of the uncompressed point (65 bytes). */
export function vapidPublicKey(privateKey: KeyObject): string {
  const jwk = createPublicKey(privateKey).export({ format: "jwk" });
  const point = Buffer.concat([
    Buffer.from([0x04]),
    Buffer.from(jwk.x as string, "base64url"),
    Buffer.from(jwk.y as string, "base64url"),
  ]);
  return point.toString("base64url");
}

export class WebPushSender extends ProviderSender {
  private readonly vapidTokens = new Map<string, { header: string; expiresAtSeconds: number }>();

  constructor(options: SenderOptions = {}) {
    super("webpush", options);
  }

  send(request: PushRequest, credentials: WebPushCredentials): Promise<SendOutcome> {
    let endpoint: URL;
    try {
      endpoint = new URL(request.device.token);
      if (endpoint.protocol !== "https:") throw new Error(`${endpoint.protocol} is not https:`);
    } catch (error) {
      return Promise.resolve({
        outcome: "failed",
        code: "PUSHER_ERR_BAD_DEVICE",
        reason: `the Web Push endpoint is not an https URL: ${(error as Error).message}`,
        attempts: 0,
      });
    }
    // Checked at REGISTER too; again here, on the host and port this very URL connects to, because the helper must
    // never be a way to reach arbitrary hosts.
    const hosts = credentials.endpointHosts ?? DEFAULT_WEBPUSH_ENDPOINT_HOSTS;
    if (!parsedEndpointAllowed(endpoint, hosts)) {
      const reason = `the Web Push endpoint's host ${endpoint.host} is not in apps.${request.device.appId}.webpush.endpointHosts`;
      return Promise.resolve({ outcome: "failed", code: "PUSHER_ERR_BAD_DEVICE", reason, attempts: 0 });
    }
    if (!request.device.webpush && isCallEnded(request)) {
      return Promise.resolve({
        outcome: "failed",
        code: "PUSHER_ERR_BAD_DEVICE",
        reason:
          "a Web Push subscription without p256dh/auth keys gets no call-ended message (an empty one reads as a call)",
        attempts: 0,
      });
    }
    const deadlineMs = pushDeadlineMs(request, this.now());
    return sendWithRetries(() => this.attempt(request, credentials, endpoint, deadlineMs), {
      deadlineMs,
      now: this.now,
      sleep: this.sleep,
      baseDelayMs: this.retryBaseDelayMs,
    });
  }

  close(): Promise<void> {
    return this.sessions.close();
  }

  /** `vapid t=<JWT>, k=<public key>` for the endpoint's origin, reused until an hour before it expires. */
  private authorization(credentials: WebPushCredentials, origin: string): string {
    const cacheKey = `${credentials.vapidKeyFile}\n${origin}`;
    const nowSeconds = Math.floor(this.now() / 1000);
    const cached = this.vapidTokens.get(cacheKey);
    if (cached && nowSeconds < cached.expiresAtSeconds - VAPID_RENEW_MARGIN_SECONDS) return cached.header;
    const key = readVapidKey(credentials.vapidKeyFile);
    const expiresAtSeconds = nowSeconds + VAPID_LIFETIME_SECONDS;
    // RFC 8292 §2: aud = the origin of the push resource, exp ≤ 24 h, sub = the operator's contact.
    const jwt = signJwt(
      { typ: "JWT", alg: "ES256" },
      { aud: origin, exp: expiresAtSeconds, sub: credentials.subject },
      key,
    );
    const header = `vapid t=${jwt}, k=${vapidPublicKey(key)}`;
    this.vapidTokens.set(cacheKey, { header, expiresAtSeconds });
    return header;
  }

  private async attempt(
    request: PushRequest,
    credentials: WebPushCredentials,
    endpoint: URL,
    deadlineMs: number,
  ): Promise<AttemptResult> {
    const nowMs = this.now();
    const keys = request.device.webpush;
    let authorization: string;
    let body: Buffer = EMPTY_BODY;
    try {
      authorization = this.authorization(credentials, endpoint.origin);
      if (keys) {
        const { value: plaintext } = fitToSize(
          request,
          (trimmed) => buildWebPushPayload(trimmed, nowMs),
          MAX_WEBPUSH_PLAINTEXT_BYTES,
          Buffer.byteLength,
        );
        body = encryptWebPush(Buffer.from(plaintext), keys);
      }
    } catch (error) {
      return { classification: classifyTransportError(error, "webpush"), reason: (error as Error).message };
    }
    const timeoutMs = Math.max(1, Math.min(this.requestTimeoutMs, deadlineMs - nowMs));
    try {
      const response = await this.sessions.request(
        { key: `webpush\n${endpoint.origin}\n${credentials.vapidKeyFile}`, authority: endpoint.origin },
        {
          ":method": "POST",
          ":path": endpoint.pathname + endpoint.search,
          authorization,
          ...webPushHeaders(request, nowMs),
          ...(keys ? ENCRYPTED_BODY_HEADERS : {}),
        },
        body,
        timeoutMs,
      );
      const result: AttemptResult = {
        classification: classifyWebPushResponse(response.status),
        status: response.status,
      };
      if (response.status >= 300)
        result.reason = `HTTP ${response.status}${response.body ? ` ${response.body.slice(0, 200)}` : ""}`;
      const location = response.headers.location;
      if (typeof location === "string") result.providerId = location;
      const retryAfter = retryAfterMs(response.headers["retry-after"], this.now());
      if (retryAfter !== undefined) result.retryAfterMs = retryAfter;
      return result;
    } catch (error) {
      return { classification: classifyTransportError(error, "webpush"), reason: (error as Error).message };
    }
  }
}
