// Web Push message encryption, RFC 8291 (aes128gcm content coding of RFC 8188), with node:crypto only.
// The push service sees only ciphertext; the browser decrypts with its subscription's private key.
import { createCipheriv, createECDH, hkdfSync, randomBytes } from "node:crypto";
import { PusherError } from "./provider-errors";

/** RFC 8188 record size we announce: one record holds any Web Push payload (≤ 4096 bytes, RFC 8030 §7.2). */
const RECORD_SIZE = 4096;
/** RFC 8188 header: salt(16) + rs(4) + idlen(1) + keyid (our 65-byte public key); AEAD tag 16; padding delimiter 1. */
export const ENCRYPTION_OVERHEAD_BYTES = 16 + 4 + 1 + 65 + 16 + 1;

export interface EncryptionKeys {
  /** The subscription's P-256 public key, base64url uncompressed (65 bytes). */
  p256dh: string;
  /** The subscription's authentication secret, base64url (16 bytes). */
  auth: string;
}

export interface EncryptOptions {
  /** Fixed sender key pair and salt: RFC 8291 Appendix A's test vector (tests only). */
  senderPrivateKey?: Buffer;
  salt?: Buffer;
}

function hkdf(ikm: Buffer, salt: Buffer, info: Buffer, length: number): Buffer {
  return Buffer.from(hkdfSync("sha256", ikm, salt, info, length));
}

/** Encrypts `plaintext` for one subscription: the body of the POST, with `Content-Encoding: aes128gcm`. */
export function encryptWebPush(plaintext: Buffer, keys: EncryptionKeys, options: EncryptOptions = {}): Buffer {
  const userAgentPublicKey = Buffer.from(keys.p256dh, "base64url");
  const authSecret = Buffer.from(keys.auth, "base64url");
  if (userAgentPublicKey.length !== 65 || userAgentPublicKey[0] !== 0x04) {
    throw new PusherError("PUSHER_ERR_BAD_DEVICE", "the subscription's p256dh is not an uncompressed P-256 public key");
  }
  if (authSecret.length !== 16)
    throw new PusherError("PUSHER_ERR_BAD_DEVICE", "the subscription's auth secret is not 16 bytes");
  if (plaintext.length + ENCRYPTION_OVERHEAD_BYTES > RECORD_SIZE) {
    throw new PusherError(
      "PUSHER_ERR_BAD_DEVICE",
      `the payload is ${plaintext.length} bytes, more than one ${RECORD_SIZE}-byte record holds`,
    );
  }
  const sender = createECDH("prime256v1");
  if (options.senderPrivateKey) sender.setPrivateKey(options.senderPrivateKey);
  else sender.generateKeys();
  const senderPublicKey = sender.getPublicKey();
  let sharedSecret: Buffer;
  try {
    sharedSecret = sender.computeSecret(userAgentPublicKey);
  } catch (error) {
    throw new PusherError(
      "PUSHER_ERR_BAD_DEVICE",
      `the subscription's p256dh is not a point on P-256: ${(error as Error).message}`,
    );
  }
  // RFC 8291 §3.3-3.4: IKM from the ECDH secret and the auth secret, then RFC 8188's key and nonce.
  const keyInfo = Buffer.concat([Buffer.from("WebPush: info\0"), userAgentPublicKey, senderPublicKey]);
  const inputKeyingMaterial = hkdf(sharedSecret, authSecret, keyInfo, 32);
  const salt = options.salt ?? randomBytes(16);
  const contentEncryptionKey = hkdf(inputKeyingMaterial, salt, Buffer.from("Content-Encoding: aes128gcm\0"), 16);
  const nonce = hkdf(inputKeyingMaterial, salt, Buffer.from("Content-Encoding: nonce\0"), 12);

  const cipher = createCipheriv("aes-128-gcm", contentEncryptionKey, nonce);
  // 0x02: the last (and only) record's padding delimiter (RFC 8188 §2).
  const ciphertext = Buffer.concat([
    cipher.update(Buffer.concat([plaintext, Buffer.from([0x02])])),
    cipher.final(),
    cipher.getAuthTag(),
  ]);
  const header = Buffer.alloc(16 + 4 + 1);
  salt.copy(header, 0);
  header.writeUInt32BE(RECORD_SIZE, 16);
  header.writeUInt8(senderPublicKey.length, 20);
  return Buffer.concat([header, senderPublicKey, ciphertext]);
}
