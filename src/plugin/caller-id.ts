// Caller id for the push: number and name from the first of Remote-Party-ID, P-Asserted-Identity,
// P-Preferred-Identity, From (Kazoo pusher-role's order). The first three are identities a network asserts
// (RFC 3325 §9.1: honoured only from a trusted peer); from anyone else, a caller could put any name on the
// callee's lock screen, so only From counts. Pure, no KSR.

import { Caller } from "../protocol";
import { uriOpenIndex } from "./sip-text";

export const CALLER_ID_HEADERS = ["Remote-Party-ID", "P-Asserted-Identity", "P-Preferred-Identity", "From"];

/** A caller's number or name longer than this (UTF-16 units) is cut, ending in "…": no lock screen shows more. */
export const MAX_CALLER_ID_LENGTH = 256;

function cut(text: string): string {
  if (text.length <= MAX_CALLER_ID_LENGTH) return text;
  let end = MAX_CALLER_ID_LENGTH - 1;
  // Never half of a surrogate pair (an emoji): it would not be valid UTF-8 in the push.
  const last = text.charCodeAt(end - 1);
  if (last >= 0xd800 && last <= 0xdbff) end--;
  return text.substring(0, end) + "…";
}

function trim(text: string): string {
  return text.trim();
}

/**
 * Parses a name-addr / addr-spec header value: `"Alice" <sip:+15551234@host>;tag=x` → {number: "+15551234",
 * name: "Alice"}. Kazoo strips `"` from the name; a quoted name is unquoted and unescaped instead, so it is what the caller sent.
 */
export function parseCallerId(headerValue: string): Caller | null {
  const value = trim(headerValue);
  if (!value) return null;
  let name = "";
  let uri: string;
  const open = uriOpenIndex(value);
  if (open >= 0) {
    const close = value.indexOf(">", open);
    if (close < 0) return null;
    name = trim(value.substring(0, open));
    if (name.length >= 2 && name.charAt(0) === '"' && name.charAt(name.length - 1) === '"') {
      name = name.substring(1, name.length - 1).replace(/\\(.)/g, "$1");
    } else {
      name = name.replace(/"/g, ""); // an unquoted or broken display name: Kazoo strips its quotes
    }
    uri = value.substring(open + 1, close);
  } else {
    uri = value.split(";")[0];
  }
  const match = /^\s*(sips?|tel):([^@;?]*)/i.exec(uri);
  if (!match) return null;
  let number = match[2];
  if (match[1].toLowerCase() !== "tel" && uri.indexOf("@") < 0) number = "";
  try {
    number = decodeURIComponent(number);
  } catch (e) {
    // keep the raw user part
  }
  return { number: cut(number), name: cut(name) };
}

/**
 * The first header of CALLER_ID_HEADERS that parses wins; `values` maps header name → value (or null).
 * `fromTrustedSource` false: only From is read.
 */
export function pickCallerId(values: { [header: string]: string | null }, fromTrustedSource: boolean): Caller {
  for (let i = fromTrustedSource ? 0 : CALLER_ID_HEADERS.length - 1; i < CALLER_ID_HEADERS.length; i++) {
    const value = values[CALLER_ID_HEADERS[i]];
    if (!value) continue;
    const caller = parseCallerId(value);
    if (caller && (caller.number || caller.name)) return caller;
  }
  return { number: "", name: "" };
}
