// A loopback APNs for tests: HTTP/2 over TLS on 127.0.0.1 (free ports), client certificates required and
// checked against the test CA (test/support/make-test-ca.mjs). Like Apple it has two environments, each on its
// own host (`host`: production, `sandboxHost`), and knows its devices: a token belongs to one app (bundle id),
// one environment and one kind (PushKit "voip" or "alert"), as the phone got it from iOS (addDevice/newDevice).
// It validates requests the way APNs does (reason strings from Apple's "Handling notification responses from
// APNs"): an unknown token or one of the other environment → 400 BadDeviceToken, a topic that does not fit the
// token's app and kind → 400 DeviceTokenNotForTopic. It records each request, answers 200 with an apns-id, and
// can be scripted per token (a script is the token's state: it answers before the device checks).
import { randomBytes, randomUUID, verify, type KeyObject } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import http2 from "node:http2";
import { MockHttp2Server } from "./mock-http2-server";
import { dirname, join } from "node:path";
import type { TLSSocket } from "node:tls";

/**
 * The test CA directory. Node reads NODE_EXTRA_CA_CERTS only at startup, so the runner must create the CA and
 * export the variable before vitest starts; this fails with the two commands when it did not.
 */
export function testCaDir(): string {
  const caFile = process.env.NODE_EXTRA_CA_CERTS;
  const dir = caFile ? dirname(caFile) : "";
  if (!caFile || !existsSync(caFile) || !existsSync(join(dir, "apple-app.pem"))) {
    throw new Error(
      "TLS tests need the test CA trusted at Node startup: run " +
        "`node test/support/make-test-ca.mjs build/test-ca && NODE_EXTRA_CA_CERTS=$PWD/build/test-ca/ca.pem npx vitest run`",
    );
  }
  return dir;
}

/** Apple's two APNs environments; a development build's tokens are sandbox tokens. */
export type ApnsEnvironment = "production" | "sandbox";

/** A device as iOS gave the app its token: PushKit (`voip`, topic `<bundle>.voip`) or `alert` (topic `<bundle>`). */
export interface MockDevice {
  bundle: string;
  kind: "voip" | "alert";
  environment?: ApnsEnvironment;
}

export interface RecordedRequest {
  /** The host (environment) it was sent to. */
  environment: ApnsEnvironment;
  method: string;
  path: string;
  /** The token from `/3/device/<token>`, decoded. */
  token: string;
  headers: http2.IncomingHttpHeaders;
  rawBody: string;
  /** The parsed JSON body, or undefined when it was not JSON. */
  body: unknown;
  receivedAtMs: number;
  /** Subject of the client certificate, e.g. { CN: "Apple VoIP Services: com.app.mymobileapp", UID: … }. */
  clientSubject: { [field: string]: string | string[] | undefined };
  /** Which TLS connection carried it (1, 2, …): tests count reconnects with it. */
  connectionId: number;
  /** The status the mock answered, or null for a stalled request. */
  status: number | null;
  /** Token auth: the JWT of the `authorization: bearer` header. */
  providerToken?: string;
  /** Streams open on this connection when the request arrived (itself included). */
  activeStreams: number;
}

/** A scripted answer: a status with an APNs reason, or a stall (never answered). */
/** `timestamp`: a 410's (epoch ms), else the time of the answer. `afterMs`: answered that much later (a slow APNs). */
export type MockReply =
  | { status: number; reason?: string; retryAfter?: string; timestamp?: number; afterMs?: number }
  | { stall: true };

/** A token-auth signing key the mock knows: the public half of an AuthKey .p8 and its ids. */
export interface MockSigningKey {
  keyId: string;
  teamId: string;
  publicKey: KeyObject;
}

export interface MockApnsOptions {
  /** Directory made by makeTestCa: ca.pem, server.pem, server.key. */
  caDir: string;
  /** `certificate` (default): client certificates from the test CA; `token`: JWT bearer tokens of `signingKeys`. */
  auth?: "certificate" | "token";
  signingKeys?: MockSigningKey[];
  /** The mock's clock for JWT `iat` checks (epoch ms). */
  now?: () => number;
}

/**
 * APNs raises a token connection's stream limit after its first accepted push (Apple:
 * https://developer.apple.com/documentation/usernotifications/sending-notification-requests-to-apns).
 */
const TOKEN_CONNECTION_INITIAL_STREAMS = 1;
const TOKEN_CONNECTION_STREAMS = 1000;

// APNs limits (sending-notification-requests-to-apns): 5 KB for VoIP, 4 KB for the rest.
const MAX_VOIP_PAYLOAD_BYTES = 5120;
const MAX_PAYLOAD_BYTES = 4096;
const PUSH_TYPE_TOPIC_SUFFIX: { [pushType: string]: string } = {
  alert: "",
  background: "",
  voip: ".voip",
  complication: ".complication",
  fileprovider: ".pushkit.fileprovider",
  location: ".location-query",
  liveactivity: ".push-type.liveactivity",
  pushtotalk: ".voip-ptt",
  mdm: "",
  widgets: "",
};

export class MockApns {
  readonly requests: RecordedRequest[] = [];
  private readonly scripts = new Map<string, MockReply[]>();
  private readonly devices = new Map<string, MockDevice>();
  private readonly stalled = new Set<http2.ServerHttp2Stream>();
  private connections = 0;
  private server!: MockHttp2Server;
  private sandbox!: MockHttp2Server;

  private constructor(private readonly options: MockApnsOptions) {}

  static async start(options: MockApnsOptions): Promise<MockApns> {
    const mock = new MockApns(options);
    mock.server = await mock.listen("production");
    mock.sandbox = await mock.listen("sandbox");
    return mock;
  }

  private listen(environment: ApnsEnvironment): Promise<MockHttp2Server> {
    const token = this.options.auth === "token";
    return MockHttp2Server.listen(
      this.options.caDir,
      (stream, headers) => this.onStream(stream, headers, environment),
      {
        server: {
          ca: readFileSync(join(this.options.caDir, "ca.pem")),
          // Like APNs with certificate auth: no client certificate from our CA, no connection.
          requestCert: !token,
          rejectUnauthorized: !token,
          allowHTTP1: false,
          // Token auth: one stream until a push with a valid token succeeds.
          settings: token ? { maxConcurrentStreams: TOKEN_CONNECTION_INITIAL_STREAMS } : {},
        },
        onSession: (session) => this.onSession(session),
      },
    );
  }

  /** The production host's port. */
  get port(): number {
    return this.server.port;
  }

  /** `host:port` of production, as the helper's config wants it (apps.<app>.apple.host). */
  get host(): string {
    return this.server.host;
  }

  /** `host:port` of the sandbox (apps.<app>.apple.sandboxHost). */
  get sandboxHost(): string {
    return this.sandbox.host;
  }

  /** The config of an app on this mock: `apple` of apps.<app> with both hosts, plus `extra` (credentials…). */
  appleConfig(extra: Record<string, unknown>): Record<string, unknown> {
    return { host: this.host, sandboxHost: this.sandboxHost, ...extra };
  }

  /** Makes `token` a device of `bundle` (production unless said), as iOS would have issued it. */
  addDevice(token: string, device: MockDevice): string {
    this.devices.set(token, { environment: "production", ...device });
    return token;
  }

  /** A new token (64 hex digits, as iOS gives them) for a device of `bundle`. */
  newDevice(bundle: string, kind: "voip" | "alert" = "voip", environment: ApnsEnvironment = "production"): string {
    return this.addDevice(randomBytes(32).toString("hex"), { bundle, kind, environment });
  }

  /** TLS connections accepted so far. */
  get connectionCount(): number {
    return this.connections;
  }

  /**
   * Scripts the answers for one token: each push takes the next reply, the last one repeats.
   * `replyFor(t, {status: 503, reason: "ServiceUnavailable"}, {status: 200})` fails once, then succeeds.
   */
  replyFor(token: string, ...replies: MockReply[]): void {
    this.scripts.set(token, replies);
  }

  /** The requests recorded for one token. */
  requestsFor(token: string): RecordedRequest[] {
    return this.requests.filter((request) => request.token === token);
  }

  /** Distinct provider tokens (JWTs) seen so far. */
  get providerTokens(): string[] {
    return [
      ...new Set(this.requests.map((request) => request.providerToken).filter((token): token is string => !!token)),
    ];
  }

  /** Requests on hold (scripted stalls) right now. */
  get stalledCount(): number {
    return this.stalled.size;
  }

  /**
   * GOAWAY on each connection with stalled requests, its last-stream-id just below the first stalled stream:
   * those requests were "not processed" and the client must send them again on a new connection.
   */
  goAwayRefusingStalled(): void {
    for (const session of this.sessions()) {
      const ids = [...this.stalled].filter((stream) => stream.session === session).map((stream) => stream.id ?? 0);
      if (ids.length === 0) continue;
      session.goaway(
        http2.constants.NGHTTP2_NO_ERROR,
        Math.min(...ids) - 2,
        Buffer.from(JSON.stringify({ reason: "Shutdown" })),
      );
    }
  }

  /** Sends GOAWAY on every open connection, as APNs does before closing one. */
  goAwayAll(reason = "Shutdown"): void {
    for (const session of this.sessions()) {
      session.goaway(http2.constants.NGHTTP2_NO_ERROR, 0, Buffer.from(JSON.stringify({ reason })));
    }
  }

  async close(): Promise<void> {
    for (const stream of this.stalled) stream.close(http2.constants.NGHTTP2_CANCEL);
    await Promise.all([this.server.close(), this.sandbox.close()]);
  }

  private sessions(): http2.ServerHttp2Session[] {
    return [...this.server.sessions, ...this.sandbox.sessions];
  }

  private onSession(session: http2.ServerHttp2Session): void {
    this.connections++;
    const connectionId = this.connections;
    (session as http2.ServerHttp2Session & { connectionId?: number }).connectionId = connectionId;
    (session as http2.ServerHttp2Session & { activeStreams?: number }).activeStreams = 0;
  }

  private nextReply(token: string): MockReply | undefined {
    const replies = this.scripts.get(token);
    if (!replies || replies.length === 0) return undefined;
    return replies.length > 1 ? replies.shift() : replies[0];
  }

  private onStream(
    stream: http2.ServerHttp2Stream,
    headers: http2.IncomingHttpHeaders,
    environment: ApnsEnvironment,
  ): void {
    const counted = stream.session as (http2.ServerHttp2Session & { activeStreams?: number }) | undefined;
    if (counted) counted.activeStreams = (counted.activeStreams ?? 0) + 1;
    const activeStreams = counted?.activeStreams ?? 0;
    stream.on("close", () => {
      if (counted) counted.activeStreams = (counted.activeStreams ?? 1) - 1;
    });
    const chunks: Buffer[] = [];
    stream.on("data", (chunk: Buffer) => chunks.push(chunk));
    stream.on("error", () => {});
    stream.on("end", () => {
      const rawBody = Buffer.concat(chunks).toString("utf8");
      const path = String(headers[":path"] ?? "");
      const deviceMatch = /^\/3\/device\/(.*)$/.exec(path);
      let body: unknown;
      try {
        body = JSON.parse(rawBody);
      } catch {
        body = undefined;
      }
      const socket = stream.session?.socket as TLSSocket | undefined;
      const record: RecordedRequest = {
        environment,
        method: String(headers[":method"]),
        path,
        token: deviceMatch ? decodeURIComponent(deviceMatch[1]) : "",
        headers,
        rawBody,
        body,
        receivedAtMs: Date.now(),
        clientSubject: { ...(socket?.getPeerCertificate().subject ?? {}) },
        connectionId:
          (stream.session as (http2.ServerHttp2Session & { connectionId?: number }) | undefined)?.connectionId ?? 0,
        status: null,
        activeStreams,
      };
      this.requests.push(record);

      const rejection = this.validate(record, Buffer.byteLength(rawBody));
      const reply: MockReply = rejection ?? this.nextReply(record.token) ?? this.checkDevice(record) ?? { status: 200 };
      if ("stall" in reply) {
        this.stalled.add(stream);
        stream.on("close", () => this.stalled.delete(stream));
        return;
      }
      if (reply.afterMs) {
        const { afterMs, ...later } = reply;
        setTimeout(() => this.replyLater(stream, headers, record, later), afterMs).unref();
        return;
      }
      record.status = reply.status;
      this.answer(stream, headers, reply);
      // A token connection gets its full stream limit once a push with a valid token succeeded.
      const session = stream.session as (http2.ServerHttp2Session & { raised?: boolean }) | undefined;
      if (this.options.auth === "token" && reply.status === 200 && session && !session.raised) {
        session.raised = true;
        session.settings({ maxConcurrentStreams: TOKEN_CONNECTION_STREAMS });
      }
    });
  }

  private replyLater(
    stream: http2.ServerHttp2Stream,
    headers: http2.IncomingHttpHeaders,
    record: RecordedRequest,
    reply: { status: number; reason?: string; retryAfter?: string; timestamp?: number },
  ): void {
    if (stream.closed) return;
    record.status = reply.status;
    this.answer(stream, headers, reply);
  }

  /** APNs' own checks, in pushy's order: method, topic, push type, path/token, payload. */
  private validate(record: RecordedRequest, bodyBytes: number): MockReply | null {
    if (record.method !== "POST") return { status: 405, reason: "MethodNotAllowed" };
    const topic = record.headers["apns-topic"];
    if (typeof topic !== "string" || topic === "") return { status: 400, reason: "MissingTopic" };
    const pushType = typeof record.headers["apns-push-type"] === "string" ? record.headers["apns-push-type"] : "alert";
    const suffix = PUSH_TYPE_TOPIC_SUFFIX[pushType];
    if (suffix === undefined) return { status: 400, reason: "InvalidPushType" };
    const priority = record.headers["apns-priority"];
    if (priority !== undefined && !["1", "5", "10"].includes(String(priority)))
      return { status: 400, reason: "BadPriority" };
    // Apple, apns-push-type background: "Always use priority 5. Using priority 10 is an error." Which reason APNs
    // answers is not documented; BadPriority is its error table's word for a bad apns-priority (sending-notification-
    // requests-to-apns, handling-notification-responses-from-apns).
    if (pushType === "background" && String(priority ?? "10") === "10") return { status: 400, reason: "BadPriority" };
    const expiration = record.headers["apns-expiration"];
    if (expiration !== undefined && !/^\d+$/.test(String(expiration)))
      return { status: 400, reason: "BadExpirationDate" };
    // Certificate auth: the certificate's UID is the bundle id; only its own topics are allowed, with the
    // suffix the push type requires (the .voip rule).
    const bundleId = record.clientSubject.UID;
    if (typeof bundleId === "string" && topic !== bundleId + suffix) return { status: 400, reason: "BadTopic" };
    // Token auth: any topic of the team, but the suffix must fit the push type.
    if (this.options.auth === "token" && (suffix ? !topic.endsWith(suffix) : topic.endsWith(".voip")))
      return { status: 400, reason: "BadTopic" };
    if (!/^\/3\/device\//.test(record.path)) return { status: 404, reason: "BadPath" };
    if (record.token === "") return { status: 400, reason: "MissingDeviceToken" };
    if (this.options.auth === "token") {
      const refused = this.checkProviderToken(record);
      if (refused) return refused;
    }
    if (bodyBytes === 0) return { status: 400, reason: "PayloadEmpty" };
    if (bodyBytes > (pushType === "voip" ? MAX_VOIP_PAYLOAD_BYTES : MAX_PAYLOAD_BYTES))
      return { status: 413, reason: "PayloadTooLarge" };
    // Apple documents no reason for a body that is not JSON; the mock uses its own word for it.
    if (record.body === undefined || typeof record.body !== "object" || record.body === null)
      return { status: 400, reason: "BadPayload" };
    return null;
  }

  /**
   * Apple's device checks: a token APNs never issued, or one of the other environment, is a BadDeviceToken; a
   * topic that is not the token's app with the suffix of its kind (`.voip` for PushKit) is DeviceTokenNotForTopic.
   */
  private checkDevice(record: RecordedRequest): MockReply | null {
    const device = this.devices.get(record.token);
    if (!device || device.environment !== record.environment) return { status: 400, reason: "BadDeviceToken" };
    const topic = String(record.headers["apns-topic"]);
    if (topic !== (device.kind === "voip" ? `${device.bundle}.voip` : device.bundle))
      return { status: 400, reason: "DeviceTokenNotForTopic" };
    return null;
  }

  /**
   * APNs' JWT rules (https://developer.apple.com/documentation/usernotifications/establishing-a-token-based-connection-to-apns):
   * ES256, known kid, iss = its team, signature (JOSE or DER), iat < 1 h old.
   */
  private checkProviderToken(record: RecordedRequest): MockReply | null {
    const authorization = record.headers.authorization;
    const match = typeof authorization === "string" ? /^bearer\s+(\S+)$/i.exec(authorization) : null;
    if (!match) return { status: 403, reason: "MissingProviderToken" };
    const jwt = match[1];
    record.providerToken = jwt;
    const [headerPart, claimsPart, signaturePart] = jwt.split(".");
    let header: { alg?: unknown; kid?: unknown };
    let claims: { iss?: unknown; iat?: unknown };
    try {
      header = JSON.parse(Buffer.from(headerPart, "base64url").toString("utf8"));
      claims = JSON.parse(Buffer.from(claimsPart, "base64url").toString("utf8"));
    } catch {
      return { status: 403, reason: "InvalidProviderToken" };
    }
    const key = (this.options.signingKeys ?? []).find((candidate) => candidate.keyId === header.kid);
    if (header.alg !== "ES256" || !key || claims.iss !== key.teamId || typeof claims.iat !== "number")
      return { status: 403, reason: "InvalidProviderToken" };
    const signature = Buffer.from(signaturePart ?? "", "base64url");
    const valid = verify(
      "sha256",
      Buffer.from(`${headerPart}.${claimsPart}`),
      { key: key.publicKey, dsaEncoding: signature.length === 64 ? "ieee-p1363" : "der" },
      signature,
    );
    if (!valid) return { status: 403, reason: "InvalidProviderToken" };
    const nowSeconds = (this.options.now ?? Date.now)() / 1000;
    if (nowSeconds - claims.iat > 3600) return { status: 403, reason: "ExpiredProviderToken" };
    return null;
  }

  private answer(
    stream: http2.ServerHttp2Stream,
    headers: http2.IncomingHttpHeaders,
    reply: { status: number; reason?: string; retryAfter?: string; timestamp?: number },
  ): void {
    const { status, reason, retryAfter } = reply;
    const apnsId = typeof headers["apns-id"] === "string" ? headers["apns-id"] : randomUUID();
    if (status === 200) {
      stream.respond({ ":status": 200, "apns-id": apnsId }, { endStream: true });
      return;
    }
    // 410 carries the time APNs learnt the token was invalid, in epoch milliseconds.
    const errorBody = status === 410 ? { reason, timestamp: reply.timestamp ?? Date.now() } : { reason };
    stream.respond({
      ":status": status,
      "apns-id": apnsId,
      "content-type": "application/json",
      ...(retryAfter ? { "retry-after": retryAfter } : {}),
    });
    stream.end(JSON.stringify(errorBody));
  }
}
