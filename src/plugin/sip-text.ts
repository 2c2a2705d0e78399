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

function decodeUtf8Hex(hex: string): { text: string; invalidBytes: number } {
  let invalidBytes = 0;
  const bytes: number[] = [];
  for (let i = 0; i + 1 < hex.length; i += 2) bytes.push(parseInt(hex.substr(i, 2), 16));
  let text = "";
  for (let i = 0; i < bytes.length; ) {
    const lead = bytes[i];
    const length = lead < 0x80 ? 1 : lead >= 0xc2 && lead <= 0xdf ? 2 : lead >= 0xe0 && lead <= 0xef ? 3 : lead >= 0xf0 && lead <= 0xf4 ? 4 : 0;
    let code = length === 1 ? lead : length === 2 ? lead & 0x1f : length === 3 ? lead & 0x0f : lead & 0x07;
    let valid = length > 0 && i + length <= bytes.length;
    for (let j = 1; valid && j < length; j++) {
      if ((bytes[i + j] & 0xc0) !== 0x80) valid = false;
      else code = (code << 6) | (bytes[i + j] & 0x3f);
    }
    // Overlong forms, UTF-16 surrogates and code points past U+10FFFF are not UTF-8 either.
    const minimum = length === 3 ? 0x800 : length === 4 ? 0x10000 : 0;
    if (valid && (code < minimum || (code >= 0xd800 && code <= 0xdfff) || code > 0x10ffff)) valid = false;
    if (!valid) {
      text += String.fromCharCode(REPLACEMENT);
      invalidBytes++;
      i += 1;
      continue;
    }
    if (code > 0xffff) {
      code -= 0x10000;
      text += String.fromCharCode(0xd800 + (code >> 10), 0xdc00 + (code & 0x3ff));
    } else {
      text += String.fromCharCode(code);
    }
    i += length;
  }
  return { text: text, invalidBytes: invalidBytes };
}
