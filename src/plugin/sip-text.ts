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
