// Call counters and the wake-latency histogram, in htable pusher_stats (shared by every Kamailio process; the
// helper's /metrics gets them over the link, `pusher metrics` over the ctl socket; src/kamailio-stats.ts lists them):
//   calls_held, calls_woken, calls_timed_out, calls_cancelled, calls_unreachable, calls_busy, calls_push_limited,
//   tokens_purged  (counters)
//   wake_latency_le_<ms>  calls woken with a latency ≤ <ms> and > the bucket below (not cumulative)
//   wake_latency_count, wake_latency_sum_us (string: a float of µs, an int item would clamp at 2^31)
// Wake latency: the waking REGISTER entering route(PUSHER_REGISTER_BEFORE_SAVE) ($var(pusher_register_at), set
// there from $TV(Sn)) → the held INVITE relayed to the phone (pusher_on_delivered, after t_relay in
// route(PUSHER_INTERNAL_DELIVER), which t_continue runs in the REGISTER's own process, so the $var is still set).

import { WAKE_LATENCY_BUCKETS_MS } from "../kamailio-stats";
import { PushedCall } from "./hold-call";
import { STATS_TABLE, withLock } from "./shared-state";
import { pvString } from "./sip-message";

export type CallCounter = "held" | "woken" | "timed_out" | "cancelled" | "unreachable" | "busy" | "push_limited";

export function countCall(counter: CallCounter): void {
  KSR.htable.sht_inc(STATS_TABLE, "calls_" + counter);
}

/** A held call ended in a failure route: still held means nobody registered within t2. */
export function countCallEnded(call: PushedCall | null): void {
  if (call && call.state === "held") countCall("timed_out");
}

export function countTokenPurged(): void {
  KSR.htable.sht_inc(STATS_TABLE, "tokens_purged");
}

/** "1700000000.123456" ($TV(Sn)) → µs; NaN when absent. */
function microseconds(text: string): number {
  const parts = text.split(".");
  if (parts.length !== 2) return NaN;
  return Number(parts[0]) * 1e6 + Number(parts[1]);
}

/** route(PUSHER_INTERNAL_DELIVER), after t_relay: one held call reached its woken phone. */
export function onDelivered(): void {
  countCall("woken");
  const startedUs = microseconds(pvString("$var(pusher_register_at)"));
  const latencyUs = microseconds(pvString("$TV(Sn)")) - startedUs;
  if (!(latencyUs >= 0)) return;
  let bucket = "inf";
  for (let i = 0; i < WAKE_LATENCY_BUCKETS_MS.length; i++) {
    if (latencyUs <= WAKE_LATENCY_BUCKETS_MS[i] * 1000) {
      bucket = String(WAKE_LATENCY_BUCKETS_MS[i]);
      break;
    }
  }
  KSR.htable.sht_inc(STATS_TABLE, "wake_latency_le_" + bucket);
  withLock(STATS_TABLE, "wake_latency_sum_us", function () {
    const sum = Number(KSR.htable.sht_get(STATS_TABLE, "wake_latency_sum_us") || 0);
    KSR.htable.sht_sets(STATS_TABLE, "wake_latency_sum_us", String(sum + latencyUs));
    KSR.htable.sht_inc(STATS_TABLE, "wake_latency_count");
  });
}
