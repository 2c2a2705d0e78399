// Compact JWS signing with node:crypto only: ES256 for APNs provider tokens and VAPID, RS256 for Google's
// service-account assertion (RFC 7515, RFC 7518 §3.3-3.4).
import { createPrivateKey, sign, type KeyObject } from "node:crypto";

export function base64url(data: Buffer | string): string {
  return Buffer.from(data).toString("base64url");
}

/**
 * Signs `claims` with `header` as a compact JWS. ES256 signatures are JOSE's raw 64-byte r||s
 * (`dsaEncoding: 'ieee-p1363'`, RFC 7518 §3.4): Web Push services reject DER (RFC 8292 §2), APNs accepts both.
 */
export function signJwt(
  header: { alg: "ES256" | "RS256"; [key: string]: unknown },
  claims: object,
  key: KeyObject | string | Buffer,
): string {
  const privateKey =
    typeof key === "object" && "asymmetricKeyType" in key ? key : createPrivateKey(key as string | Buffer);
  const signingInput = `${base64url(JSON.stringify(header))}.${base64url(JSON.stringify(claims))}`;
  const signature =
    header.alg === "ES256"
      ? sign("sha256", Buffer.from(signingInput), { key: privateKey, dsaEncoding: "ieee-p1363" })
      : sign("sha256", Buffer.from(signingInput), privateKey);
  return `${signingInput}.${base64url(signature)}`;
}

/** The header and claims of a compact JWT, without verifying it (logs, tests). */
export function decodeJwt(token: string): { header: { [key: string]: unknown }; claims: { [key: string]: unknown } } {
  const [header, claims] = token.split(".");
  return {
    header: JSON.parse(Buffer.from(header, "base64url").toString("utf8")),
    claims: JSON.parse(Buffer.from(claims, "base64url").toString("utf8")),
  };
}
