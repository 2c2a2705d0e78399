// Kazoo's own sample Contact has a space inside the pn-tok value, which Kamailio's Contact parser refuses
// (the REGISTER would fail with 500). repairContact percent-encodes whitespace inside header param values
// so the REGISTER can be saved; parse-contact URL-decodes it again, so the token is stored as the phone sent it.
// Pure, no KSR: route PUSHER_INTERNAL_REPAIR_CONTACT runs it through register-before-save.ts repairContactHeader.

// Folded lines (RFC 3261 §7.3.1: CRLF then whitespace is one SP). cfg writes the repaired value back as one header
// line: a line break left in it, its whitespace encoded, would start a new header of the phone's choosing.
const FOLD = /\r?\n[ \t]+|\r[ \t]+/g;

/** Where the scan of a Contact value stands: what the characters read so far mean for the next ones. */
interface ScanState {
  quoted: boolean;
  depth: number;
  /** After a header param's `=`, before the `;` or `,` that ends its value. */
  inValue: boolean;
  /** Whether the value being read already has a character other than whitespace. */
  valueStarted: boolean;
}

/**
 * The repaired Contact value, or null when nothing needed repair (or a line break in it cannot be unfolded). The
 * value is read as runs of whitespace between words: only whitespace is ever encoded, and a word without a quote or
 * a bracket changes the scan's state by its last `=`, `;` or `,` alone, which native string calls find. Duktape runs a
 * loop over each character at ~4 000 instructions a character (an 8 KB Contact: 35 million); a word with a quote or
 * a bracket is read character by character up to its last one (docs/benchmarks.md).
 */
export function repairContact(folded: string): string | null {
  const value = folded.indexOf("\r") < 0 && folded.indexOf("\n") < 0 ? folded : folded.replace(FOLD, " ");
  if (value.indexOf("\r") >= 0 || value.indexOf("\n") >= 0) return null;
  // Built as parts joined once: Duktape copies the whole string on every `+=`.
  const parts: string[] = [];
  let changed = false;
  const state: ScanState = { quoted: false, depth: 0, inValue: false, valueStarted: false };
  // Next index of each character at or after `from`; -2: not searched yet, -1: none left (as parse-contact.ts).
  let space = -2;
  let tab = -2;
  let quote = -2;
  let open = -2;
  let close = -2;
  let from = 0;
  for (;;) {
    if (space !== -1 && space < from) space = value.indexOf(" ", from);
    if (tab !== -1 && tab < from) tab = value.indexOf("\t", from);
    const blank = space < 0 ? tab : tab < 0 ? space : Math.min(space, tab);
    const to = blank < 0 ? value.length : blank;
    const word = value.substring(from, to);
    parts.push(word);
    if (quote !== -1 && quote < from) quote = value.indexOf('"', from);
    if (open !== -1 && open < from) open = value.indexOf("<", from);
    if (close !== -1 && close < from) close = value.indexOf(">", from);
    const plain = !state.quoted && (quote < 0 || quote >= to) && (open < 0 || open >= to) && (close < 0 || close >= to);
    if (plain) {
      readPlainWord(state, word);
    } else {
      // Character by character up to the word's last quote or bracket; what follows it is plain again (or quoted).
      const last = Math.max(word.lastIndexOf('"'), word.lastIndexOf("<"), word.lastIndexOf(">"));
      readWord(state, value, from, from + last + 1);
      const rest = word.substring(last + 1);
      if (!state.quoted) readPlainWord(state, rest);
      else if (rest) state.valueStarted = true;
    }
    if (blank < 0) break;
    let end = blank;
    while (end < value.length && (value[end] === " " || value[end] === "\t")) end++;
    const next = end < value.length ? value[end] : "";
    // Whitespace between two value characters is part of the value; around delimiters it is just space.
    if (
      !state.quoted &&
      state.depth === 0 &&
      state.inValue &&
      next &&
      next !== ";" &&
      next !== "," &&
      state.valueStarted
    ) {
      // Each character encoded on its own, so the token decodes to exactly what the phone sent.
      for (let j = blank; j < end; j++) parts.push(value[j] === "\t" ? "%09" : "%20");
      changed = true;
    } else {
      parts.push(value.substring(blank, end));
      if (state.quoted) state.valueStarted = true;
    }
    from = end;
  }
  return changed ? parts.join("") : null;
}

/** A word (no whitespace) outside quotes with no quote or bracket: only its last `=`, `;` or `,` counts. */
function readPlainWord(state: ScanState, word: string): void {
  if (!word) return;
  if (state.depth > 0) {
    state.valueStarted = true;
    return;
  }
  const last = Math.max(word.lastIndexOf("="), word.lastIndexOf(";"), word.lastIndexOf(","));
  if (last < 0) {
    state.valueStarted = true;
  } else if (word[last] === "=") {
    state.inValue = true;
    state.valueStarted = last < word.length - 1;
  } else {
    state.inValue = false;
    state.valueStarted = true;
  }
}

/** Any word (no whitespace), character by character: the characters `value` holds from `from` to `to`. */
function readWord(state: ScanState, value: string, from: number, to: number): void {
  for (let i = from; i < to; i++) {
    const c = value[i];
    if (state.quoted) {
      // An escaped character: a quote it escapes does not end the quoted string.
      if (c === "\\" && i + 1 < value.length) i++;
      else if (c === '"') state.quoted = false;
      state.valueStarted = true;
      continue;
    }
    if (c === '"') state.quoted = true;
    else if (c === "<") state.depth++;
    else if (c === ">") state.depth = state.depth > 0 ? state.depth - 1 : 0;
    else if (state.depth === 0 && (c === ";" || c === ",")) state.inValue = false;
    else if (state.depth === 0 && c === "=") {
      state.inValue = true;
      state.valueStarted = false;
      continue;
    }
    state.valueStarted = true;
  }
}
