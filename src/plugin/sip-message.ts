// Small readers and writers around KSR for the message being routed, and the $var/$avp hand-back to cfg.

import { isUtf8Hex, utf8HexToText } from "./sip-text";

/**
 * Whether Duktape can decode every character of `text`. Its case conversion decodes the whole string in C and
 * throws on bytes that are not UTF-8 (even a lone continuation byte, which a regex scan lets through), at ~3 µs
 * for a 230-character Contact where a scanning regex took ~75 µs (docs/benchmarks.md).
 */
function isValidText(text: string): boolean {
  try {
    text.toLowerCase();
    return true;
  } catch (e) {
    return false;
  }
}

/**
 * A PV's value as valid UTF-8 text. Kamailio hands over a message's raw bytes; text that is not UTF-8 (Latin-1
 * `Caf\xe9` in a display name) makes every later regex throw "internal error", and so does re-encoding it in JS.
 * Such a value is fetched again hex-encoded by Kamailio ({s.encode.hexa}) and decoded here, invalid bytes
 * becoming U+FFFD.
 */
function validPv(spec: string, value: string): string {
  if (isValidText(value)) return value;
  const hex = KSR.pv.get("$(" + spec.substring(1) + "{s.encode.hexa})");
  return typeof hex === "string" ? utf8HexToText(hex) : "";
}

/** A PV's value as a string ("" when unset). */
export function pvString(name: string): string {
  const value = KSR.pv.get(name);
  return value === null || value === undefined ? "" : validPv(name, String(value));
}

/**
 * A PV that Kamailio makes itself, never the network (a header count, a socket's address, a $var the cfg set from
 * an md5), as a string ("" when unset): not checked for UTF-8 as pvString does (a case conversion of the value,
 * ~5 000 Duktape instructions a read).
 */
export function pvOwnString(name: string): string {
  const value = KSR.pv.get(name);
  return value === null || value === undefined ? "" : String(value);
}

export function setVar(name: string, value: string | number): void {
  if (typeof value === "number") KSR.pv.seti("$var(" + name + ")", value);
  else KSR.pv.sets("$var(" + name + ")", value);
}

/**
 * A header as valid UTF-8 text, for free text the plugin passes on (caller names). Duktape reads a Latin-1
 * `\xe9` as the start of a 3-byte character, silently eating the bytes after it, which no check on the JS
 * string can see; Kamailio's hex of the raw bytes cannot be misread. Valid text is kept as Kamailio gave it
 * (Duktape passes 4-byte characters such as emoji through untouched, but would re-encode decoded ones as
 * CESU-8); invalid bytes become U+FFFD.
 */
export function headerText(name: string): string | null {
  if (KSR.hdr.is_present(name) <= 0) return null; // a transformation of a missing header logs an error
  const hex = KSR.pv.get("$(hdr(" + name + "){s.encode.hexa})");
  if (typeof hex !== "string" || hex === "") return null;
  return isUtf8Hex(hex) ? header(name) : utf8HexToText(hex);
}

export function header(name: string): string | null {
  const value = KSR.hdr.get(name);
  return typeof value === "string" ? validPv("$hdr(" + name + ")", value) : null;
}

/**
 * Device records and held calls are keyed by `user@domain` as RFC 3261 §19.1.4 compares SIP URIs: the user part
 * is case-sensitive, the host is not (lower-cased). usrloc keys its AORs the same way (registrar case_sensitive 1,
 * use_domain 1 in kamailio/kamailio.cfg), and so do kamailio/pusher.cfg's own keys.
 */
export function aorOf(user: string, domain: string): string {
  return user + "@" + domain.toLowerCase();
}

/** `aorOf` of a `user@domain` text, e.g. the AOR a REGISTER authenticated as. */
export function aorOfText(text: string): string {
  const at = text.lastIndexOf("@");
  return at < 0 ? text : aorOf(text.substring(0, at), text.substring(at + 1));
}

/** The SIP URI a device reaches this proxy at: the advertised address of the socket the request came in on. */
export function receivingProxyUri(): string {
  // One PV read ($_s formats natively; Kamailio parses the format once): three cost Duktape three calls into KSR.
  return pvOwnString("$_s(sip:$RAi:$RAp;transport=$pr)");
}
