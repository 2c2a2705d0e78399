// The marks of REGISTERs the plugin already applied. They sit at the front of the AOR's pusher_devices item, so
// that kamailio/pusher.cfg (route PUSHER_INTERNAL_KNOWN_REGISTER and its PUSHER_MARK_* defines) answers the same
// REGISTER again without JS; test/kamailio/pusher-cfg.test.ts checks that the cfg reads what this file writes.
// Marks are a cache: htable only, never on disk; any change to the AOR's devices drops them (device-store.ts).
import { has } from "./own-key";

/**
 * A mark: `<key><caps code>;`, the key being 16 hex digits that cfg computes from a REGISTER, the code the
 * Feature-Caps its reply gets. At most MAX_MARKS, newest first, ahead of the JSON: cfg compares the key at each
 * of those fixed offsets.
 */
export const MARK_LENGTH = 18;
export const MAX_MARKS = 3;
export const FEATURE_CAPS_CODES: { [pns: string]: string } = { "": "0", apns: "a", "apns.dev": "d", fcm: "f" };

/** The mark of a REGISTER whose key cfg computed ($var(pusher_binding_key)), or "" when it has none. */
export function markOf(key: string, pns: string): string {
  if (!/^[0-9a-f]{16}$/.test(key) || !has(FEATURE_CAPS_CODES, pns)) return "";
  return key + FEATURE_CAPS_CODES[pns] + ";";
}

/** `mark` first, then the other marks already there, MAX_MARKS at most. */
export function withMark(marks: string, mark: string): string {
  let result = mark;
  for (let at = 0; at + MARK_LENGTH <= marks.length && result.length < MARK_LENGTH * MAX_MARKS; at += MARK_LENGTH) {
    const other = marks.substring(at, at + MARK_LENGTH);
    if (other !== mark) result += other;
  }
  return result;
}
