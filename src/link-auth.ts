// How Kamailio and the helper prove to each other that they know the link secret, without sending it (pure, ES5:
// compiled into the plugin and the helper). On every new evapi connection:
//   1. Kamailio → helper  link-challenge {nonce: K}   (random, from Kamailio's uuid module)
//   2. helper → Kamailio  link-challenge {nonce: H}   (random, node:crypto)
//   3. Kamailio → helper  link-proof {proof: HMAC(secret, "… kamailio K H")}
//   4. helper → Kamailio  link-proof {proof: HMAC(secret, "… helper K H")}, then its hello
// The helper sends nothing but its own random nonce before Kamailio has proven the secret (a process squatting
// the port learns nothing it could replay), and Kamailio relays push requests only to a connection that passed
// step 4 (kamailio/pusher.cfg, src/plugin/helper-link.ts). Each proof names its sender's role and covers both
// nonces, so neither side's proof can be reflected back or replayed on another connection.

/** Shortest secret either side accepts: `pusher start` writes 64 hex digits (32 random bytes). */
export const LINK_SECRET_MIN_CHARS = 32;
/** A connection that has not finished the handshake this long after it opened is never authenticated. */
export const LINK_HANDSHAKE_MS = 5000;

export type LinkRole = "kamailio" | "helper";

/** The text each side signs with HMAC-SHA-256 (key: the secret) to answer a challenge. */
export function linkProofText(role: LinkRole, kamailioNonce: string, helperNonce: string): string {
  return "kamailio-pusher link v1 " + role + " " + kamailioNonce + " " + helperNonce;
}

/**
 * The secret in a link secret file's text: the first line, surrounding whitespace removed; or the problem when it
 * is shorter than LINK_SECRET_MIN_CHARS or holds a control character.
 */
export function linkSecretOf(text: string): { secret: string } | { problem: string } {
  const secret = text.split("\n")[0].replace(/^\s+|\s+$/g, "");
  if (secret.length < LINK_SECRET_MIN_CHARS)
    return { problem: "holds fewer than " + LINK_SECRET_MIN_CHARS + " characters" };
  if (/[\x00-\x1f\x7f]/.test(secret)) return { problem: "holds a control character" };
  return { secret: secret };
}

/** Whether two proofs are equal, in time that depends only on their length. */
export function sameProof(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  let difference = 0;
  for (let i = 0; i < a.length; i++) difference |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return difference === 0;
}
