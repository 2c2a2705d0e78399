// A loopback FCM HTTP v1 API and Google OAuth token endpoint in one HTTP/2 + TLS server on 127.0.0.1 (free port),
// trusted through NODE_EXTRA_CA_CERTS like the mock APNs. The token endpoint verifies the RS256 assertion of a
// service account made by the test (its `token_uri` points here) and issues access tokens; the FCM endpoint
// checks them, validates messages as FCM does (string data values, priority, ttl) and answers as scripted per
// device token.
import { generateKeyPairSync, randomBytes, verify, type KeyObject } from "node:crypto";
import { writeFileSync } from "node:fs";
import http2 from "node:http2";
import { join } from "node:path";
import { MockHttp2Server } from "./mock-http2-server";

export interface FcmRequest {
  project: string;
  headers: http2.IncomingHttpHeaders;
  body: any;
  receivedAtMs: number;
  status: number | null;
}

/** A scripted FCM answer: a google.rpc.Status with an FcmError errorCode, or a stall. `afterMs`: answered that much
 * later (a slow FCM). */
export type FcmReply =
  | {
      status: number;
      errorCode?: string;
      errorStatus?: string;
      message?: string;
      retryAfter?: string;
      afterMs?: number;
    }
  | { stall: true };
export type OAuthReply = { status: number; error?: string; description?: string };

interface Account {
  clientEmail: string;
  projectId: string;
  publicKey: KeyObject;
}

export class MockFcm {
  readonly requests: FcmRequest[] = [];
  /** Token endpoint requests, accepted or not. */
  tokenRequests = 0;
  /** Seconds the issued access tokens live. */
  expiresInSeconds = 3599;
  private readonly accounts: Account[] = [];
  private readonly accessTokens = new Map<string, { account: Account; expiresAtMs: number }>();
  private readonly scripts = new Map<string, FcmReply[]>();
  private oauthScript: OAuthReply[] = [];
  private readonly stalled = new Set<http2.ServerHttp2Stream>();
  private server!: MockHttp2Server;

  private constructor() {}

  static async start(options: { caDir: string }): Promise<MockFcm> {
    const mock = new MockFcm();
    mock.server = await MockHttp2Server.listen(options.caDir, (stream, headers) => mock.onStream(stream, headers));
    return mock;
  }

  get port(): number {
    return this.server.port;
  }

  get host(): string {
    return `127.0.0.1:${this.port}`;
  }

  get tokenUri(): string {
    return `https://127.0.0.1:${this.port}/token`;
  }

  /** Writes a fresh service account JSON for `projectId` whose token_uri is this mock; returns its path. */
  createServiceAccount(dir: string, projectId: string, name = projectId): string {
    const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
    const clientEmail = `pusher@${name}.iam.gserviceaccount.com`;
    this.accounts.push({ clientEmail, projectId, publicKey });
    const file = join(dir, `${name}.service-account.json`);
    writeFileSync(
      file,
      JSON.stringify({
        type: "service_account",
        project_id: projectId,
        private_key_id: randomBytes(20).toString("hex"),
        private_key: privateKey.export({ type: "pkcs8", format: "pem" }),
        client_email: clientEmail,
        client_id: "1234567890",
        auth_uri: "https://accounts.google.com/o/oauth2/auth",
        token_uri: this.tokenUri,
      }),
    );
    return file;
  }

  /** Scripts the answers for one device token: each message takes the next reply, the last one repeats. */
  replyFor(token: string, ...replies: FcmReply[]): void {
    this.scripts.set(token, replies);
  }

  /** Scripts the token endpoint's next answers (then back to normal). */
  oauthReplies(...replies: OAuthReply[]): void {
    this.oauthScript = replies;
  }

  /** Makes every issued access token invalid (FCM then answers 401). */
  revokeAccessTokens(): void {
    this.accessTokens.clear();
  }

  requestsFor(token: string): FcmRequest[] {
    return this.requests.filter((request) => request.body?.message?.token === token);
  }

  async close(): Promise<void> {
    for (const stream of this.stalled) stream.close(http2.constants.NGHTTP2_CANCEL);
    await this.server.close();
  }

  private onStream(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders): void {
    const chunks: Buffer[] = [];
    stream.on("data", (chunk: Buffer) => chunks.push(chunk));
    stream.on("error", () => {});
    stream.on("end", () => {
      const text = Buffer.concat(chunks).toString("utf8");
      const path = String(headers[":path"]);
      if (path === "/token") return this.onToken(stream, text);
      const match = /^\/v1\/projects\/([^/]+)\/messages:send$/.exec(path);
      if (!match || headers[":method"] !== "POST") return json(stream, 404, googleError(404, "NOT_FOUND", "Not found"));
      this.onSend(stream, headers, decodeURIComponent(match[1]), text);
    });
  }

  private onToken(stream: http2.ServerHttp2Stream, text: string): void {
    this.tokenRequests++;
    const scripted = this.oauthScript.shift();
    if (scripted)
      return json(stream, scripted.status, {
        error: scripted.error ?? "server_error",
        error_description: scripted.description ?? "",
      });
    const form = new URLSearchParams(text);
    if (form.get("grant_type") !== "urn:ietf:params:oauth:grant-type:jwt-bearer")
      return json(stream, 400, { error: "unsupported_grant_type" });
    const assertion = form.get("assertion") ?? "";
    const [headerPart, claimsPart, signaturePart] = assertion.split(".");
    const invalid = (why: string) =>
      json(stream, 400, { error: "invalid_grant", error_description: `Invalid JWT: ${why}` });
    let header: any;
    let claims: any;
    try {
      header = JSON.parse(Buffer.from(headerPart, "base64url").toString("utf8"));
      claims = JSON.parse(Buffer.from(claimsPart, "base64url").toString("utf8"));
    } catch {
      return invalid("not a JWT");
    }
    const account = this.accounts.find((candidate) => candidate.clientEmail === claims.iss);
    if (header.alg !== "RS256" || !account) return invalid("unknown issuer or algorithm");
    if (
      !verify(
        "sha256",
        Buffer.from(`${headerPart}.${claimsPart}`),
        account.publicKey,
        Buffer.from(signaturePart ?? "", "base64url"),
      )
    )
      return invalid("bad signature");
    if (claims.aud !== this.tokenUri) return invalid(`aud must be ${this.tokenUri}`);
    if (!String(claims.scope).split(" ").includes("https://www.googleapis.com/auth/firebase.messaging"))
      return invalid("scope");
    if (typeof claims.iat !== "number" || typeof claims.exp !== "number" || claims.exp - claims.iat > 3600) {
      return invalid("Token must be a short-lived token (60 minutes) and in a reasonable timeframe");
    }
    const accessToken = `ya29.${randomBytes(24).toString("base64url")}`;
    this.accessTokens.set(accessToken, { account, expiresAtMs: Date.now() + this.expiresInSeconds * 1000 });
    json(stream, 200, { access_token: accessToken, expires_in: this.expiresInSeconds, token_type: "Bearer" });
  }

  private onSend(
    stream: http2.ServerHttp2Stream,
    headers: http2.IncomingHttpHeaders,
    project: string,
    text: string,
  ): void {
    let body: any;
    try {
      body = JSON.parse(text);
    } catch {
      body = undefined;
    }
    const record: FcmRequest = { project, headers, body, receivedAtMs: Date.now(), status: null };
    this.requests.push(record);
    const answer = (status: number, payload: unknown, extra: http2.OutgoingHttpHeaders = {}) => {
      record.status = status;
      json(stream, status, payload, extra);
    };
    const bearer = /^Bearer (\S+)$/.exec(String(headers.authorization ?? ""));
    if (!bearer)
      return answer(
        401,
        googleError(
          401,
          "UNAUTHENTICATED",
          "Request is missing required authentication credential. Expected OAuth 2 access token",
        ),
      );
    const issued = this.accessTokens.get(bearer[1]);
    if (!issued || issued.expiresAtMs < Date.now()) {
      return answer(401, googleError(401, "UNAUTHENTICATED", "Request had invalid authentication credentials."), {
        "www-authenticate": 'Bearer realm="https://accounts.google.com/", error="invalid_token"',
      });
    }
    // FCM's answer for a project the service account has no rights on (or that does not exist): 403, no FcmError.
    if (issued.account.projectId !== project) {
      return answer(
        403,
        googleError(
          403,
          "PERMISSION_DENIED",
          `Permission 'cloudmessaging.messages.create' denied on resource '//cloudresourcemanager.googleapis.com/projects/${project}' (or it may not exist).`,
        ),
      );
    }
    const message = body?.message;
    if (!message || typeof message.token !== "string")
      return answer(400, googleError(400, "INVALID_ARGUMENT", "message.token is required", "INVALID_ARGUMENT"));
    const data = message.data ?? {};
    const keys = Object.keys(data);
    for (let index = 0; index < keys.length; index++) {
      if (typeof data[keys[index]] !== "string") {
        return answer(
          400,
          googleError(
            400,
            "INVALID_ARGUMENT",
            `Invalid value at 'message.data[${index}].value' (TYPE_STRING), ${JSON.stringify(data[keys[index]])}`,
          ),
        );
      }
      if (keys[index] === "from" || keys[index] === "message_type" || keys[index].startsWith("google.")) {
        return answer(
          400,
          googleError(400, "INVALID_ARGUMENT", `reserved data key ${keys[index]}`, "INVALID_ARGUMENT"),
        );
      }
    }
    const dataBytes = keys.reduce((sum, key) => sum + Buffer.byteLength(key) + Buffer.byteLength(data[key]), 0);
    if (dataBytes > 4096)
      return answer(400, googleError(400, "INVALID_ARGUMENT", "Message is too big", "INVALID_ARGUMENT"));
    const android = message.android ?? {};
    if (android.priority !== undefined && !/^(normal|high)$/i.test(android.priority))
      return answer(400, googleError(400, "INVALID_ARGUMENT", "android.priority", "INVALID_ARGUMENT"));
    if (android.ttl !== undefined && !/^\d+(\.\d{1,9})?s$/.test(android.ttl))
      return answer(400, googleError(400, "INVALID_ARGUMENT", "android.ttl", "INVALID_ARGUMENT"));

    const replies = this.scripts.get(message.token);
    const reply = replies && replies.length ? (replies.length > 1 ? replies.shift()! : replies[0]) : undefined;
    if (reply && "stall" in reply) {
      this.stalled.add(stream);
      stream.on("close", () => this.stalled.delete(stream));
      return;
    }
    if (reply?.afterMs) {
      const { afterMs, ...later } = reply;
      setTimeout(() => this.answerScripted(later, project, answer), afterMs).unref();
      return;
    }
    this.answerScripted(reply, project, answer);
  }

  private answerScripted(
    reply:
      | { status: number; errorCode?: string; errorStatus?: string; message?: string; retryAfter?: string }
      | undefined,
    project: string,
    answer: (status: number, payload: unknown, extra?: http2.OutgoingHttpHeaders) => void,
  ): void {
    if (!reply || reply.status === 200)
      return answer(200, { name: `projects/${project}/messages/${randomBytes(8).toString("hex")}` });
    answer(
      reply.status,
      googleError(
        reply.status,
        reply.errorStatus ?? "INVALID_ARGUMENT",
        reply.message ?? "scripted error",
        reply.errorCode,
      ),
      reply.retryAfter ? { "retry-after": reply.retryAfter } : {},
    );
  }
}

function googleError(code: number, status: string, message: string, errorCode?: string) {
  const error: any = { code, message, status };
  if (errorCode) error.details = [{ "@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", errorCode }];
  return { error };
}

function json(
  stream: http2.ServerHttp2Stream,
  status: number,
  payload: unknown,
  extra: http2.OutgoingHttpHeaders = {},
): void {
  if (stream.destroyed) return;
  stream.respond({ ":status": status, "content-type": "application/json; charset=UTF-8", ...extra });
  stream.end(JSON.stringify(payload));
}
