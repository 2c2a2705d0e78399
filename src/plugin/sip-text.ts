// Small text helpers for SIP header values. Pure, no KSR.

/** Index of `char` outside a quoted string (a display name may contain `<`), or -1. */
export function indexOutsideQuotes(text: string, char: string): number {
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charAt(i);
    if (quoted && c === "\\") i++;
    else if (c === '"') quoted = !quoted;
    else if (!quoted && c === char) return i;
  }
  return -1;
}

/** Where the URI of a name-addr starts: the first `<` outside quotes, else (a broken quote) the first `<`. */
export function uriOpenIndex(text: string): number {
  const index = indexOutsideQuotes(text, "<");
  return index >= 0 ? index : text.indexOf("<");
}

const REPLACEMENT = 0xfffd;

/** Whether bytes given as hex are valid UTF-8 (no byte would become U+FFFD in utf8HexToText). */
export function isUtf8Hex(hex: string): boolean {
  return decodeUtf8Hex(hex).invalidBytes === 0;
}

/**
 * Decodes UTF-8 given as hex (Kamailio's {s.encode.hexa}) into a string; every byte that does not start or
 * continue a valid sequence becomes U+FFFD. Written out because Duktape's TextDecoder turns 4-byte sequences
 * (emoji) into U+FFFD too.
 */
export function utf8HexToText(hex: string): string {
  return decodeUtf8Hex(hex).text;
}

// Code units per String.fromCharCode.apply call: well within any engine's argument limit.
const CHUNK_UNITS = 4096;

/** The string of UTF-16 code units `units`, in linear time: Duktape copies the whole string on every `+=`. */
function textOfUnits(units: number[]): string {
  const chunks: string[] = [];
  for (let at = 0; at < units.length; at += CHUNK_UNITS)
    chunks.push(String.fromCharCode.apply(null, units.slice(at, at + CHUNK_UNITS)));
  return chunks.join("");
}

// Duktape's own built-in (https://duktape.org/guide.html#builtin-duktape): absent in Node, where the unit tests run.
declare const Duktape: { dec(format: "hex", text: string): ArrayLike<number> } | undefined;

/** The value of one hex digit's character code (either case). */
function nibble(code: number): number {
  return code >= 0x61 ? code - 0x57 : code >= 0x41 ? code - 0x37 : code - 0x30;
}

/** The bytes `hex` spells. Duktape decodes hex natively, hundreds of times faster than a JS loop over an 8 KB header. */
function bytesOfHex(hex: string): ArrayLike<number> {
  if (typeof Duktape !== "undefined" && hex.length % 2 === 0) {
    try {
      return Duktape.dec("hex", hex);
    } catch (e) {
      // not hex after all: the loop below reads what it can
    }
  }
  const bytes: number[] = [];
  for (let i = 0; i + 1 < hex.length; i += 2)
    bytes.push((nibble(hex.charCodeAt(i)) << 4) | nibble(hex.charCodeAt(i + 1)));
  return bytes;
}

/** Each byte as the character of that code (Latin-1), in chunks as textOfUnits. */
function latinOfBytes(bytes: ArrayLike<number>): string {
  const chunks: string[] = [];
  for (let at = 0; at < bytes.length; at += CHUNK_UNITS)
    chunks.push(String.fromCharCode.apply(null, Array.prototype.slice.call(bytes, at, at + CHUNK_UNITS)));
  return chunks.join("");
}

function decodeUtf8Hex(hex: string): { text: string; invalidBytes: number } {
  const bytes = bytesOfHex(hex);
  // ASCII is copied in runs, natively: a JS loop over each byte costs Duktape ~2 000 instructions a byte (an 8 KB
  // header: 17 million). Only the runs of bytes from 0x80 up are decoded here, each on its own: a sequence never
  // continues past its run (a continuation byte is never ASCII).
  const latin = latinOfBytes(bytes);
  const nonAscii = /[\x80-\xff]+/g;
  const pieces: string[] = [];
  let invalidBytes = 0;
  let at = 0;
  for (;;) {
    nonAscii.lastIndex = at;
    const run = nonAscii.exec(latin);
    const runStart = run ? run.index : latin.length;
    if (runStart > at) pieces.push(latin.substring(at, runStart));
    if (!run) break;
    const runEnd = runStart + run[0].length;
    const units: number[] = [];
    for (let i = runStart; i < runEnd; ) {
      const lead = bytes[i];
      const length =
        lead >= 0xc2 && lead <= 0xdf ? 2 : lead >= 0xe0 && lead <= 0xef ? 3 : lead >= 0xf0 && lead <= 0xf4 ? 4 : 0;
      let code = length === 2 ? lead & 0x1f : length === 3 ? lead & 0x0f : lead & 0x07;
      let valid = length > 0 && i + length <= runEnd;
      for (let j = 1; valid && j < length; j++) {
        if ((bytes[i + j] & 0xc0) !== 0x80) valid = false;
        else code = (code << 6) | (bytes[i + j] & 0x3f);
      }
      // Overlong forms, UTF-16 surrogates and code points past U+10FFFF are not UTF-8 either.
      const minimum = length === 3 ? 0x800 : length === 4 ? 0x10000 : 0;
      if (valid && (code < minimum || (code >= 0xd800 && code <= 0xdfff) || code > 0x10ffff)) valid = false;
      if (!valid) {
        units.push(REPLACEMENT);
        invalidBytes++;
        i += 1;
        continue;
      }
      if (code > 0xffff) {
        code -= 0x10000;
        units.push(0xd800 + (code >> 10), 0xdc00 + (code & 0x3ff));
      } else {
        units.push(code);
      }
      i += length;
    }
    pieces.push(textOfUnits(units));
    at = runEnd;
  }
  return { text: pieces.join(""), invalidBytes: invalidBytes };
}
