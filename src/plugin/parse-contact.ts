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
      if (split !== -1 && split < i) split = text.indexOf(separator, i);
      if (open >= 0 && (at < 0 || open < at)) at = open;
      if (close >= 0 && (at < 0 || close < at)) at = close;
      if (split >= 0 && (at < 0 || split < at)) at = split;
    }
    if (at < 0) break;
    const c = text.charAt(at);
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

function parseParams(parts: string[], decode: (value: string) => string, conflicts: string[]): { [name: string]: string } {
  const params: { [name: string]: string } = {};
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i].trim();
    if (!part) continue;
    const equals = part.indexOf("=");
    // trim(), not a regex: Duktape's regex engine costs ~40 µs on a 200-character Contact (docs/benchmarks.md).
    const name = (equals < 0 ? part : part.substring(0, equals)).trim().toLowerCase();
    const value = equals < 0 ? "" : decode(part.substring(equals + 1).trim());
    // First occurrence is kept; a later one with another value marks the name as conflicting.
    if (!has(params, name)) params[name] = value;
    else if (params[name] !== value && conflicts.indexOf(name) < 0) conflicts.push(name);
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
  const conflicts: string[] = [];
  const uriParams = uriSemicolon < 0 ? {} : parseParams(uri.substring(uriSemicolon + 1).split("?")[0].split(";"), decodeParam, conflicts);
  const headerParams = parseParams(
    splitOutside(rest, ";"),
    function (raw: string) {
      return decodeParam(unquote(raw));
    },
    conflicts,
  );
  for (const name in uriParams) {
    const inBoth = has(uriParams, name) && has(headerParams, name);
    if (inBoth && uriParams[name] !== headerParams[name] && conflicts.indexOf(name) < 0) conflicts.push(name);
  }
  return { uri: uri, uriParams: uriParams, headerParams: headerParams, conflicts: conflicts };
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
  const parts = splitOutside(headerValue, ",");
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
