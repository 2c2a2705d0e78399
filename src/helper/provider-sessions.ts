// HTTP/2 sessions to push providers (APNs, FCM, Google OAuth, Web Push services), in undici's manner: all state
// of one connection in one object, named handlers, every timer unref()'d.
// One session per key (the sender decides: host + credential), reused across pushes as Apple and Google ask,
// replaced after GOAWAY, error, close, a failed ping, or a timed-out request on a session that answered nothing
// since that request was sent (a slow server is not a dead connection). A replaced session's requests keep their
// own deadlines: replacing a session never cuts short the requests on it. Concurrency is the server's:
// nghttp2 queues streams beyond the peer's SETTINGS_MAX_CONCURRENT_STREAMS; `initialMaxStreams` bounds the
// streams sent before that frame arrives (APNs token connections: 1 until a push succeeds; Apple:
// https://developer.apple.com/documentation/usernotifications/sending-notification-requests-to-apns).
// TLS server verification always stays on: a private CA (tests) comes only through NODE_EXTRA_CA_CERTS.
import http2 from "node:http2";
import type { SecureClientSessionOptions } from "node:http2";
import type { Logger } from "./logger";
import { REFUSED_STREAM, TransportError } from "./provider-errors";

/** Idle connections are pinged this often (node-apn's heartbeat); a ping unanswered in PING_TIMEOUT_MS retires it. */
export const DEFAULT_PING_INTERVAL_MS = 60_000;
const PING_TIMEOUT_MS = 10_000;
/** How long close() lets in-flight requests finish before destroying the sessions; a retired session gets this
 * much beyond its requests' last deadline. */
const CLOSE_GRACE_MS = 1000;

export interface SessionTarget {
  /** One session per key, e.g. `apns\n127.0.0.1:443\ntoken:TEAMID:KEYID`. */
  key: string;
  /** `https://host:port` */
  authority: string;
  /** Called once per new session (reads certificate files then); may throw a PusherError. */
  connectOptions?: () => SecureClientSessionOptions;
  /** Streams opened before the server's SETTINGS arrive (nghttp2's assumption is 100). */
  initialMaxStreams?: number;
}

export interface ProviderResponse {
  status: number;
  headers: http2.IncomingHttpHeaders;
  body: string;
  /** Which session carried it: retire(key, why, sessionId) replaces that one only. */
  sessionId: number;
}

interface ProviderSession {
  id: number;
  key: string;
  authority: string;
  session: http2.ClientHttp2Session;
  activeStreams: number;
  /** Answers received on it (status line of a response): a timed-out request tells a slow server from a dead
   * connection by whether this moved since it was sent. */
  answers: number;
  lastActivityMs: number;
  pingTimer: NodeJS.Timeout;
  /** The server's SETTINGS_MAX_CONCURRENT_STREAMS, once known. */
  maxConcurrentStreams?: number;
}

export interface ProviderSessionsOptions {
  /** For log lines: `apns`, `fcm`, `webpush`. */
  name: string;
  logger: Logger;
  pingIntervalMs?: number;
}

export class ProviderSessions {
  private readonly sessions = new Map<string, ProviderSession>();
  private readonly pingIntervalMs: number;
  /** Requests in flight. One timer, armed for the earliest deadline, times them all out (rather than a timer
   * set, unref'd and cleared per request). */
  private readonly pending = new Set<PendingRequest>();
  private sweepTimer: NodeJS.Timeout | undefined;
  /** When sweepTimer fires (performance.now() ms); Infinity while unarmed. */
  private sweepAtMs = Infinity;
  /** Sessions opened so far (tests count reconnects with it). */
  opened = 0;

  constructor(private readonly options: ProviderSessionsOptions) {
    this.pingIntervalMs = options.pingIntervalMs ?? DEFAULT_PING_INTERVAL_MS;
  }

  get size(): number {
    return this.sessions.size;
  }

  /** The keys of the open sessions (a config reload retires those whose credentials changed). */
  keys(): string[] {
    return [...this.sessions.keys()];
  }

  /** The server's concurrency limit on the session for `key`, once its SETTINGS arrived. */
  maxConcurrentStreams(key: string): number | undefined {
    return this.sessions.get(key)?.maxConcurrentStreams;
  }

  /**
   * Sends one request and resolves with the answer. Rejects with a TransportError (timeout, unprocessed,
   * connection), a socket/TLS error, or the PusherError `connectOptions` threw. Never waits beyond `timeoutMs`.
   */
  request(
    target: SessionTarget,
    headers: http2.OutgoingHttpHeaders,
    body: string | Buffer,
    timeoutMs: number,
  ): Promise<ProviderResponse> {
    let entry: ProviderSession;
    try {
      entry = this.sessionFor(target);
    } catch (error) {
      return Promise.reject(error);
    }
    let stream: http2.ClientHttp2Stream;
    try {
      stream = entry.session.request(headers);
    } catch (error) {
      // The session was shutting down (GOAWAY not yet seen by us): nothing was sent, a new session takes it.
      this.forget(entry);
      return Promise.reject(
        new TransportError("unprocessed", `session unusable: ${(error as Error).message}`, { cause: error }),
      );
    }
    // ref() only when the session turns busy (a native call per push otherwise); settle() unrefs it when idle.
    if (entry.activeStreams++ === 0) entry.session.ref();
    entry.lastActivityMs = Date.now();
    // As setTimeout would: below 1 ms (or NaN) means 1 ms.
    const pending = new PendingRequest(
      this,
      entry,
      stream,
      timeoutMs,
      performance.now() + (timeoutMs >= 1 ? timeoutMs : 1),
    );
    const promise = new Promise<ProviderResponse>((resolve, reject) => {
      pending.resolve = resolve;
      pending.reject = reject;
    });
    this.pending.add(pending);
    if (pending.deadlineMs < this.sweepAtMs) this.armSweep(pending.deadlineMs);
    (stream as PendingStream)[kPending] = pending;
    stream.on("response", onStreamResponse);
    stream.on("data", onStreamData);
    stream.on("end", onStreamEnd);
    stream.on("error", onStreamError);
    stream.on("close", onStreamClose);
    stream.end(body);
    return promise;
  }

  /** Called once per request by PendingRequest.settle(). */
  settled(pending: PendingRequest): void {
    this.pending.delete(pending);
    const { entry } = pending;
    entry.activeStreams--;
    entry.lastActivityMs = Date.now();
    // Idle sessions must not keep the process alive (clean exit on SIGTERM, test runners, the CLI).
    if (entry.activeStreams === 0 && !entry.session.destroyed) entry.session.unref();
  }

  private armSweep(atMs: number): void {
    if (this.sweepTimer) clearTimeout(this.sweepTimer);
    this.sweepAtMs = atMs;
    this.sweepTimer = setTimeout(this.onSweep, Math.max(1, Math.ceil(atMs - performance.now()))).unref();
  }

  /** Times out the requests past their deadline and arms the timer for the earliest one left. */
  private readonly onSweep = (): void => {
    this.sweepTimer = undefined;
    this.sweepAtMs = Infinity;
    // setTimeout counts whole milliseconds from the loop's cached clock: within 1 ms counts as due.
    const dueMs = performance.now() + 1;
    let nextMs = Infinity;
    for (const pending of this.pending) {
      if (pending.deadlineMs <= dueMs) this.timeOut(pending);
      else if (pending.deadlineMs < nextMs) nextMs = pending.deadlineMs;
    }
    if (nextMs !== Infinity) this.armSweep(nextMs);
  };

  private timeOut(pending: PendingRequest): void {
    const { entry } = pending;
    pending.stream.close(http2.constants.NGHTTP2_CANCEL);
    // No answer at all since this request was sent may mean a dead connection (NAT drop, half-open TCP): later
    // requests get a fresh one, and the streams on this one keep their own deadlines. A session that answered other
    // requests meanwhile is alive, only slow (a loaded server, or streams queued behind its
    // SETTINGS_MAX_CONCURRENT_STREAMS): replacing it would add a handshake to the load, and each of its timeouts
    // would replace the next session in turn. Only this session is retired (by id): never its replacement, never
    // another app's.
    if (entry.answers === pending.answersAtSend)
      this.retire(entry.key, "a request timed out with no answer on its connection since it was sent", entry.id);
    pending.settle(new TransportError("timeout", `no answer from ${entry.authority} within ${pending.timeoutMs} ms`));
  }

  /**
   * Takes the session for `key` out of use: new requests get a new session; its in-flight requests may finish, each
   * within its own deadline (the sweep times them out), after which the session closes.
   */
  retire(key: string, why: string, sessionId?: number): void {
    const entry = this.sessions.get(key);
    if (!entry || (sessionId !== undefined && entry.id !== sessionId)) return;
    this.options.logger.debug(`${this.options.name}: replacing the connection to ${entry.authority}: ${why}`);
    this.forget(entry);
    let lastDeadlineMs = performance.now();
    for (const pending of this.pending)
      if (pending.entry === entry && pending.deadlineMs > lastDeadlineMs) lastDeadlineMs = pending.deadlineMs;
    void closeGracefully(entry.session, Math.ceil(lastDeadlineMs - performance.now()) + CLOSE_GRACE_MS);
  }

  /** Closes every session, letting in-flight requests finish for up to a second. */
  async close(): Promise<void> {
    const entries = [...this.sessions.values()];
    for (const entry of entries) this.forget(entry);
    await Promise.all(entries.map((entry) => closeGracefully(entry.session)));
  }

  /** Opens the session for `target` now, so the first push does not wait for the TLS handshake. */
  connect(target: SessionTarget): void {
    try {
      this.sessionFor(target);
    } catch (error) {
      this.options.logger.warn(
        `${this.options.name}: cannot connect to ${target.authority}: ${(error as Error).message}`,
      );
    }
  }

  private sessionFor(target: SessionTarget): ProviderSession {
    const existing = this.sessions.get(target.key);
    if (existing && !existing.session.closed && !existing.session.destroyed) return existing;

    const { logger, name } = this.options;
    const connectOptions: SecureClientSessionOptions = { ...(target.connectOptions ? target.connectOptions() : {}) };
    if (target.initialMaxStreams !== undefined) connectOptions.peerMaxConcurrentStreams = target.initialMaxStreams;
    const session = http2.connect(target.authority, connectOptions);
    this.opened++;
    const entry: ProviderSession = {
      id: this.opened,
      key: target.key,
      authority: target.authority,
      session,
      activeStreams: 0,
      answers: 0,
      lastActivityMs: Date.now(),
      pingTimer: setInterval(() => this.onPingTimer(entry), this.pingIntervalMs).unref(),
    };
    this.sessions.set(target.key, entry);
    logger.debug(`${name}: connecting to ${target.authority}`);

    const onConnect = () => logger.debug(`${name}: connected to ${target.authority}`);
    const onRemoteSettings = (settings: http2.Settings) => {
      entry.maxConcurrentStreams = settings.maxConcurrentStreams;
      logger.debug(`${name}: ${target.authority} allows ${settings.maxConcurrentStreams} concurrent streams`);
    };
    const onGoAway = (errorCode: number, lastStreamId: number, data?: Buffer) => {
      // No new streams on this session. Node fails the streams above lastStreamId with REFUSED_STREAM: they
      // were not processed and are retried at once on a new session; the others may still finish.
      const reason = data && data.length ? ` ${data.toString("utf8").slice(0, 200)}` : "";
      logger.warn(`${name}: ${target.authority} sent GOAWAY (code ${errorCode}, last stream ${lastStreamId})${reason}`);
      this.forget(entry);
    };
    const onSessionError = (error: Error) => {
      logger.warn(`${name}: connection to ${target.authority} failed: ${error.message}`);
      this.forget(entry);
    };
    const onSessionClose = () => {
      logger.debug(`${name}: connection to ${target.authority} closed`);
      this.forget(entry);
    };
    session.on("connect", onConnect);
    session.on("remoteSettings", onRemoteSettings);
    session.on("goaway", onGoAway);
    session.on("error", onSessionError);
    session.on("close", onSessionClose);
    session.unref();
    return entry;
  }

  /** Idle connections are checked with a PING (Apple: "use PING frames to check the connection's health"). */
  private onPingTimer(entry: ProviderSession): void {
    if (entry.session.destroyed || entry.activeStreams > 0) return;
    if (Date.now() - entry.lastActivityMs < this.pingIntervalMs) return;
    const timeout = setTimeout(() => this.retire(entry.key, "no answer to PING"), PING_TIMEOUT_MS).unref();
    const sent = entry.session.ping((error) => {
      clearTimeout(timeout);
      if (error) this.retire(entry.key, `PING failed: ${error.message}`);
      else entry.lastActivityMs = Date.now();
    });
    if (!sent) {
      clearTimeout(timeout);
      this.retire(entry.key, "PING could not be sent");
    }
  }

  private forget(entry: ProviderSession): void {
    clearInterval(entry.pingTimer);
    if (this.sessions.get(entry.key) === entry) this.sessions.delete(entry.key);
  }
}

const kPending = Symbol("pending request");
type PendingStream = http2.ClientHttp2Stream & { [kPending]: PendingRequest };

/** One request in flight. Its stream's handlers are shared functions that find it on the stream (no closures
 * per request); settle() runs once, whichever of answer, error, close or timeout comes first. */
class PendingRequest {
  resolve!: (response: ProviderResponse) => void;
  reject!: (error: unknown) => void;
  status: number | undefined;
  headers!: http2.IncomingHttpHeaders;
  chunks: Buffer[] | undefined;
  done = false;
  /** The session's answer count when this request was sent. */
  readonly answersAtSend: number;

  constructor(
    private readonly sessions: ProviderSessions,
    readonly entry: ProviderSession,
    readonly stream: http2.ClientHttp2Stream,
    readonly timeoutMs: number,
    /** performance.now() ms */
    readonly deadlineMs: number,
  ) {
    this.answersAtSend = entry.answers;
  }

  settle(error: unknown, response?: ProviderResponse): void {
    if (this.done) return;
    this.done = true;
    this.sessions.settled(this);
    if (response) this.resolve(response);
    else this.reject(error);
  }
}

function onStreamResponse(this: PendingStream, headers: http2.IncomingHttpHeaders): void {
  const pending = this[kPending];
  pending.status = Number(headers[":status"]);
  pending.headers = headers;
  pending.entry.answers++;
}

function onStreamData(this: PendingStream, chunk: Buffer): void {
  (this[kPending].chunks ??= []).push(chunk);
}

function onStreamEnd(this: PendingStream): void {
  const pending = this[kPending];
  if (pending.status === undefined) return; // 'close' reports it
  const body = pending.chunks ? Buffer.concat(pending.chunks).toString("utf8") : "";
  pending.settle(null, { status: pending.status, headers: pending.headers, body, sessionId: pending.entry.id });
}

function onStreamError(this: PendingStream, error: Error): void {
  const pending = this[kPending];
  if (pending.done) return;
  // REFUSED_STREAM: the server did not process it (limit lowered, or above GOAWAY's last-stream-id).
  if (this.rstCode === REFUSED_STREAM)
    pending.settle(
      new TransportError("unprocessed", `${pending.entry.authority} refused the stream: ${error.message}`, {
        cause: error,
      }),
    );
  else pending.settle(error);
}

function onStreamClose(this: PendingStream): void {
  const pending = this[kPending];
  // 'close' follows every answer: return before building an Error (its stack trace costs more than a push).
  if (pending.done) return;
  // Reached only when neither 'end' with an answer nor 'error' settled it.
  const { authority } = pending.entry;
  if (this.rstCode === REFUSED_STREAM)
    pending.settle(new TransportError("unprocessed", `${authority} refused the stream (REFUSED_STREAM)`));
  else
    pending.settle(
      new TransportError(
        "connection",
        `${authority} closed the stream without an answer (HTTP/2 code ${this.rstCode})`,
      ),
    );
}

/** Closes `session` once its streams are done, destroying it after `graceMs` if some are not. */
function closeGracefully(session: http2.ClientHttp2Session, graceMs = CLOSE_GRACE_MS): Promise<void> {
  return new Promise((resolve) => {
    if (session.destroyed) return resolve();
    const timer = setTimeout(() => session.destroy(), graceMs).unref();
    session.close(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}
