// Names of the htable tables the include file (kamailio/pusher.cfg) defines. State shared by all Kamailio
// processes lives there: every process has its own JS heap, so nothing shared may live in JS globals.

/** Device records, one item per AOR: JSON object instance → DeviceRecord. */
export const DEVICES_TABLE = "pusher_devices";
/** Token index: `<provider>:<token>` → JSON {aor, instance} of the device holding it (rebuilt at load). */
export const TOKENS_TABLE = "pusher_tokens";
/** Held calls (`call:<callRef>`) and the calls waiting per AOR (`wait:<aor>`). */
export const CALLS_TABLE = "pusher_calls";
/** Process-wide facts: config file path and generation, helper connection, rate-limited log marks. */
export const STATE_TABLE = "pusher_state";
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

/** True at most once per `seconds` per mark across all processes: for "log once" errors. */
export function firstTimeIn(mark: string, seconds: number): boolean {
  const key = "logged:" + mark;
  return withLock(STATE_TABLE, key, function () {
    const last = getNumber(STATE_TABLE, key);
    const now = Math.floor(Date.now() / 1000);
    if (last && now - last < seconds) return false;
    KSR.htable.sht_seti(STATE_TABLE, key, now);
    return true;
  });
}
