// Sends pushes to APNs over HTTP/2, with certificate or token (JWT) authentication.
// https://developer.apple.com/documentation/usernotifications/sending-notification-requests-to-apns
// The push type follows the token: a PushKit token gets a VoIP push (topic `<bundle>.voip`, push type voip,
// priority 10, expiration 0), an alert token an alert push (topic `<bundle>`, the call text, collapse id = the
// call). The plugin picks the token of a call-ended push (an alert token, or a PushKit token only when the app
// asks for call-ended VoIP pushes), so an alert push never goes to a PushKit token. Message and refresh pushes go to
// alert tokens too, as alert and background pushes (apns-message-and-refresh.ts). Sandbox tokens (RFC 8599
// `apns.dev`) go to the app's sandboxHost. One session per (host, certificate) or (host, team, key): token
// connections start at one stream until APNs accepts a push, then follow the server's SETTINGS (Apple:
// https://developer.apple.com/documentation/usernotifications/sending-notification-requests-to-apns).
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { isTopicOfApp } from "../apple-bundle";
import type { AppleCredentials } from "../config";
import { maskToken } from "../mask-token";
import type { PushRequest } from "../protocol";
import {
  apnsAlertTopic,
  apnsTopic,
  buildApnsAlertPayload,
  buildApnsPayload,
  MAX_ALERT_PAYLOAD_BYTES,
  MAX_VOIP_PAYLOAD_BYTES,
} from "./apns-payload";
import { ApnsProviderTokens, tokenCacheKey, type ApnsSigningKey } from "./apns-token";
import { classifyApnsResponse, classifyTransportError, PusherError, retryAfterMs } from "./provider-errors";
import { ProviderSender, type SenderOptions } from "./provider-sender";
import type { ProviderResponse, SessionTarget } from "./provider-sessions";
import { apnsMessageOrRefreshPush } from "./apns-message-and-refresh";
import { fitToSize, isCallEnded } from "./push-content";
import { pushDeadlineMs, sendWithRetries, type AttemptResult, type SendOutcome } from "./retry-policy";

const DEFAULT_APNS_PORT = 443;
/** A call-ended alert ("Missed call from …") is worth delivering for an hour, not for 30 days. */
const CALL_ENDED_EXPIRATION_SECONDS = 3600;
/** APNs: apns-collapse-id ≤ 64 bytes. */
const MAX_COLLAPSE_ID_BYTES = 64;
/** The last time a JS Date can hold: a 410 `timestamp` beyond it is ignored. */
const MAX_DATE_MS = 8.64e15;

export { DEFAULT_REQUEST_TIMEOUT_MS, silentLogger, type SenderOptions } from "./provider-sender";

/** `host` or `host:port` (validated by config.checkHost) → an https authority. */
export function apnsAuthority(host: string): string {
  const [hostname, port] = host.split(":");
  return `https://${hostname}:${port ?? DEFAULT_APNS_PORT}`;
}

/**
 * The apns-topic of the push: from the device's RFC 8599 topic if it has one, else from the app id. A device topic
 * that is not the app's bundle (a record stored before the plugin checked pn-param at REGISTER) is not used: a
 * topic a phone chose must never reach APNs with our credentials, where its refusal could read as theirs.
 */
function topic(request: PushRequest, alert: boolean): string {
  const explicit = request.device.apnsTopic;
  if (explicit && isTopicOfApp(explicit.replace(/\.(voip|remote)$/, ""), request.device.appId)) {
    const bundle = explicit.replace(/\.(voip|remote)$/, "");
    return alert ? bundle : bundle + ".voip";
  }
  return alert ? apnsAlertTopic(request.device.appId) : apnsTopic(request.device.appId);
}

/** Apple's two APNs environments; a token belongs to one (development builds get sandbox tokens). */
type Environment = "production" | "sandbox";

/** What a push needs from its credentials, worked out once per credentials object rather than per push. */
interface Route {
  /** The credentials' values it was made from: a changed object gets a new route. */
  host: string;
  certificateFile?: string;
  keyFile?: string;
  keyId?: string;
  teamId?: string;
  target: SessionTarget;
  signingKey?: ApnsSigningKey & { cacheKey: string };
}

/** One push's state across its attempts. */
interface PushAttempts {
  /** The JWT the last attempt sent: renewed if APNs refused it. */
  jwt?: string;
  /** The session the last attempt went on: retired if APNs refused the token or the connection. */
  sessionId?: number;
}

/** The call id as an apns-collapse-id: itself when short enough, else its SHA-256 (64 hex characters). */
export function collapseId(callId: string): string {
  return Buffer.byteLength(callId) <= MAX_COLLAPSE_ID_BYTES
    ? callId
    : createHash("sha256").update(callId).digest("hex");
}

export class ApnsSender extends ProviderSender {
  readonly providerTokens: ApnsProviderTokens;
  private readonly routes = new WeakMap<AppleCredentials, { [environment in Environment]?: Route }>();

  constructor(options: SenderOptions = {}) {
    super("apns", options);
    this.providerTokens = new ApnsProviderTokens(this.now);
  }

  /**
   * Sends one push to the host of the token's environment, retrying by the error policy while the call still
   * rings. APNs answers BadDeviceToken for a token of the other environment as for a dead one (Apple's error
   * table: "the device token is for the development environment"), so that answer alone never drops a record:
   * the push goes once to the other host (checkOtherEnvironment).
   */
  async send(request: PushRequest, credentials: AppleCredentials): Promise<SendOutcome> {
    const environment: Environment = request.device.sandbox ? "sandbox" : "production";
    // One deadline for the whole push, the other host's attempt included.
    const deadlineMs = pushDeadlineMs(request, this.now());
    const outcome = await this.sendTo(request, credentials, environment, deadlineMs);
    if (outcome.code !== "PUSHER_ERR_APNS_BAD_DEVICE_TOKEN" || credentials.host === credentials.sandboxHost)
      return outcome;
    return this.checkOtherEnvironment(request, credentials, environment, outcome, deadlineMs);
  }

  /**
   * BadDeviceToken from the host our bookkeeping chose: accepted by the other host → delivered and kept (the
   * phone registered a development token as production, or the reverse: logged); BadDeviceToken there too →
   * the token is dead, dropped; any other answer there (a key or certificate valid for one environment only,
   * a connection failure) proves nothing → kept. The other host's answer never raises the credentials alarm.
   */
  private async checkOtherEnvironment(
    request: PushRequest,
    credentials: AppleCredentials,
    tried: Environment,
    first: SendOutcome,
    deadlineMs: number,
  ): Promise<SendOutcome> {
    const other: Environment = tried === "sandbox" ? "production" : "sandbox";
    const second = await this.sendTo(request, credentials, other, deadlineMs);
    const attempts = first.attempts + second.attempts;
    const token = maskToken(request.device.token);
    if (second.outcome === "sent") {
      this.logger.warn(
        `apns: token ${token} of app ${request.device.appId} is a ${other} token registered as ${tried} (${tried === "sandbox" ? "pn-provider=apns.dev" : "no apns.dev"}): ` +
          `BadDeviceToken at ${this.hostOf(credentials, tried)}, delivered through ${this.hostOf(credentials, other)}`,
      );
      return { ...second, attempts };
    }
    if (second.code === "PUSHER_ERR_APNS_BAD_DEVICE_TOKEN")
      return { ...first, attempts, reason: `${first.reason ?? "BadDeviceToken"} at both APNs hosts` };
    const kept: SendOutcome = {
      outcome: "failed",
      code: first.code,
      attempts,
      reason: `BadDeviceToken at ${this.hostOf(credentials, tried)}; ${this.hostOf(credentials, other)} answered ${second.reason ?? second.code ?? "nothing"}: the token may be a ${other} token, kept`,
    };
    if (first.status !== undefined) kept.status = first.status;
    return kept;
  }

  private hostOf(credentials: AppleCredentials, environment: Environment): string {
    return environment === "sandbox" ? credentials.sandboxHost : credentials.host;
  }

  private sendTo(
    request: PushRequest,
    credentials: AppleCredentials,
    environment: Environment,
    deadlineMs: number,
  ): Promise<SendOutcome> {
    const route = this.route(credentials, environment);
    const state: PushAttempts = {};
    return sendWithRetries(
      (refresh) => {
        if (refresh)
          this.sessions.retire(route.target.key, "APNs refused the provider token or the connection", state.sessionId);
        return this.attempt(request, route, state, refresh, deadlineMs);
      },
      { deadlineMs, now: this.now, sleep: this.sleep, baseDelayMs: this.retryBaseDelayMs },
    );
  }

  /** Closes every session, letting in-flight requests finish for up to a second. */
  close(): Promise<void> {
    return this.sessions.close();
  }

  /**
   * After a config reload: closes the sessions no app uses any more and those whose certificate or key file
   * changed (a TLS client certificate is bound to its connection), each once its in-flight pushes are answered.
   * Unchanged ones stay open.
   */
  retireStale(current: AppleCredentials[], changedFiles: ReadonlySet<string>): void {
    for (const file of changedFiles) this.providerTokens.forgetKeyFile(file);
    const wanted = new Set<string>();
    for (const credentials of current) {
      const file = credentials.certificateFile ?? credentials.keyFile ?? "";
      if (changedFiles.has(file)) continue;
      wanted.add(this.route(credentials, "production").target.key);
      wanted.add(this.route(credentials, "sandbox").target.key);
    }
    for (const key of this.sessions.keys()) {
      if (!wanted.has(key)) this.sessions.retire(key, "its credentials changed or were removed by a config reload");
    }
  }

  /**
   * Connects to the app's APNs host ahead of its first push: the handshake would otherwise land on the first
   * calls after a start or reload (Apple: keep connections open rather than opening one per burst).
   */
  connect(credentials: AppleCredentials): void {
    this.sessions.connect(this.route(credentials, "production").target);
  }

  /** Open sessions, for tests and diagnostics. */
  get sessionCount(): number {
    return this.sessions.size;
  }

  private route(credentials: AppleCredentials, environment: Environment): Route {
    const { certificateFile, keyFile, keyId, teamId } = credentials;
    const host = this.hostOf(credentials, environment);
    let routes = this.routes.get(credentials);
    if (!routes) {
      routes = {};
      this.routes.set(credentials, routes);
    }
    const cached = routes[environment];
    if (
      cached &&
      cached.host === host &&
      cached.certificateFile === certificateFile &&
      cached.keyFile === keyFile &&
      cached.keyId === keyId &&
      cached.teamId === teamId
    ) {
      return cached;
    }
    const route: Route = { host, certificateFile, keyFile, keyId, teamId, target: this.target(credentials, host) };
    if (keyFile !== undefined) {
      const signingKey = { keyFile, keyId: keyId ?? "", teamId: teamId ?? "" };
      route.signingKey = { ...signingKey, cacheKey: tokenCacheKey(signingKey) };
    }
    routes[environment] = route;
    return route;
  }

  private target(credentials: AppleCredentials, host: string): SessionTarget {
    const authority = apnsAuthority(host);
    if (credentials.keyFile !== undefined) {
      // One connection per team and key: APNs binds both to a connection at its first push (Apple:
      // https://developer.apple.com/documentation/usernotifications/establishing-a-token-based-connection-to-apns).
      return { key: `${host}\ntoken:${credentials.teamId}:${credentials.keyId}`, authority, initialMaxStreams: 1 };
    }
    const certificateFile = credentials.certificateFile ?? "";
    return {
      key: `${host}\ncertificate:${certificateFile}`,
      authority,
      connectOptions: () => {
        let pem: Buffer;
        try {
          pem = readFileSync(certificateFile);
        } catch (error) {
          const code = (error as NodeJS.ErrnoException).code ?? "unknown error";
          throw new PusherError(
            "PUSHER_ERR_APNS_CREDENTIALS",
            `cannot read certificateFile ${certificateFile}: ${code}`,
          );
        }
        // One PEM holds certificate and key (Kazoo's format): Node picks the CERTIFICATE block for `cert`
        // and the PRIVATE KEY block for `key`.
        return { cert: pem, key: pem };
      },
    };
  }

  private async attempt(
    request: PushRequest,
    route: Route,
    state: PushAttempts,
    refresh: boolean,
    deadlineMs: number,
  ): Promise<AttemptResult> {
    const nowMs = this.now();
    const callEnded = isCallEnded(request);
    // The token's kind decides, for calls and call-ended notices alike (an alert push to a PushKit token is refused).
    const alert = request.device.pushKind === "alert";
    const headers: { [name: string]: string } = {
      ":method": "POST",
      // The token comes from a SIP Contact: encode it so it can never change the path.
      ":path": `/3/device/${encodeURIComponent(request.device.token)}`,
      "apns-topic": topic(request, alert),
      "apns-push-type": alert ? "alert" : "voip",
      "apns-priority": "10",
      // 0: deliver now or never. A call push stored and delivered later would ring for a call long gone.
      "apns-expiration": callEnded && alert ? String(Math.floor(nowMs / 1000) + CALL_ENDED_EXPIRATION_SECONDS) : "0",
      "content-type": "application/json",
    };
    // The call-ended alert replaces the ringing alert of the same call on the device.
    if (alert) headers["apns-collapse-id"] = collapseId(request.callId);
    // A message or refresh push (to an alert token) has its own push type, priority, expiry and body.
    const purposePush = apnsMessageOrRefreshPush(request);
    if (purposePush) {
      headers["apns-push-type"] = purposePush.pushType;
      headers["apns-priority"] = purposePush.priority;
      headers["apns-expiration"] = purposePush.expiration;
      delete headers["apns-collapse-id"];
    }
    const rejectedJwt = refresh ? state.jwt : undefined;
    state.jwt = undefined;
    state.sessionId = undefined;
    if (route.signingKey) {
      try {
        const token = this.providerTokens.token(route.signingKey, rejectedJwt, route.signingKey.cacheKey);
        state.jwt = token.jwt;
        headers.authorization = token.authorization;
      } catch (error) {
        return { classification: classifyTransportError(error, "apple"), reason: (error as Error).message };
      }
    }
    const build: (request: PushRequest, nowMs: number) => object = purposePush
      ? purposePush.build
      : alert
        ? buildApnsAlertPayload
        : buildApnsPayload;
    const { value: body } = fitToSize(
      request,
      (trimmed) => JSON.stringify(build(trimmed, nowMs)),
      alert ? MAX_ALERT_PAYLOAD_BYTES : MAX_VOIP_PAYLOAD_BYTES,
      Buffer.byteLength,
    );
    const timeoutMs = Math.max(1, Math.min(this.requestTimeoutMs, deadlineMs - nowMs));
    let response: ProviderResponse;
    try {
      response = await this.sessions.request(route.target, headers, body, timeoutMs);
    } catch (error) {
      return {
        classification: classifyTransportError(error, "apple"),
        reason: error instanceof Error ? error.message : String(error),
      };
    }
    state.sessionId = response.sessionId;
    let reason: string | undefined;
    let tokenInvalidSinceMs: number | undefined;
    if (response.body) {
      try {
        const parsed = JSON.parse(response.body) as { reason?: unknown; timestamp?: unknown };
        if (typeof parsed.reason === "string") reason = parsed.reason;
        // 410 only: when APNs learnt the token is invalid (epoch ms; a number, some proxies give a string).
        const timestamp = typeof parsed.timestamp === "string" ? Number(parsed.timestamp) : parsed.timestamp;
        if (response.status === 410 && typeof timestamp === "number" && timestamp > 0 && timestamp < MAX_DATE_MS)
          tokenInvalidSinceMs = timestamp;
      } catch {
        reason = `unparsable APNs error body (${response.body.length} characters)`;
      }
    }
    if (response.status === 400 && reason === "DeviceTokenNotForTopic") {
      // Our topic, from the app id or the binding's pn-param: a configuration or bookkeeping error, never the
      // phone's fault, so the record stays (provider-errors.ts).
      this.logger.error(
        `apns: configuration error: token ${maskToken(request.device.token)} of app ${request.device.appId} is not for topic ${headers["apns-topic"]} ` +
          `(push type ${headers["apns-push-type"]}): check the app id or pn-param against the app's bundle id, and that the phone sends its PushKit token for calls; the device is kept`,
      );
    }
    const result: AttemptResult = {
      classification: classifyApnsResponse(response.status, reason),
      status: response.status,
    };
    if (reason !== undefined) result.reason = reason;
    if (tokenInvalidSinceMs !== undefined) result.tokenInvalidSinceMs = tokenInvalidSinceMs;
    const apnsId = response.headers["apns-id"];
    if (typeof apnsId === "string") result.providerId = apnsId;
    const retryAfter = retryAfterMs(response.headers["retry-after"], this.now());
    if (retryAfter !== undefined) result.retryAfterMs = retryAfter;
    return result;
  }
}
