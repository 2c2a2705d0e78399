// HMAC-SHA-256 (RFC 2104 over FIPS 180-4's SHA-256) in plain ES5, for the plugin: Duktape has no crypto, and
// Kamailio's crypto module (crypto_hmac_sha256) logs its key at debug level (src/modules/crypto/crypto_mod.c,
// ki_crypto_hmac_sha256_helper), which would put the link secret in the log. It runs twice per helper connection
// (src/link-auth.ts), never per SIP message: about 1.6 ms each in Duktape 2.7 on the 2-core test machine. The helper
// uses node:crypto; test/plugin/duktape-bundle.test.ts checks that both agree.

const K = [
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98,
  0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786,
  0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8,
  0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
  0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819,
  0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a,
  0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
  0xc67178f2,
];
const BLOCK_BYTES = 64;

/** The UTF-8 bytes of `text` (a lone surrogate becomes U+FFFD, as TextEncoder does). */
export function utf8Bytes(text: string): number[] {
  const bytes: number[] = [];
  for (let i = 0; i < text.length; i++) {
    let code = text.charCodeAt(i);
    if (code >= 0xd800 && code <= 0xdbff && i + 1 < text.length) {
      const low = text.charCodeAt(i + 1);
      if (low >= 0xdc00 && low <= 0xdfff) {
        code = 0x10000 + ((code - 0xd800) << 10) + (low - 0xdc00);
        i++;
      }
    }
    if (code >= 0xd800 && code <= 0xdfff) code = 0xfffd;
    if (code < 0x80) bytes.push(code);
    else if (code < 0x800) bytes.push(0xc0 | (code >> 6), 0x80 | (code & 63));
    else if (code < 0x10000) bytes.push(0xe0 | (code >> 12), 0x80 | ((code >> 6) & 63), 0x80 | (code & 63));
    else bytes.push(0xf0 | (code >> 18), 0x80 | ((code >> 12) & 63), 0x80 | ((code >> 6) & 63), 0x80 | (code & 63));
  }
  return bytes;
}

function rotateRight(value: number, bits: number): number {
  return (value >>> bits) | (value << (32 - bits));
}

/** SHA-256 of `bytes` (FIPS 180-4 §6.2), as 32 bytes. */
export function sha256(bytes: number[]): number[] {
  const hash = [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19];
  // Padding (§5.1.1): 0x80, zeros, then the length in bits as a 64-bit big-endian number.
  const padded = bytes.slice();
  padded.push(0x80);
  while (padded.length % BLOCK_BYTES !== 56) padded.push(0);
  const bits = bytes.length * 8;
  const high = Math.floor(bits / 0x100000000);
  padded.push((high >>> 24) & 255, (high >>> 16) & 255, (high >>> 8) & 255, high & 255);
  padded.push((bits >>> 24) & 255, (bits >>> 16) & 255, (bits >>> 8) & 255, bits & 255);
  const w: number[] = [];
  for (let block = 0; block < padded.length; block += BLOCK_BYTES) {
    for (let t = 0; t < 16; t++) {
      const at = block + t * 4;
      w[t] = (padded[at] << 24) | (padded[at + 1] << 16) | (padded[at + 2] << 8) | padded[at + 3];
    }
    for (let t = 16; t < 64; t++) {
      const s0 = rotateRight(w[t - 15], 7) ^ rotateRight(w[t - 15], 18) ^ (w[t - 15] >>> 3);
      const s1 = rotateRight(w[t - 2], 17) ^ rotateRight(w[t - 2], 19) ^ (w[t - 2] >>> 10);
      w[t] = (w[t - 16] + s0 + w[t - 7] + s1) | 0;
    }
    let a = hash[0],
      b = hash[1],
      c = hash[2],
      d = hash[3],
      e = hash[4],
      f = hash[5],
      g = hash[6],
      h = hash[7];
    for (let t = 0; t < 64; t++) {
      const t1 =
        (h + (rotateRight(e, 6) ^ rotateRight(e, 11) ^ rotateRight(e, 25)) + ((e & f) ^ (~e & g)) + K[t] + w[t]) | 0;
      const t2 = ((rotateRight(a, 2) ^ rotateRight(a, 13) ^ rotateRight(a, 22)) + ((a & b) ^ (a & c) ^ (b & c))) | 0;
      h = g;
      g = f;
      f = e;
      e = (d + t1) | 0;
      d = c;
      c = b;
      b = a;
      a = (t1 + t2) | 0;
    }
    hash[0] = (hash[0] + a) | 0;
    hash[1] = (hash[1] + b) | 0;
    hash[2] = (hash[2] + c) | 0;
    hash[3] = (hash[3] + d) | 0;
    hash[4] = (hash[4] + e) | 0;
    hash[5] = (hash[5] + f) | 0;
    hash[6] = (hash[6] + g) | 0;
    hash[7] = (hash[7] + h) | 0;
  }
  const digest: number[] = [];
  for (let i = 0; i < 8; i++)
    digest.push((hash[i] >>> 24) & 255, (hash[i] >>> 16) & 255, (hash[i] >>> 8) & 255, hash[i] & 255);
  return digest;
}

function hex(bytes: number[]): string {
  const digits: string[] = [];
  for (let i = 0; i < bytes.length; i++) digits.push((bytes[i] < 16 ? "0" : "") + bytes[i].toString(16));
  return digits.join("");
}

/** HMAC-SHA-256 (RFC 2104 §2) of the UTF-8 bytes of `message` with the UTF-8 bytes of `key`, as lower-case hex. */
export function hmacSha256Hex(key: string, message: string): string {
  let keyBytes = utf8Bytes(key);
  if (keyBytes.length > BLOCK_BYTES) keyBytes = sha256(keyBytes);
  const inner: number[] = [];
  const outer: number[] = [];
  for (let i = 0; i < BLOCK_BYTES; i++) {
    const byte = i < keyBytes.length ? keyBytes[i] : 0;
    inner.push(byte ^ 0x36);
    outer.push(byte ^ 0x5c);
  }
  return hex(sha256(outer.concat(sha256(inner.concat(utf8Bytes(message))))));
}
