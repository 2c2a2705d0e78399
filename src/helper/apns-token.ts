// APNs provider tokens (token-based authentication): one ES256 JWT per signing key, shared by every app and
// connection that uses the key, and refreshed between 20 and 60 minutes — never per push.
// https://developer.apple.com/documentation/usernotifications/establishing-a-token-based-connection-to-apns
// "Refresh your token no more than once every 20 minutes and no less than once every 60 minutes"; a new token
// more often gives 429 TooManyProviderTokenUpdates, an older one 403 ExpiredProviderToken.
import { createPrivateKey, type KeyObject } from "node:crypto";
import { readFileSync } from "node:fs";
import { signJwt } from "./jwt";
import { PusherError } from "./provider-errors";

/** apns2 and pushy refresh at 50 min: inside Apple's window with ten minutes to spare for clock skew. */
export const TOKEN_REFRESH_MS = 50 * 60_000;

export interface ApnsSigningKey {
  /** PKCS#8 PEM (.p8) holding an EC P-256 private key. */
  keyFile: string;
  /** The key's 10-character Key ID (JWT header `kid`). */
  keyId: string;
  /** The 10-character Team ID (JWT claim `iss`). */
  teamId: string;
}

export interface ProviderToken {
  jwt: string;
  /** `bearer <jwt>`, built once per token: the header value every push on the key sends. */
  authorization: string;
  issuedAtMs: number;
}

/** Reads and checks a .p8 key: an EC P-256 private key. Throws PusherError PUSHER_ERR_APNS_CREDENTIALS. */
export function readApnsSigningKey(keyFile: string): KeyObject {
  let pem: Buffer;
  try {
    pem = readFileSync(keyFile);
  } catch (error) {
    throw new PusherError(
      "PUSHER_ERR_APNS_CREDENTIALS",
      `cannot read keyFile ${keyFile}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
    );
  }
  let key: KeyObject;
  try {
    key = createPrivateKey(pem);
  } catch (error) {
    throw new PusherError(
      "PUSHER_ERR_APNS_CREDENTIALS",
      `keyFile ${keyFile} is not a private key: ${(error as Error).message}`,
    );
  }
  if (key.asymmetricKeyType !== "ec" || key.asymmetricKeyDetails?.namedCurve !== "prime256v1") {
    throw new PusherError(
      "PUSHER_ERR_APNS_CREDENTIALS",
      `keyFile ${keyFile} is not an EC P-256 key (Apple's .p8 AuthKey)`,
    );
  }
  return key;
}

/** The cache key of `key`'s token (a sender may keep it rather than build it per push). */
export function tokenCacheKey(key: ApnsSigningKey): string {
  return `${key.teamId}\n${key.keyId}\n${key.keyFile}`;
}

export class ApnsProviderTokens {
  private readonly tokens = new Map<string, ProviderToken>();
  /** JWTs signed so far (tests assert reuse by counting them). */
  signatures = 0;

  constructor(private readonly now: () => number = Date.now) {}

  /** Drops the cached tokens signed with `keyFile` (a config reload found the file changed). */
  forgetKeyFile(keyFile: string): void {
    for (const cacheKey of [...this.tokens.keys()]) if (cacheKey.endsWith(`\n${keyFile}`)) this.tokens.delete(cacheKey);
  }

  /**
   * The bearer token for `key`: the cached one while younger than TOKEN_REFRESH_MS, else a new one.
   * `renewRejected`: APNs refused this token (ExpiredProviderToken/InvalidProviderToken): sign a new one, unless
   * another push already replaced it. The key file is read again for each new token (a rotated key is picked up).
   */
  bearer(key: ApnsSigningKey, renewRejected?: string): string {
    return this.token(key, renewRejected).jwt;
  }

  /** bearer(), with the token's `authorization` header value. */
  token(key: ApnsSigningKey, renewRejected?: string, cacheKey = tokenCacheKey(key)): ProviderToken {
    const cached = this.tokens.get(cacheKey);
    const nowMs = this.now();
    const age = cached ? nowMs - cached.issuedAtMs : Infinity;
    const renew = renewRejected !== undefined && cached !== undefined && cached.jwt === renewRejected;
    if (cached && !renew && age >= 0 && age < TOKEN_REFRESH_MS) return cached;
    const signingKey = readApnsSigningKey(key.keyFile);
    const issuedAtSeconds = Math.floor(nowMs / 1000);
    const jwt = signJwt({ alg: "ES256", kid: key.keyId }, { iss: key.teamId, iat: issuedAtSeconds }, signingKey);
    this.signatures++;
    const token: ProviderToken = { jwt, authorization: `bearer ${jwt}`, issuedAtMs: issuedAtSeconds * 1000 };
    this.tokens.set(cacheKey, token);
    return token;
  }
}
