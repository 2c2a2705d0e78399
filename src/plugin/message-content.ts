// What the plugin decides about a MESSAGE from its text alone (docs/messages.md): whether it may be stored, what
// its push may show, and the headers of the copy delivered later. Pure, no KSR: unit tested in Node, run in Duktape.

import { MessagesConfig } from "../config";
import { utf8HexToText } from "./sip-text";

/** RFC 3428 §7: a MESSAGE outside a session, over a transport without congestion control, must stay under 1300 bytes. */
export const MAX_UDP_MESSAGE_BYTES = 1300;
/** How much of a text/plain body a push shows (messages.previewInPush). */
export const PREVIEW_CHARACTERS = 100;
// uac_req_send's buffers (Kamailio's uac module, uac_send.c): URIs below 1024 bytes, extra headers below 2048
// (a Content-Type this long and the Date fit).
const MAX_URI_BYTES = 1000;

export interface Refusal {
  code: number;
  reason: string;
  /** Why, for the log line. */
  why: string;
}

/**
 * Why a MESSAGE that no phone took cannot be stored, or null: too large for its transport (513, RFC 3428 §7:
 * 1300 bytes over UDP; messages.maxBodyBytes over TCP and TLS), headers longer than the delivered copy can carry
 * (513: `headerBytes` is the longest of From, To and Content-Type), or too many waiting for the AOR already (480).
 */
export function storeRefusal(
  transport: string,
  requestBytes: number,
  bodyBytes: number,
  waiting: number,
  headerBytes: number,
  config: MessagesConfig,
): Refusal | null {
  if (transport === "udp" && requestBytes > MAX_UDP_MESSAGE_BYTES) {
    return {
      code: 513,
      reason: "Message Too Large",
      why: "a MESSAGE over UDP above " + MAX_UDP_MESSAGE_BYTES + " bytes (RFC 3428 §7)",
    };
  }
  if (bodyBytes > config.maxBodyBytes) {
    return {
      code: 513,
      reason: "Message Too Large",
      why: "its body is above messages.maxBodyBytes (" + config.maxBodyBytes + " bytes)",
    };
  }
  if (headerBytes > MAX_URI_BYTES)
    return {
      code: 513,
      reason: "Message Too Large",
      why: "its From, To or Content-Type is above " + MAX_URI_BYTES + " bytes",
    };
  if (waiting >= config.maxPerAor) {
    return {
      code: 480,
      reason: "Temporarily Unavailable",
      why: "messages.maxPerAor (" + config.maxPerAor + ") messages wait for the AOR already",
    };
  }
  return null;
}

/** Whether a Content-Type is text/plain (any parameters; charset UTF-8 or none is what SIP text is). */
export function isTextPlain(contentType: string): boolean {
  return /^\s*text\/plain\s*(;|$)/i.test(contentType);
}

/**
 * The first PREVIEW_CHARACTERS characters of a text/plain body, or null for any other type. `text` is the body as
 * Kamailio gave it when it is valid UTF-8: Duktape keeps a 4-byte character (an emoji) as one, and hands it on as the
 * same 4 bytes, where a decoded one would go out as CESU-8 (sip-message.ts headerText says the same of names); else
 * the decoded start of it (bodyPreviewText).
 */
export function previewOf(contentType: string, text: string): string | null {
  if (!isTextPlain(contentType)) return null;
  let end = 0;
  for (let count = 0; count < PREVIEW_CHARACTERS && end < text.length; count++) {
    // Text decoded in JS holds UTF-16 surrogate pairs: never one half of a pair.
    const unit = text.charCodeAt(end);
    end += unit >= 0xd800 && unit <= 0xdbff && end + 1 < text.length ? 2 : 1;
  }
  return text.substring(0, end);
}

/** The start of a body that is not valid UTF-8, decoded (invalid bytes as U+FFFD): at most 4 bytes a character. */
export function bodyPreviewText(bodyHex: string): string {
  return utf8HexToText(bodyHex.substring(0, PREVIEW_CHARACTERS * 8));
}

/** A From or To value without its tag param: the delivered copy is a new request, tm gives it its own tag. */
export function withoutTag(value: string): string {
  const close = value.lastIndexOf(">");
  const params = close >= 0 ? close + 1 : value.indexOf(";");
  if (params < 0) return value.replace(/^\s+|\s+$/g, "");
  const head = value.substring(0, params);
  const kept = value
    .substring(params)
    .split(";")
    .filter(function (param: string) {
      return param.replace(/^\s+|\s+$/g, "") !== "" && !/^\s*tag\s*(=|$)/i.test(param);
    });
  return (head + (kept.length ? ";" + kept.join(";") : "")).replace(/^\s+|\s+$/g, "");
}

const DAYS = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

function twoDigits(value: number): string {
  return (value < 10 ? "0" : "") + value;
}

/** RFC 3261 §25.1 SIP-date (RFC 1123, GMT) of epoch ms: when the message reached the proxy. */
export function sipDate(ms: number): string {
  const date = new Date(ms);
  return (
    DAYS[date.getUTCDay()] +
    ", " +
    twoDigits(date.getUTCDate()) +
    " " +
    MONTHS[date.getUTCMonth()] +
    " " +
    date.getUTCFullYear() +
    " " +
    twoDigits(date.getUTCHours()) +
    ":" +
    twoDigits(date.getUTCMinutes()) +
    ":" +
    twoDigits(date.getUTCSeconds()) +
    " GMT"
  );
}

/** The extra headers of the delivered copy: its Content-Type and the Date it reached the proxy. */
export function deliveredHeaders(contentType: string, storedAtMs: number): string {
  return (contentType ? "Content-Type: " + contentType + "\r\n" : "") + "Date: " + sipDate(storedAtMs) + "\r\n";
}
