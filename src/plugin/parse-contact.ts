// Splits a SIP Contact header value into contacts, each with its URI, URI params and header params.
// Pure, no KSR: unit tested in Node and run in Duktape. Written by hand (not Kamailio's parser) because push
// params appear in both places and Kazoo's sample puts a space inside a token.

import { uriOpenIndex } from "./sip-text";
import { has } from "./own-key";

export interface ParsedContact {
  /** The URI without angle brackets, e.g. `sip:alice@192.0.2.1:5060;transport=tcp`. */
  uri: string;
  /** Params inside the URI (after its first `;`), names lower-cased, values URL-decoded. */
  uriParams: { [name: string]: string };
  /** Params after the `>` (or after the URI when there are no brackets), names lower-cased, values unquoted. */
  headerParams: { [name: string]: string };
  /** Params given twice with different values (also once in the URI and once after it): which one the phone
   * meant is unknowable, so push params named here are refused. */
  conflicts: string[];
}

/** URL-decodes a param value; a malformed escape leaves the raw text (Kazoo url-decodes, never fails). */
export function decodeParam(value: string): string {
  // Nothing to decode (the usual case): skips Duktape's decodeURIComponent and its try/catch.
  if (value.indexOf("%") < 0) return value;
  try {
    return decodeURIComponent(value);
  } catch (e) {
    return value;
  }
}

function unquote(value: string): string {
  if (value.length >= 2 && value.charAt(0) === '"' && value.charAt(value.length - 1) === '"') {
    const inner = value.substring(1, value.length - 1);
    return inner.indexOf("\\") < 0 ? inner : inner.replace(/\\(.)/g, "$1");
  }
  return value;
}

/**
 * Splits on `separator` outside double quotes and angle brackets. Each character that matters is found with
 * indexOf (native: Duktape runs a JS loop at ~0.4 µs per character) and searched for again only once passed,
 * so the text is scanned about once whatever its length (docs/benchmarks.md).
 */
function splitOutside(text: string, separator: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let quoted = false;
  let start = 0;
  let i = 0;
  // Next index of each character at or after i; -2: not searched yet, -1: none left.
  let quote = -2;
  let escape = -2;
  let open = -2;
  let close = -2;
  let split = -2;
  for (;;) {
    if (quote !== -1 && quote < i) quote = text.indexOf('"', i);
    let at = quote;
    if (quoted) {
      if (escape !== -1 && escape < i) escape = text.indexOf("\\", i);
      if (escape >= 0 && (at < 0 || escape < at)) at = escape;
    } else {
      if (open !== -1 && open < i) open = text.indexOf("<", i);
      if (close !== -1 && close < i) close = text.indexOf(">", i);
      // Nothing left that quotes or nests: every separator left splits, and Duktape's own split does that at once
      // (a hostile Contact of a thousand params took a thousand turns of this loop).
      if (quote === -1 && open === -1 && close === -1 && depth === 0) {
        // (the part under way began before i: quotes or brackets passed already may hold a separator)
        const rest = text.substring(i).split(separator);
        rest[0] = text.substring(start, i) + rest[0];
        return parts.concat(rest);
      }
      if (split !== -1 && split < i) split = text.indexOf(separator, i);
      if (open >= 0 && (at < 0 || open < at)) at = open;
      if (close >= 0 && (at < 0 || close < at)) at = close;
      if (split >= 0 && (at < 0 || split < at)) at = split;
    }
    if (at < 0) break;
    const c = text[at];
    i = at + 1;
    if (quoted) {
      if (c === "\\") i++;
      else quoted = false;
    } else if (c === '"') quoted = true;
    else if (c === "<") depth++;
    else if (c === ">") depth = depth > 0 ? depth - 1 : 0;
    else if (depth === 0) {
      parts.push(text.substring(start, at));
      start = at + 1;
    }
  }
  parts.push(text.substring(start));
  return parts;
}

/**
 * The names of params given twice with different values, each listed once. `seen` is an object used as a set
 * (keys prefixed, so `__proto__` is a name like any other): a hostile Contact may repeat hundreds of names, and an
 * indexOf over the list for each would be quadratic.
 */
interface Conflicts {
  names: string[];
  seen: { [key: string]: boolean };
}

function addConflict(conflicts: Conflicts, name: string): void {
  if (conflicts.seen["#" + name]) return;
  conflicts.seen["#" + name] = true;
  conflicts.names.push(name);
}

/** `quoted`: header params, whose values may be quoted strings (URI params are never). */
function parseParams(parts: string[], quoted: boolean, conflicts: Conflicts): { [name: string]: string } {
  const params: { [name: string]: string } = {};
  for (let i = 0; i < parts.length; i++) {
    // The name and the value are trimmed each: the part needs no trim of its own (one call less per param, and a
    // hostile Contact has a thousand).
    const part = parts[i];
    const equals = part.indexOf("=");
    // trim(), not a regex: Duktape's regex engine costs ~40 µs on a 200-character Contact (docs/benchmarks.md).
    const name = (equals < 0 ? part : part.substring(0, equals)).trim().toLowerCase();
    if (equals < 0 && !name) continue;
    let value = equals < 0 ? "" : part.substring(equals + 1).trim();
    // Each step only when it has work: a Duktape call costs more than the test (value[0]: an index, not a call).
    if (quoted && value[0] === '"') value = unquote(value);
    if (value.indexOf("%") >= 0) value = decodeParam(value);
    // First occurrence is kept; a later one with another value marks the name as conflicting. Own values are
    // strings, inherited ones (`constructor`, `__proto__`) never: the type tells them apart without a call.
    const known = params[name];
    if (typeof known !== "string") {
      params[name] = value;
    } else if (known !== value) {
      // addConflict, inlined: a hostile Contact gives hundreds of names twice.
      const key = "#" + name;
      if (!conflicts.seen[key]) {
        conflicts.seen[key] = true;
        conflicts.names.push(name);
      }
    }
  }
  return params;
}

/** Whether `text` holds a control character (C0 or DEL). JSON.stringify escapes C0 ones natively, so text it
 * leaves as long as it was (plus the quotes) has none; a regex scan costs Duktape ~0.1 µs per character. */
function hasControlCharacter(text: string): boolean {
  if (text.indexOf("\x7f") >= 0) return true;
  if (JSON.stringify(text).length === text.length + 2) return false;
  return /[\x00-\x1f]/.test(text);
}

function parseOne(text: string): ParsedContact | null {
  const value = text.trim();
  if (!value || value === "*") return null;
  const open = uriOpenIndex(value);
  let uri: string;
  let rest: string;
  if (open >= 0) {
    const close = value.indexOf(">", open);
    if (close < 0) return null;
    uri = value.substring(open + 1, close);
    rest = value.substring(close + 1);
  } else {
    // Without brackets every `;param` belongs to the header, not the URI (RFC 3261 §20.10).
    const semicolon = value.indexOf(";");
    uri = semicolon < 0 ? value : value.substring(0, semicolon);
    rest = semicolon < 0 ? "" : value.substring(semicolon);
  }
  uri = uri.trim();
  if (!/^sips?:/i.test(uri)) return null;
  // A NUL or another control character inside the URI: a client trying to smuggle something past the parser.
  if (hasControlCharacter(uri)) return null;
  const uriSemicolon = uri.indexOf(";");
  const conflicts: Conflicts = { names: [], seen: {} };
  const uriParams =
    uriSemicolon < 0
      ? {}
      : parseParams(
          uri
            .substring(uriSemicolon + 1)
            .split("?")[0]
            .split(";"),
          false,
          conflicts,
        );
  const headerParams = parseParams(splitOutside(rest, ";"), true, conflicts);
  for (const name in uriParams) {
    const inBoth = headerParams[name] !== undefined && has(uriParams, name) && has(headerParams, name);
    if (inBoth && uriParams[name] !== headerParams[name]) addConflict(conflicts, name);
  }
  return { uri: uri, uriParams: uriParams, headerParams: headerParams, conflicts: conflicts.names };
}

// A REGISTER's Contact is parsed before save (register-before-save) and again after it (register-after-save), in
// the same worker: the last result is reused for the same text. Callers must not modify what this returns.
let lastHeaderValue: string | null = null;
let lastContacts: ParsedContact[] = [];

/** Parses every contact of a Contact header value; malformed ones are skipped. The result is shared: read only. */
export function parseContacts(headerValue: string): ParsedContact[] {
  if (headerValue === lastHeaderValue) return lastContacts;
  const contacts = parseContactList(headerValue);
  lastHeaderValue = headerValue;
  lastContacts = contacts;
  return contacts;
}

function parseContactList(headerValue: string): ParsedContact[] {
  const contacts: ParsedContact[] = [];
  // No comma at all (one contact, the usual REGISTER): nothing to split; splitOutside's scan of the quotes and
  // brackets costs Duktape ~50 000 instructions on a usual Contact.
  const parts = headerValue.indexOf(",") < 0 ? [headerValue] : splitOutside(headerValue, ",");
  for (let i = 0; i < parts.length; i++) {
    const contact = parseOne(parts[i]);
    if (contact) contacts.push(contact);
  }
  return contacts;
}

/**
 * Expires of one contact: its `expires` param, else the REGISTER's Expires header (`expiresHeader`, null when
 * absent), else the registrar default (>0).
 */
export function contactExpires(contact: ParsedContact, expiresHeader: string | null): number {
  const param = contact.headerParams["expires"];
  // Like the registrar: an expires param that is not a plain number (`-1`, `-0`, `never`) is ignored, so it
  // cannot remove a device whose binding the registrar keeps.
  const value = param !== undefined && /^\s*\d+\s*$/.test(param) ? param : expiresHeader;
  if (value === null || value === undefined || value === "") return 3600;
  const seconds = parseInt(value, 10);
  return isNaN(seconds) ? 3600 : seconds;
}
