// The mock APNs of benchmark 4 (helper throughput): HTTP/2 over TLS with the test CA's server certificate on two
// loopback ports, production and sandbox, token auth only, and the devices of apns-fleet.ts. It is as strict as
// test/support/mock-apns.ts about a push's headers, and stricter about credentials: a token unknown or of the
// other environment → 400 BadDeviceToken, a topic that is not the token's bundle with its kind's suffix
// (`.voip` for PushKit) → 400 DeviceTokenNotForTopic, a provider token (JWT) whose team is not the topic's app's
// → 400 TopicDisallowed, a JWT that is missing, unsigned by a known key or over an hour old → 403.
// Like Apple (https://developer.apple.com/documentation/usernotifications/sending-notification-requests-to-apns)
// a connection allows 1 stream until its first push succeeds, then SETTINGS_MAX_CONCURRENT_STREAMS = 1 000.
// It counts, from the server's side, the connections each client opened: host, keys used, streams, and the
// most streams open at once (what a pool does, measured rather than assumed). It keeps no request: a JWT is
// verified once and then looked up, so the mock's own cost stays small next to the client's.
import { createPrivateKey, createPublicKey, randomUUID, verify, type KeyObject } from "node:crypto";
import { readFileSync } from "node:fs";
import type http2 from "node:http2";
import { join } from "node:path";
import { MockHttp2Server } from "../../test/support/mock-http2-server";
import {
  FLEET_APPS,
  FLEET_DEVICES,
  fleetApp,
  fleetDevice,
  fleetKeyFile,
  type FleetDevice,
  type FleetEnvironment,
} from "./apns-fleet";

/** Apple's per-connection stream limit once a token connection is trusted. */
export const MAX_CONCURRENT_STREAMS = 1000;
const INITIAL_STREAMS = 1;
const MAX_VOIP_PAYLOAD_BYTES = 5120;
const MAX_PAYLOAD_BYTES = 4096;
const PUSH_TYPE_TOPIC_SUFFIX: { [pushType: string]: string } = { alert: "", background: "", voip: ".voip" };
/** Verified JWTs kept (a client renews its JWT every 20–60 min: a handful per run). */
const MAX_VERIFIED_JWTS = 1000;

/** One connection as the server saw it. */
export interface FleetConnection {
  environment: FleetEnvironment;
  /** `teamId:keyId` of the JWTs it carried. */
  keys: string[];
  streams: number;
  /** The most streams open at once (≤ its SETTINGS_MAX_CONCURRENT_STREAMS). */
  maxActiveStreams: number;
}

export interface FleetStats {
  /** Pushes answered 200. */
  pushes: number;
  /** Refused pushes by APNs reason. */
  rejected: { [reason: string]: number };
  /** Connections opened since the last takeStats(). */
  connections: FleetConnection[];
}

interface ConnectionState extends FleetConnection {
  activeStreams: number;
  raised: boolean;
}

interface VerifiedJwt {
  teamId: string;
  keyId: string;
  issuedAtSeconds: number;
}

type Reply = { status: number; reason: string };

export class FleetApns {
  private readonly devices = new Map<string, FleetDevice>();
  private readonly teamOfBundle = new Map<string, string>();
  private readonly signingKeys = new Map<string, { teamId: string; publicKey: KeyObject }>();
  private readonly verified = new Map<string, VerifiedJwt>();
  private readonly connections = new WeakMap<http2.Http2Session, ConnectionState>();
  private stats: FleetStats = { pushes: 0, rejected: {}, connections: [] };
  private production!: MockHttp2Server;
  private sandbox!: MockHttp2Server;

  private constructor(keyDir: string) {
    for (let n = 0; n < FLEET_DEVICES; n++) {
      const device = fleetDevice(n);
      this.devices.set(device.token, device);
    }
    for (let index = 0; index < FLEET_APPS; index++) {
      const app = fleetApp(index);
      this.teamOfBundle.set(app.bundle, app.teamId);
      const publicKey = createPublicKey(createPrivateKey(readFileSync(fleetKeyFile(keyDir, app))));
      this.signingKeys.set(app.keyId, { teamId: app.teamId, publicKey });
    }
  }

  /** `keyDir` holds each fleet app's AuthKey .p8 (the mock needs their public halves). */
  static async start(caDir: string, keyDir: string): Promise<FleetApns> {
    const mock = new FleetApns(keyDir);
    mock.production = await mock.listen(caDir, "production");
    mock.sandbox = await mock.listen(caDir, "sandbox");
    return mock;
  }

  /** `host:port` of production and of the sandbox, as the helper's config wants them. */
  get hosts(): { [environment in FleetEnvironment]: string } {
    return { production: this.production.host, sandbox: this.sandbox.host };
  }

  /** What happened since the last call (one client run), and starts counting afresh. */
  takeStats(): FleetStats {
    const stats = this.stats;
    this.stats = { pushes: 0, rejected: {}, connections: [] };
    return {
      ...stats,
      connections: stats.connections.map(({ environment, keys, streams, maxActiveStreams }) => ({
        environment,
        keys: [...keys],
        streams,
        maxActiveStreams,
      })),
    };
  }

  async close(): Promise<void> {
    await Promise.all([this.production.close(), this.sandbox.close()]);
  }

  private listen(caDir: string, environment: FleetEnvironment): Promise<MockHttp2Server> {
    return MockHttp2Server.listen(caDir, (stream, headers) => this.onStream(stream, headers, environment), {
      server: {
        ca: readFileSync(join(caDir, "ca.pem")),
        allowHTTP1: false,
        settings: { maxConcurrentStreams: INITIAL_STREAMS },
      },
      onSession: (session) => {
        const state: ConnectionState = {
          environment,
          keys: [],
          streams: 0,
          maxActiveStreams: 0,
          activeStreams: 0,
          raised: false,
        };
        this.connections.set(session, state);
        this.stats.connections.push(state);
      },
    });
  }

  private onStream(
    stream: http2.ServerHttp2Stream,
    headers: http2.IncomingHttpHeaders,
    environment: FleetEnvironment,
  ): void {
    const session = stream.session;
    const connection = session ? this.connections.get(session) : undefined;
    if (connection) {
      connection.streams++;
      if (++connection.activeStreams > connection.maxActiveStreams)
        connection.maxActiveStreams = connection.activeStreams;
      stream.on("close", () => connection.activeStreams--);
    }
    const chunks: Buffer[] = [];
    stream.on("error", () => {});
    stream.on("data", (chunk: Buffer) => chunks.push(chunk));
    stream.on("end", () => {
      // The client gave up on it (RST_STREAM, e.g. its timeout) as its last bytes arrived: nothing to answer.
      if (stream.destroyed || stream.closed) return;
      const body = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks);
      const refused = this.check(headers, body, environment, connection);
      if (refused) {
        this.stats.rejected[refused.reason] = (this.stats.rejected[refused.reason] ?? 0) + 1;
        stream.respond({ ":status": refused.status, "apns-id": randomUUID(), "content-type": "application/json" });
        stream.end(JSON.stringify({ reason: refused.reason }));
        return;
      }
      this.stats.pushes++;
      stream.respond({ ":status": 200, "apns-id": randomUUID() }, { endStream: true });
      // A token connection gets its full stream limit once a push with a valid token succeeded.
      if (session && connection && !connection.raised) {
        connection.raised = true;
        session.settings({ maxConcurrentStreams: MAX_CONCURRENT_STREAMS });
      }
    });
  }

  /** APNs' checks in pushy's order (as test/support/mock-apns.ts), then the device's and the key's. */
  private check(
    headers: http2.IncomingHttpHeaders,
    body: Buffer,
    environment: FleetEnvironment,
    connection: ConnectionState | undefined,
  ): Reply | null {
    if (headers[":method"] !== "POST") return { status: 405, reason: "MethodNotAllowed" };
    const topic = headers["apns-topic"];
    if (typeof topic !== "string" || topic === "") return { status: 400, reason: "MissingTopic" };
    const pushType = typeof headers["apns-push-type"] === "string" ? headers["apns-push-type"] : "alert";
    const suffix = PUSH_TYPE_TOPIC_SUFFIX[pushType];
    if (suffix === undefined) return { status: 400, reason: "InvalidPushType" };
    const priority = headers["apns-priority"];
    if (priority !== undefined && priority !== "10" && priority !== "5" && priority !== "1")
      return { status: 400, reason: "BadPriority" };
    if (pushType === "background" && priority !== "5") return { status: 400, reason: "BadPriority" };
    const expiration = headers["apns-expiration"];
    if (expiration !== undefined && !/^\d+$/.test(String(expiration)))
      return { status: 400, reason: "BadExpirationDate" };
    if (suffix ? !topic.endsWith(suffix) : topic.endsWith(".voip")) return { status: 400, reason: "BadTopic" };
    const path = String(headers[":path"] ?? "");
    if (!path.startsWith("/3/device/")) return { status: 404, reason: "BadPath" };
    const token = decodeURIComponent(path.slice("/3/device/".length));
    if (token === "") return { status: 400, reason: "MissingDeviceToken" };
    const jwt = this.providerToken(headers.authorization);
    if ("status" in jwt) return jwt;
    const keyName = `${jwt.teamId}:${jwt.keyId}`;
    if (connection && !connection.keys.includes(keyName)) connection.keys.push(keyName);
    if (body.length === 0) return { status: 400, reason: "PayloadEmpty" };
    if (body.length > (pushType === "voip" ? MAX_VOIP_PAYLOAD_BYTES : MAX_PAYLOAD_BYTES))
      return { status: 413, reason: "PayloadTooLarge" };
    let payload: unknown;
    try {
      payload = JSON.parse(body.toString("utf8"));
    } catch {
      payload = undefined;
    }
    if (typeof payload !== "object" || payload === null) return { status: 400, reason: "BadPayload" };
    const device = this.devices.get(token);
    if (!device || device.environment !== environment) return { status: 400, reason: "BadDeviceToken" };
    const bundle = fleetApp(device.app).bundle;
    if (topic !== (device.kind === "voip" ? `${bundle}.voip` : bundle))
      return { status: 400, reason: "DeviceTokenNotForTopic" };
    // A key pushes only to its own team's apps.
    if (this.teamOfBundle.get(bundle) !== jwt.teamId) return { status: 400, reason: "TopicDisallowed" };
    return null;
  }

  /** ES256, a known kid, iss = its team, a valid signature (JOSE or DER), iat < 1 h old; verified once per JWT. */
  private providerToken(authorization: string | string[] | undefined): VerifiedJwt | Reply {
    if (typeof authorization !== "string" || !authorization.startsWith("bearer "))
      return { status: 403, reason: "MissingProviderToken" };
    const jwt = authorization.slice("bearer ".length);
    let verified = this.verified.get(jwt);
    if (!verified) {
      const [headerPart, claimsPart, signaturePart] = jwt.split(".");
      let header: { alg?: unknown; kid?: unknown };
      let claims: { iss?: unknown; iat?: unknown };
      try {
        header = JSON.parse(Buffer.from(headerPart, "base64url").toString("utf8"));
        claims = JSON.parse(Buffer.from(claimsPart, "base64url").toString("utf8"));
      } catch {
        return { status: 403, reason: "InvalidProviderToken" };
      }
      const key = typeof header.kid === "string" ? this.signingKeys.get(header.kid) : undefined;
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
      if (this.verified.size >= MAX_VERIFIED_JWTS) this.verified.clear();
      verified = { teamId: key.teamId, keyId: header.kid as string, issuedAtSeconds: claims.iat };
      this.verified.set(jwt, verified);
    }
    if (Date.now() / 1000 - verified.issuedAtSeconds > 3600) return { status: 403, reason: "ExpiredProviderToken" };
    return verified;
  }
}
