// Google OAuth2 access tokens for FCM HTTP v1, from a service-account JSON, with node:crypto and node:http2 only
// (https://developers.google.com/identity/protocols/oauth2/service-account): an RS256 assertion POSTed to the
// account's own `token_uri` (honoured, never hard-coded, so a private endpoint or a test mock works), the token
// cached until 5 minutes before it expires.
import { createPrivateKey } from "node:crypto";
import { readFileSync } from "node:fs";
import { signJwt } from "./jwt";
import {
  classifyOAuthResponse,
  classifyTransportError,
  PusherError,
  retryAfterMs,
  type Classification,
} from "./provider-errors";
import type { ProviderSessions } from "./provider-sessions";

export const FCM_SCOPE = "https://www.googleapis.com/auth/firebase.messaging";
/** Renew this long before `expires_in` runs out. */
export const ACCESS_TOKEN_MARGIN_MS = 5 * 60_000;
/** Google: `exp` at most one hour after `iat`. */
const ASSERTION_LIFETIME_SECONDS = 3600;
const JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer";

export interface ServiceAccount {
  projectId: string;
  clientEmail: string;
  privateKey: string;
  privateKeyId?: string;
  tokenUri: string;
}

/**
 * A legacy FCM server key (`AAAA…:APA91b…`, or an `AIza…` API key) given where a service account is expected.
 * The legacy API (`/fcm/send`, `Authorization: key=…`) was shut down in 2024
 * (https://firebase.google.com/docs/cloud-messaging/migrate-v1).
 */
export function looksLikeLegacyServerKey(text: string): boolean {
  const trimmed = text.trim().replace(/^key=/, "");
  return /^AAAA[A-Za-z0-9_-]{3,}:APA91b[A-Za-z0-9_-]+$/.test(trimmed) || /^AIza[A-Za-z0-9_-]{30,}$/.test(trimmed);
}

export const LEGACY_KEY_MESSAGE =
  "this is a legacy FCM server key, but Google shut the legacy FCM API down in 2024: FCM HTTP v1 needs a service account JSON " +
  "(Firebase console → Project settings → Service accounts → Generate new private key)";

/** Parses and checks a service-account JSON. Throws PusherError (PUSHER_ERR_FCM_CREDENTIALS or _LEGACY_KEY). */
export function parseServiceAccount(text: string, source: string): ServiceAccount {
  if (looksLikeLegacyServerKey(text))
    throw new PusherError("PUSHER_ERR_FCM_LEGACY_KEY", `${source}: ${LEGACY_KEY_MESSAGE}`);
  let json: { [key: string]: unknown };
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new PusherError("PUSHER_ERR_FCM_CREDENTIALS", `${source} is not JSON: ${(error as Error).message}`);
  }
  if (!json || typeof json !== "object")
    throw new PusherError("PUSHER_ERR_FCM_CREDENTIALS", `${source} is not a service account JSON object`);
  const legacy = [json.server_key, json.serverKey, json.api_key, json.key].find(
    (value) => typeof value === "string" && looksLikeLegacyServerKey(value),
  );
  if (legacy) throw new PusherError("PUSHER_ERR_FCM_LEGACY_KEY", `${source}: ${LEGACY_KEY_MESSAGE}`);
  if (json.type !== "service_account") {
    throw new PusherError(
      "PUSHER_ERR_FCM_CREDENTIALS",
      `${source}: "type" must be "service_account" (a Firebase service account key), got ${JSON.stringify(json.type)}`,
    );
  }
  for (const field of ["project_id", "client_email", "private_key", "token_uri"]) {
    if (typeof json[field] !== "string" || json[field] === "")
      throw new PusherError("PUSHER_ERR_FCM_CREDENTIALS", `${source}: "${field}" is missing`);
  }
  const tokenUri = json.token_uri as string;
  if (!/^https:\/\//.test(tokenUri))
    throw new PusherError(
      "PUSHER_ERR_FCM_CREDENTIALS",
      `${source}: "token_uri" must be an https URL, got ${JSON.stringify(tokenUri)}`,
    );
  try {
    const key = createPrivateKey(json.private_key as string);
    if (key.asymmetricKeyType !== "rsa") throw new Error(`a ${key.asymmetricKeyType} key, not RSA`);
  } catch (error) {
    throw new PusherError(
      "PUSHER_ERR_FCM_CREDENTIALS",
      `${source}: "private_key" is not a usable RSA private key: ${(error as Error).message}`,
    );
  }
  const account: ServiceAccount = {
    projectId: json.project_id as string,
    clientEmail: json.client_email as string,
    privateKey: json.private_key as string,
    tokenUri,
  };
  if (typeof json.private_key_id === "string") account.privateKeyId = json.private_key_id;
  return account;
}

export function readServiceAccount(file: string): ServiceAccount {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (error) {
    throw new PusherError(
      "PUSHER_ERR_FCM_CREDENTIALS",
      `cannot read serviceAccountFile ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
    );
  }
  return parseServiceAccount(text, file);
}

/** Why no access token could be had: the classification the push takes over. */
export class OAuthFailure extends Error {
  constructor(
    readonly classification: Classification,
    message: string,
    readonly status?: number,
    readonly retryAfterMs?: number,
  ) {
    super(message);
    this.name = "OAuthFailure";
  }
}

interface CachedAccessToken {
  token: string;
  expiresAtMs: number;
}

export class OAuthTokens {
  private readonly cache = new Map<string, CachedAccessToken>();
  private readonly pending = new Map<string, Promise<string>>();
  /** Token requests sent so far (tests assert caching by counting them). */
  requests = 0;

  constructor(
    private readonly sessions: ProviderSessions,
    private readonly now: () => number = Date.now,
    private readonly requestTimeoutMs = 10_000,
  ) {}

  /**
   * An access token for `account`: the cached one until 5 min before expiry, else a new one (concurrent callers
   * share one request). `rejected`: FCM refused this token (401): fetch another unless that already happened.
   * Rejects with OAuthFailure.
   */
  accessToken(account: ServiceAccount, rejected?: string): Promise<string> {
    const key = `${account.tokenUri}\n${account.clientEmail}`;
    const cached = this.cache.get(key);
    if (cached && cached.token !== rejected && this.now() < cached.expiresAtMs - ACCESS_TOKEN_MARGIN_MS)
      return Promise.resolve(cached.token);
    const inFlight = this.pending.get(key);
    if (inFlight) return inFlight;
    const request = this.fetchToken(account)
      .then((token) => {
        this.cache.set(key, token);
        return token.token;
      })
      .finally(() => this.pending.delete(key));
    this.pending.set(key, request);
    return request;
  }

  private async fetchToken(account: ServiceAccount): Promise<CachedAccessToken> {
    const nowSeconds = Math.floor(this.now() / 1000);
    const header: { alg: "RS256"; typ: string; kid?: string } = { alg: "RS256", typ: "JWT" };
    if (account.privateKeyId) header.kid = account.privateKeyId;
    const assertion = signJwt(
      header,
      {
        iss: account.clientEmail,
        scope: FCM_SCOPE,
        aud: account.tokenUri,
        iat: nowSeconds,
        exp: nowSeconds + ASSERTION_LIFETIME_SECONDS,
      },
      account.privateKey,
    );
    const url = new URL(account.tokenUri);
    const body = new URLSearchParams({ grant_type: JWT_BEARER_GRANT, assertion }).toString();
    this.requests++;
    let response;
    try {
      response = await this.sessions.request(
        { key: `oauth\n${url.host}`, authority: url.origin },
        { ":method": "POST", ":path": url.pathname + url.search, "content-type": "application/x-www-form-urlencoded" },
        body,
        this.requestTimeoutMs,
      );
    } catch (error) {
      throw new OAuthFailure(
        classifyTransportError(error, "firebase"),
        `OAuth token endpoint ${url.origin}: ${(error as Error).message}`,
      );
    }
    let json: { access_token?: unknown; expires_in?: unknown; error?: unknown; error_description?: unknown } = {};
    try {
      json = JSON.parse(response.body);
    } catch {
      // handled below: no access_token
    }
    if (response.status === 200 && typeof json.access_token === "string") {
      const expiresInSeconds = typeof json.expires_in === "number" ? json.expires_in : 3600;
      return { token: json.access_token, expiresAtMs: nowSeconds * 1000 + expiresInSeconds * 1000 };
    }
    const error = typeof json.error === "string" ? json.error : `HTTP ${response.status}`;
    const description = typeof json.error_description === "string" ? `: ${json.error_description}` : "";
    throw new OAuthFailure(
      classifyOAuthResponse(response.status, error),
      `OAuth ${error}${description}`,
      response.status,
      retryAfterMs(response.headers["retry-after"], this.now()),
    );
  }
}
