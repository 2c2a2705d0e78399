// Sends pushes to APNs over HTTP/2, with certificate or token (JWT) authentication.
// https://developer.apple.com/documentation/usernotifications/sending-notification-requests-to-apns
// Ringing a call: a VoIP push (topic `<bundle>.voip`, push type voip, priority 10, expiration 0). A device with
// only an alert token, and every call-ended push, get an alert push (topic `<bundle>`, the call text, collapse
// id = the call). One session per (host, certificate) or (host, team, key): token connections start at one
// stream until APNs accepts a push (providers.md §1.4), then follow the server's SETTINGS.
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import type { AppleCredentials } from "../config";
import type { PushRequest } from "../protocol";
import {
  apnsAlertTopic,
  apnsTopic,
  buildApnsAlertPayload,
  buildApnsPayload,
  MAX_ALERT_PAYLOAD_BYTES,
  MAX_VOIP_PAYLOAD_BYTES,
} from "./apns-payload";
import { ApnsProviderTokens } from "./apns-token";
import { classifyApnsResponse, classifyTransportError, PusherError, retryAfterMs } from "./provider-errors";
import { ProviderSender, type SenderOptions } from "./provider-sender";
import type { SessionTarget } from "./provider-sessions";
import { fitToSize, isCallEnded } from "./push-content";
import { pushDeadlineMs, sendWithRetries, type AttemptResult, type SendOutcome } from "./retry-policy";

const DEFAULT_APNS_PORT = 443;
/** A call-ended alert ("Missed call from …") is worth delivering for an hour, not for 30 days. */
const CALL_ENDED_EXPIRATION_SECONDS = 3600;
/** APNs: apns-collapse-id ≤ 64 bytes. */
const MAX_COLLAPSE_ID_BYTES = 64;

export { DEFAULT_REQUEST_TIMEOUT_MS, silentLogger, type SenderOptions } from "./provider-sender";

/** `host` or `host:port` (validated by config.checkHost) → an https authority. */
export function apnsAuthority(host: string): string {
  const [hostname, port] = host.split(":");
  return `https://${hostname}:${port ?? DEFAULT_APNS_PORT}`;
}

/** The bundle id the device's pushes go to: its RFC 8599 topic if it has one, else from the app id. */
function topics(request: PushRequest): { voip: string; alert: string } {
  const explicit = request.device.apnsTopic;
  if (explicit) {
    const bundle = explicit.replace(/\.(voip|remote)$/, "");
    return { voip: bundle + ".voip", alert: bundle };
  }
  return { voip: apnsTopic(request.device.appId), alert: apnsAlertTopic(request.device.appId) };
}

/** The call id as an apns-collapse-id: itself when short enough, else its SHA-256 (64 hex characters). */
export function collapseId(callId: string): string {
  return Buffer.byteLength(callId) <= MAX_COLLAPSE_ID_BYTES ? callId : createHash("sha256").update(callId).digest("hex");
}

export class ApnsSender extends ProviderSender {
  readonly providerTokens: ApnsProviderTokens;

  constructor(options: SenderOptions = {}) {
    super("apns", options);
    this.providerTokens = new ApnsProviderTokens(this.now);
  }

  /** Sends one push, retrying by the error policy while the call still rings. */
  send(request: PushRequest, credentials: AppleCredentials): Promise<SendOutcome> {
    let rejectedJwt: string | undefined;
    let lastSessionId: number | undefined;
    const target = this.target(credentials);
    return sendWithRetries(
      async (refresh) => {
        if (refresh) this.sessions.retire(target.key, "APNs refused the provider token or the connection", lastSessionId);
        const result = await this.attempt(request, credentials, target, refresh ? rejectedJwt : undefined);
        rejectedJwt = result.jwt;
        lastSessionId = result.sessionId;
        return result;
      },
      { deadlineMs: pushDeadlineMs(request, this.now()), now: this.now, sleep: this.sleep, baseDelayMs: this.retryBaseDelayMs },
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
      if (!changedFiles.has(file)) wanted.add(this.target(credentials).key);
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
    this.sessions.connect(this.target(credentials));
  }

  /** Open sessions, for tests and diagnostics. */
  get sessionCount(): number {
    return this.sessions.size;
  }

  private target(credentials: AppleCredentials): SessionTarget {
    const authority = apnsAuthority(credentials.host);
    if (credentials.keyFile !== undefined) {
      // One connection per team and key: APNs binds both to a connection at its first push (providers.md §1.4).
      return { key: `${credentials.host}\ntoken:${credentials.teamId}:${credentials.keyId}`, authority, initialMaxStreams: 1 };
    }
    const certificateFile = credentials.certificateFile ?? "";
    return {
      key: `${credentials.host}\ncertificate:${certificateFile}`,
      authority,
      connectOptions: () => {
        let pem: Buffer;
        try {
          pem = readFileSync(certificateFile);
        } catch (error) {
          const code = (error as NodeJS.ErrnoException).code ?? "unknown error";
          throw new PusherError("PUSHER_ERR_APNS_CREDENTIALS", `cannot read certificateFile ${certificateFile}: ${code}`);
        }
        // One PEM holds certificate and key (Kazoo's format): Node picks the CERTIFICATE block for `cert`
        // and the PRIVATE KEY block for `key`.
        return { cert: pem, key: pem };
      },
    };
  }

  private async attempt(
    request: PushRequest,
    credentials: AppleCredentials,
    target: SessionTarget,
    rejectedJwt: string | undefined,
  ): Promise<AttemptResult & { jwt?: string; sessionId?: number }> {
    const nowMs = this.now();
    const alert = isCallEnded(request) || request.device.pushKind === "alert";
    const topic = alert ? topics(request).alert : topics(request).voip;
    const headers: { [name: string]: string } = {
      ":method": "POST",
      // The token comes from a SIP Contact: encode it so it can never change the path.
      ":path": `/3/device/${encodeURIComponent(request.device.token)}`,
      "apns-topic": topic,
      "apns-push-type": alert ? "alert" : "voip",
      "apns-priority": "10",
      // 0: deliver now or never. A call push stored and delivered later would ring for a call long gone.
      "apns-expiration": isCallEnded(request) ? String(Math.floor(nowMs / 1000) + CALL_ENDED_EXPIRATION_SECONDS) : "0",
      "content-type": "application/json",
    };
    // The call-ended alert replaces the ringing alert of the same call on the device.
    if (alert) headers["apns-collapse-id"] = collapseId(request.callId);
    let jwt: string | undefined;
    try {
      if (credentials.keyFile !== undefined) {
        jwt = this.providerTokens.bearer({ keyFile: credentials.keyFile, keyId: credentials.keyId ?? "", teamId: credentials.teamId ?? "" }, rejectedJwt);
        headers.authorization = `bearer ${jwt}`;
      }
    } catch (error) {
      return { classification: classifyTransportError(error, "apple"), reason: (error as Error).message };
    }
    const build = alert ? buildApnsAlertPayload : buildApnsPayload;
    const { value: body } = fitToSize(
      request,
      (trimmed) => JSON.stringify(build(trimmed, nowMs)),
      alert ? MAX_ALERT_PAYLOAD_BYTES : MAX_VOIP_PAYLOAD_BYTES,
      Buffer.byteLength,
    );
    const timeoutMs = Math.max(1, Math.min(this.requestTimeoutMs, pushDeadlineMs(request, nowMs) - nowMs));
    try {
      const response = await this.sessions.request(target, headers, body, timeoutMs);
      let reason: string | undefined;
      if (response.body) {
        try {
          const parsed = JSON.parse(response.body) as { reason?: unknown };
          if (typeof parsed.reason === "string") reason = parsed.reason;
        } catch {
          reason = `unparsable APNs error body (${response.body.length} characters)`;
        }
      }
      const result: AttemptResult & { jwt?: string; sessionId?: number } = {
        classification: classifyApnsResponse(response.status, reason),
        status: response.status,
        jwt,
        sessionId: response.sessionId,
      };
      if (reason !== undefined) result.reason = reason;
      const apnsId = response.headers["apns-id"];
      if (typeof apnsId === "string") result.providerId = apnsId;
      const retryAfter = retryAfterMs(response.headers["retry-after"], this.now());
      if (retryAfter !== undefined) result.retryAfterMs = retryAfter;
      return result;
    } catch (error) {
      return { classification: classifyTransportError(error, "apple"), reason: error instanceof Error ? error.message : String(error), jwt };
    }
  }
}
