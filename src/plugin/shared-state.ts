// Names of the htable tables the include file (kamailio/pusher.cfg) defines. State shared by all Kamailio
// processes lives there: every process has its own JS heap, so nothing shared may live in JS globals.

/** Device records, one item per AOR: JSON object instance → DeviceRecord. */
export const DEVICES_TABLE = "pusher_devices";
/** Token index: `<provider>:<token>` → JSON {aor, instance} of the device holding it (rebuilt at load). */
export const TOKENS_TABLE = "pusher_tokens";
/** AORs whose record the database has not got (it failed or was held): AOR → epoch s of the next retry (0: the
 * timer's next tick). Node-local, never replicated: the node that took the change writes it (device-store.ts). */
export const UNSAVED_TABLE = "pusher_unsaved";
/** Held calls (`call:<callRef>`), the calls waiting per AOR (`wait:<aor>`), and the call-ended, message and refresh
 * pushes awaiting their result (`sent:<ref>`, sent-pushes.ts). */
export const CALLS_TABLE = "pusher_calls";
/** One-time registration tokens (`regtoken:<token>`, register-token.ts): replicated in a cluster, as a phone woken
 * by a call held on one node may register on another. */
export const REGISTRATION_TOKENS_TABLE = "pusher_reg_tokens";
/** Per-AOR push times for calls.maxPushesPerAorPerMinute (`pushes:<aor>` → JSON epoch ms list; call-limits.ts). */
export const LIMITS_TABLE = "pusher_limits";
/** Process-wide facts: config file path and generation, helper connection. */
export const STATE_TABLE = "pusher_state";
/** "Log once" marks (firstTimeIn): LOG_MARK_SLOTS items at most, each expiring (knob PUSHER_LOG_MARK_SECONDS). */
export const LOG_MARKS_TABLE = "pusher_log_marks";
/** Counters and the wake-latency histogram (call-metrics.ts), read by `pusher metrics`. */
export const STATS_TABLE = "pusher_stats";

export function getString(table: string, key: string): string | null {
  const value = KSR.htable.sht_get(table, key);
  return typeof value === "string" ? value : null;
}

export function getNumber(table: string, key: string): number {
  const value = KSR.htable.sht_get(table, key);
  return typeof value === "number" ? value : 0;
}

export function getJson<T>(table: string, key: string): T | null {
  const text = getString(table, key);
  if (text === null) return null;
  try {
    return JSON.parse(text) as T;
  } catch (e) {
    return null;
  }
}

export function setJson(table: string, key: string, value: unknown): void {
  KSR.htable.sht_sets(table, key, JSON.stringify(value));
}

export function remove(table: string, key: string): void {
  KSR.htable.sht_rm(table, key);
}

/** Runs `body` holding the htable slot lock of `key` (re-entrant within one process). */
export function withLock<T>(table: string, key: string, body: () => T): T {
  KSR.htable.sht_lock(table, key);
  try {
    return body();
  } finally {
    KSR.htable.sht_unlock(table, key);
  }
}

// A mark names what it rate-limits, a User-Agent say: any text a phone sends. Its hash picks one of this many
// slots, so the marks hold at most this many short items whatever arrives (a few dozen KiB); two marks that share a
// slot only log again sooner.
const LOG_MARK_SLOTS = 1024;
const DEFAULT_LOG_MARK_SECONDS = 3600;

/** FNV-1a, 32 bits, of the UTF-16 code units of `text` (Duktape has no crypto; this spreads marks over slots). */
function textHash(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    // × the FNV prime 2^24 + 2^8 + 0x93, modulo 2^32, without Math.imul (ES2015, not in Duktape's ES5).
    hash = (hash + (hash << 1) + (hash << 4) + (hash << 7) + (hash << 8) + (hash << 24)) >>> 0;
  }
  return hash;
}

/** How long a mark lives: knob PUSHER_LOG_MARK_SECONDS, which route PUSHER_HTABLE_INIT writes to pusher_state. */
function logMarkSeconds(): number {
  return getNumber(STATE_TABLE, "log_mark_seconds") || DEFAULT_LOG_MARK_SECONDS;
}

/**
 * True at most once per `seconds` (at most PUSHER_LOG_MARK_SECONDS) per mark across all processes: for "log once"
 * lines. htable drops each mark when its time is up (sht_setxs), so marks take no memory for good.
 */
export function firstTimeIn(mark: string, seconds: number): boolean {
  const lifetime = Math.min(seconds, logMarkSeconds());
  const hash = textHash(mark);
  const key = "slot:" + (hash % LOG_MARK_SLOTS);
  // `<8 hex digits of the hash>:<epoch s>`, always 19 characters: htable 5.6 keeps the expiry sht_setxs gives only
  // when the new value fits the old one's place (a longer value got "expire: NEVER" and stayed for good).
  const value = ("0000000" + hash.toString(16)).slice(-8);
  return withLock(LOG_MARKS_TABLE, key, function () {
    const held = getString(LOG_MARKS_TABLE, key);
    const now = Math.floor(Date.now() / 1000);
    if (held !== null && held.substring(0, 8) === value && now - Number(held.substring(9)) < lifetime) return false;
    KSR.htable.sht_setxs(LOG_MARKS_TABLE, key, value + ":" + now, lifetime);
    return true;
  });
}
