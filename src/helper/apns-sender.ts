// Sends VoIP pushes to APNs over HTTP/2 with certificate authentication.
// https://developer.apple.com/documentation/usernotifications/sending-notification-requests-to-apns
// One session per (host, certificate file), reused across pushes as Apple asks ("keep your connections open"),
// replaced after close, GOAWAY, error or a timed-out request. TLS server verification stays on: a private CA
// (tests) comes only through Node's NODE_EXTRA_CA_CERTS, never through a `ca` option or rejectUnauthorized.
import { readFileSync } from "node:fs";
import http2 from "node:http2";
import type { AppleCredentials } from "../config";
import type { PushOutcome, PushRequest } from "../protocol";
import { apnsTopic, buildApnsPayload } from "./apns-payload";
import type { Logger } from "./logger";
import { classifyApnsResponse, classifyTransportError, PusherError, type Classification, type ErrorCode } from "./provider-errors";

/** Kazoo waited 10 s for APNs (gun:await in apns4erl); the call's ring window caps it further. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 10_000;
const DEFAULT_APNS_PORT = 443;
/** A short pause before the single retry, so a 429/503 is not answered with an instant second request. */
const RETRY_DELAY_MS = 200;
/** A retry needs at least this long before the call stops ringing to be worth sending. */
const MIN_RETRY_WINDOW_MS = 500;
/** How long close() lets in-flight requests finish before destroying the sessions. */
const CLOSE_GRACE_MS = 1000;

export interface ApnsSenderOptions {
  /** Per-request timeout; never beyond the call's ringsUntilMs. */
  requestTimeoutMs?: number;
  logger?: Logger;
  /** Clock in epoch ms (tests). */
  now?: () => number;
}

/** The PushResult fields of a push, plus what the log line wants to know. */
export interface ApnsOutcome {
  outcome: PushOutcome;
  code?: ErrorCode;
  /** APNs' reason string, or the transport error's message. */
  reason?: string;
  dropToken?: boolean;
  /** Requests sent to APNs: 0 when none was (e.g. the call had already stopped ringing). */
  attempts: number;
  status?: number;
  apnsId?: string;
}

interface AttemptResult {
  classification: Classification;
  reason?: string;
  status?: number;
  apnsId?: string;
}

/** One HTTP/2 connection to one APNs host with one certificate (undici-style: all session state in one object). */
interface ApnsSession {
  key: string;
  authority: string;
  session: http2.ClientHttp2Session;
  activeStreams: number;
}

const silentLogger: Logger = { error() {}, warn() {}, info() {}, debug() {} };

/** `host` or `host:port` (validated by config.checkHost) → an https authority. */
export function apnsAuthority(host: string): string {
  const [hostname, port] = host.split(":");
  return `https://${hostname}:${port ?? DEFAULT_APNS_PORT}`;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

function fromError(error: unknown): AttemptResult {
  return { classification: classifyTransportError(error), reason: error instanceof Error ? error.message : String(error) };
}

function fromAnswer(status: number, body: string, apnsId: string | undefined): AttemptResult {
  let reason: string | undefined;
  if (body) {
    try {
      const parsed = JSON.parse(body) as { reason?: unknown };
      if (typeof parsed.reason === "string") reason = parsed.reason;
    } catch {
      reason = `unparsable APNs error body (${body.length} characters)`;
    }
  }
  return { classification: classifyApnsResponse(status, reason), reason, status, apnsId };
}

export class ApnsSender {
  private readonly sessions = new Map<string, ApnsSession>();
  private readonly requestTimeoutMs: number;
  private readonly logger: Logger;
  private readonly now: () => number;

  constructor(options: ApnsSenderOptions = {}) {
    this.requestTimeoutMs = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    this.logger = options.logger ?? silentLogger;
    this.now = options.now ?? Date.now;
  }

  /** Sends one VoIP push, retrying once when the failure is retryable and the call still rings long enough. */
  async send(request: PushRequest, credentials: AppleCredentials): Promise<ApnsOutcome> {
    if (request.ringsUntilMs - this.now() <= 0) {
      return { outcome: "failed", code: "PUSHER_ERR_CALL_ENDED", reason: "the call stopped ringing before the push", attempts: 0 };
    }
    let attempts = 1;
    let result = await this.attempt(request, credentials);
    // A later issue brings the full retry policy (backoff, Retry-After); for now one retry inside the ring window.
    if (result.classification.retry && request.ringsUntilMs - this.now() >= RETRY_DELAY_MS + MIN_RETRY_WINDOW_MS) {
      await sleep(RETRY_DELAY_MS);
      attempts = 2;
      result = await this.attempt(request, credentials);
    }
    const outcome: ApnsOutcome = { outcome: result.classification.outcome, attempts };
    if (result.classification.code) outcome.code = result.classification.code;
    if (result.reason !== undefined) outcome.reason = result.reason;
    if (result.classification.dropToken) outcome.dropToken = true;
    if (result.status !== undefined) outcome.status = result.status;
    if (result.apnsId !== undefined) outcome.apnsId = result.apnsId;
    return outcome;
  }

  /** Closes every session, letting in-flight requests finish for up to a second. */
  async close(): Promise<void> {
    const entries = [...this.sessions.values()];
    this.sessions.clear();
    await Promise.all(entries.map((entry) => closeGracefully(entry.session)));
  }

  /** Open sessions, for tests and diagnostics. */
  get sessionCount(): number {
    return this.sessions.size;
  }

  private attempt(request: PushRequest, credentials: AppleCredentials): Promise<AttemptResult> {
    let entry: ApnsSession;
    try {
      entry = this.sessionFor(credentials);
    } catch (error) {
      return Promise.resolve(fromError(error));
    }
    const timeoutMs = Math.max(1, Math.min(this.requestTimeoutMs, request.ringsUntilMs - this.now()));
    const body = JSON.stringify(buildApnsPayload(request, this.now()));
    let stream: http2.ClientHttp2Stream;
    try {
      stream = entry.session.request({
        ":method": "POST",
        // The token comes from a SIP Contact: encode it so it can never change the path.
        ":path": `/3/device/${encodeURIComponent(request.device.token)}`,
        "apns-topic": apnsTopic(request.device.appId),
        "apns-push-type": "voip",
        "apns-priority": "10",
        // 0: deliver now or never. A call push stored and delivered later would ring for a call long gone.
        "apns-expiration": "0",
        "content-type": "application/json",
      });
    } catch (error) {
      // The session was shutting down (e.g. GOAWAY not yet seen by us): a new one takes the retry.
      this.forget(entry);
      return Promise.resolve(fromError(error));
    }
    entry.activeStreams++;
    entry.session.ref();
    return new Promise<AttemptResult>((resolve) => {
      let settled = false;
      let status: number | undefined;
      let apnsId: string | undefined;
      const chunks: Buffer[] = [];

      const finish = (result: AttemptResult) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        entry.activeStreams--;
        // Idle sessions must not keep the process alive (clean exit on SIGTERM, test runners).
        if (entry.activeStreams === 0 && !entry.session.destroyed) entry.session.unref();
        resolve(result);
      };
      const onTimeout = () => {
        stream.close(http2.constants.NGHTTP2_CANCEL);
        // No answer may mean a dead connection (NAT drop, half-open TCP): later pushes get a fresh one.
        this.retire(entry, "a request timed out");
        finish(fromError(new PusherError("PUSHER_ERR_APNS_TIMEOUT", `no answer from APNs within ${timeoutMs} ms`)));
      };
      const timer = setTimeout(onTimeout, timeoutMs).unref();

      stream.on("response", (headers) => {
        status = Number(headers[":status"]);
        const id = headers["apns-id"];
        if (typeof id === "string") apnsId = id;
      });
      stream.on("data", (chunk: Buffer) => chunks.push(chunk));
      stream.on("end", () => {
        if (status === undefined) return; // 'close' reports it
        finish(fromAnswer(status, Buffer.concat(chunks).toString("utf8"), apnsId));
      });
      stream.on("error", (error) => finish(fromError(error)));
      stream.on("close", () => {
        // Reached only when neither 'end' with an answer nor 'error' settled it, e.g. RST_STREAM or GOAWAY.
        finish(fromError(new PusherError("PUSHER_ERR_APNS_CONNECTION", `APNs closed the stream without an answer (HTTP/2 code ${stream.rstCode})`)));
      });
      stream.end(body);
    });
  }

  /** The live session for these credentials, or a new one (reading the certificate file once per session). */
  private sessionFor(credentials: AppleCredentials): ApnsSession {
    const key = `${credentials.host}\n${credentials.certificateFile}`;
    const existing = this.sessions.get(key);
    if (existing && !existing.session.closed && !existing.session.destroyed) return existing;

    let pem: Buffer;
    try {
      pem = readFileSync(credentials.certificateFile);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? "unknown error";
      throw new PusherError("PUSHER_ERR_APNS_CREDENTIALS", `cannot read certificateFile ${credentials.certificateFile}: ${code}`);
    }
    const authority = apnsAuthority(credentials.host);
    // One PEM holds certificate and key (Kazoo's format): Node picks the CERTIFICATE block for `cert`
    // and the PRIVATE KEY block for `key`.
    const session = http2.connect(authority, { cert: pem, key: pem });
    const entry: ApnsSession = { key, authority, session, activeStreams: 0 };
    this.sessions.set(key, entry);
    this.logger.debug(`apns: connecting to ${authority}`);

    const onConnect = () => this.logger.debug(`apns: connected to ${authority}`);
    const onGoAway = (errorCode: number, lastStreamId: number, data?: Buffer) => {
      // Node shuts the session down itself; streams above lastStreamId fail and are retried on a new session.
      const reason = data && data.length ? ` ${data.toString("utf8").slice(0, 200)}` : "";
      this.logger.warn(`apns: ${authority} sent GOAWAY (code ${errorCode}, last stream ${lastStreamId})${reason}`);
      this.forget(entry);
    };
    const onSessionError = (error: Error) => {
      this.logger.warn(`apns: connection to ${authority} failed: ${error.message}`);
      this.forget(entry);
    };
    const onSessionClose = () => {
      this.logger.debug(`apns: connection to ${authority} closed`);
      this.forget(entry);
    };
    session.on("connect", onConnect);
    session.on("goaway", onGoAway);
    session.on("error", onSessionError);
    session.on("close", onSessionClose);
    return entry;
  }

  private forget(entry: ApnsSession): void {
    if (this.sessions.get(entry.key) === entry) this.sessions.delete(entry.key);
  }

  /** Takes a session out of use: its other requests may finish, new ones go to a new session. */
  private retire(entry: ApnsSession, why: string): void {
    if (this.sessions.get(entry.key) !== entry) return;
    this.logger.debug(`apns: replacing the connection to ${entry.authority}: ${why}`);
    this.forget(entry);
    void closeGracefully(entry.session);
  }
}

function closeGracefully(session: http2.ClientHttp2Session): Promise<void> {
  return new Promise((resolve) => {
    if (session.destroyed) return resolve();
    const timer = setTimeout(() => session.destroy(), CLOSE_GRACE_MS).unref();
    session.close(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}
