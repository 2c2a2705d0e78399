// A loopback Web Push service (RFC 8030) over HTTP/2 + TLS on 127.0.0.1: hands out subscriptions (endpoint +
// p256dh/auth, as a browser would get them), checks VAPID (RFC 8292: ES256 JOSE signature by `k`, aud = this
// origin, exp ≤ 24 h, sub), decrypts the aes128gcm body with the subscription's private key (RFC 8291, written
// here independently of the sender) and answers 201, or as scripted per subscription.
import { createDecipheriv, createECDH, createPublicKey, hkdfSync, randomBytes, verify } from "node:crypto";
import http2 from "node:http2";
import { MockHttp2Server } from "./mock-http2-server";

export interface Subscription {
  endpoint: string;
  keys: { p256dh: string; auth: string };
}

export interface WebPushRequest {
  id: string;
  headers: http2.IncomingHttpHeaders;
  /** The decrypted JSON; null for a message without payload (RFC 8030 §5); undefined when decryption failed. */
  payload: any;
  vapid: { aud?: string; sub?: string; exp?: number; publicKey?: string } | null;
  status: number;
}

export class MockWebPush {
  readonly requests: WebPushRequest[] = [];
  private readonly subscriptions = new Map<
    string,
    { ecdh: ReturnType<typeof createECDH>; auth: Buffer; replies: number[] }
  >();
  private server!: MockHttp2Server;

  private constructor() {}

  static async start(options: { caDir: string }): Promise<MockWebPush> {
    const mock = new MockWebPush();
    mock.server = await MockHttp2Server.listen(options.caDir, (stream, headers) => mock.onStream(stream, headers));
    return mock;
  }

  get origin(): string {
    return `https://127.0.0.1:${this.server.port}`;
  }

  /** A new subscription, as PushManager.subscribe() would give it; `replies` are statuses answered in turn. */
  subscribe(...replies: number[]): Subscription {
    const id = randomBytes(12).toString("base64url");
    const ecdh = createECDH("prime256v1");
    ecdh.generateKeys();
    const auth = randomBytes(16);
    this.subscriptions.set(id, { ecdh, auth, replies });
    return {
      endpoint: `${this.origin}/push/${id}`,
      keys: { p256dh: ecdh.getPublicKey().toString("base64url"), auth: auth.toString("base64url") },
    };
  }

  requestsFor(subscription: Subscription): WebPushRequest[] {
    const id = subscription.endpoint.split("/").pop();
    return this.requests.filter((request) => request.id === id);
  }

  async close(): Promise<void> {
    await this.server.close();
  }

  private onStream(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders): void {
    const chunks: Buffer[] = [];
    stream.on("data", (chunk: Buffer) => chunks.push(chunk));
    stream.on("error", () => {});
    stream.on("end", () => {
      const id = String(headers[":path"]).replace(/^\/push\//, "");
      const subscription = this.subscriptions.get(id);
      const vapid = this.checkVapid(headers);
      const record: WebPushRequest = { id, headers, payload: undefined, vapid, status: 0 };
      this.requests.push(record);
      const answer = (status: number) => {
        record.status = status;
        stream.respond({
          ":status": status,
          ...(status === 201 ? { location: `${this.origin}/message/${randomBytes(6).toString("hex")}` } : {}),
        });
        stream.end();
      };
      if (!subscription) return answer(404);
      if (!vapid) return answer(403);
      if (headers.ttl === undefined || !/^\d+$/.test(String(headers.ttl))) return answer(400);
      const body = Buffer.concat(chunks);
      if (body.length === 0 && headers["content-encoding"] === undefined) {
        record.payload = null;
        return answer(this.nextReply(subscription));
      }
      if (headers["content-encoding"] !== "aes128gcm") return answer(415);
      try {
        record.payload = JSON.parse(decrypt(body, subscription.ecdh, subscription.auth).toString("utf8"));
      } catch {
        return answer(400);
      }
      answer(this.nextReply(subscription));
    });
  }

  private nextReply(subscription: { replies: number[] }): number {
    const scripted = subscription.replies.length > 1 ? subscription.replies.shift() : subscription.replies[0];
    return scripted ?? 201;
  }

  /** RFC 8292: `vapid t=<jwt>, k=<key>`; null when missing or invalid. */
  private checkVapid(headers: http2.IncomingHttpHeaders): WebPushRequest["vapid"] {
    const match = /^vapid t=([^,\s]+),\s*k=([A-Za-z0-9_-]+)$/.exec(String(headers.authorization ?? ""));
    if (!match) return null;
    const [headerPart, claimsPart, signaturePart] = match[1].split(".");
    const point = Buffer.from(match[2], "base64url");
    if (point.length !== 65) return null;
    const publicKey = createPublicKey({
      key: {
        kty: "EC",
        crv: "P-256",
        x: point.subarray(1, 33).toString("base64url"),
        y: point.subarray(33).toString("base64url"),
      },
      format: "jwk",
    });
    const signature = Buffer.from(signaturePart ?? "", "base64url");
    // JOSE r||s only: push services reject DER.
    if (signature.length !== 64) return null;
    if (
      !verify(
        "sha256",
        Buffer.from(`${headerPart}.${claimsPart}`),
        { key: publicKey, dsaEncoding: "ieee-p1363" },
        signature,
      )
    )
      return null;
    const header = JSON.parse(Buffer.from(headerPart, "base64url").toString("utf8"));
    const claims = JSON.parse(Buffer.from(claimsPart, "base64url").toString("utf8"));
    const nowSeconds = Date.now() / 1000;
    if (
      header.alg !== "ES256" ||
      claims.aud !== this.origin ||
      typeof claims.exp !== "number" ||
      claims.exp < nowSeconds ||
      claims.exp > nowSeconds + 86400
    )
      return null;
    if (!/^(mailto:|https:)/.test(String(claims.sub))) return null;
    return { aud: claims.aud, sub: claims.sub, exp: claims.exp, publicKey: match[2] };
  }
}

/** RFC 8291 §3 + RFC 8188, receiving side. */
function decrypt(body: Buffer, ecdh: ReturnType<typeof createECDH>, auth: Buffer): Buffer {
  const salt = body.subarray(0, 16);
  const idLength = body.readUInt8(20);
  const senderPublicKey = body.subarray(21, 21 + idLength);
  const ciphertext = body.subarray(21 + idLength);
  const shared = ecdh.computeSecret(senderPublicKey);
  const ikm = Buffer.from(
    hkdfSync(
      "sha256",
      shared,
      auth,
      Buffer.concat([Buffer.from("WebPush: info\0"), ecdh.getPublicKey(), senderPublicKey]),
      32,
    ),
  );
  const key = Buffer.from(hkdfSync("sha256", ikm, salt, Buffer.from("Content-Encoding: aes128gcm\0"), 16));
  const nonce = Buffer.from(hkdfSync("sha256", ikm, salt, Buffer.from("Content-Encoding: nonce\0"), 12));
  const decipher = createDecipheriv("aes-128-gcm", key, nonce);
  decipher.setAuthTag(ciphertext.subarray(ciphertext.length - 16));
  const padded = Buffer.concat([decipher.update(ciphertext.subarray(0, ciphertext.length - 16)), decipher.final()]);
  const delimiter = padded.lastIndexOf(0x02);
  if (delimiter < 0) throw new Error("no padding delimiter");
  return padded.subarray(0, delimiter);
}
