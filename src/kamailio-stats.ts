// Kamailio's side of the metrics: the items of htable pusher_stats the plugin counts (src/plugin/call-metrics.ts)
// and their Prometheus text. Pure and ES5: the plugin reads the items for the helper's /metrics (a stats report
// over the link), the CLI (`pusher metrics`) reads them over the ctl socket; both print them with this text.

/** htable key, Prometheus name, help: the counters. */
const KAMAILIO_COUNTERS: [string, string, string][] = [
  ["calls_held", "pusher_calls_held_total", "Calls whose callee's phones were pushed (held until a phone registers)."],
  ["calls_woken", "pusher_calls_woken_total", "Held calls relayed to a phone that registered after its push."],
  [
    "calls_timed_out",
    "pusher_calls_timed_out_total",
    "Held calls no phone registered for within t2 (timers.pushWaitMs).",
  ],
  ["calls_cancelled", "pusher_calls_cancelled_total", "Pushed calls the caller cancelled before a phone answered."],
  ["calls_unreachable", "pusher_calls_unreachable_total", "Held calls answered at once because every push failed."],
  [
    "calls_busy",
    "pusher_calls_busy_total",
    "Calls answered 486 Busy Here: their callee had calls.maxHeldPerAor pushed calls held or ringing already.",
  ],
  [
    "calls_push_limited",
    "pusher_calls_push_limited_total",
    "Calls answered 480 without a push: their callee's phones had been pushed calls.maxPushesPerAorPerMinute times in the last minute.",
  ],
  [
    "tokens_purged",
    "pusher_devices_purged_total",
    "Device records removed because the provider said the token is dead.",
  ],
  [
    "registers_unchanged",
    "pusher_registers_unchanged_total",
    "REGISTERs answered without the plugin's JS: the same as one it already handled.",
  ],
  [
    "messages_stored",
    "pusher_messages_stored_total",
    "MESSAGEs stored for a phone no branch reached (answered 202 Accepted).",
  ],
  [
    "messages_delivered",
    "pusher_messages_delivered_total",
    "Stored MESSAGEs a phone took (2xx) after it registered; removed then.",
  ],
  [
    "messages_expired",
    "pusher_messages_expired_total",
    "Stored MESSAGEs dropped undelivered after messages.retentionDays.",
  ],
  [
    "refresh_pushes",
    "pusher_refresh_pushes_total",
    "Refresh pushes requested before a binding expired (RFC 8599 §5.5).",
  ],
  [
    "cluster_wakes_sent",
    "pusher_cluster_wakes_sent_total",
    "REGISTERs here told another node of the cluster that a phone it holds or rings a call for registered.",
  ],
  [
    "cluster_wakes_received",
    "pusher_cluster_wakes_received_total",
    "Registrations on another node of the cluster received here, for calls held or ringing here.",
  ],
  [
    "cluster_dmq_failures",
    "pusher_cluster_dmq_failures_total",
    "KDMQ messages of the plugin DMQ refused to send, and ones received that were not readable.",
  ],
];

/** htable key, Prometheus name, help: the gauges (items the plugin raises and lowers). */
const KAMAILIO_GAUGES: [string, string, string][] = [
  [
    "devices_unsaved",
    "pusher_devices_unsaved",
    "AORs whose device record is in memory only: the database failed or was down; written when it answers.",
  ],
];

/** Upper bounds of the wake-latency buckets, ms (docs/benchmarks.md: the goal is p99 ≤ 5 ms). */
export const WAKE_LATENCY_BUCKETS_MS = [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500];

/**
 * Every pusher_stats item the text below reads: the counters, the gauges, then the wake-latency items (`wake_latency_le_<ms>`
 * per bucket, not cumulative, and `_inf`; the count; the µs sum).
 */
export function kamailioStatsKeys(): string[] {
  const keys: string[] = [];
  for (let i = 0; i < KAMAILIO_COUNTERS.length; i++) keys.push(KAMAILIO_COUNTERS[i][0]);
  for (let i = 0; i < KAMAILIO_GAUGES.length; i++) keys.push(KAMAILIO_GAUGES[i][0]);
  for (let i = 0; i < WAKE_LATENCY_BUCKETS_MS.length; i++) keys.push("wake_latency_le_" + WAKE_LATENCY_BUCKETS_MS[i]);
  keys.push("wake_latency_le_inf", "wake_latency_count", "wake_latency_sum_us");
  return keys;
}

/** Prometheus text for Kamailio's side; `value` gives an item's number (0 when absent). */
export function kamailioMetricsText(value: (key: string) => number, helperConnections: number): string {
  const lines: string[] = [];
  for (let i = 0; i < KAMAILIO_COUNTERS.length; i++) {
    const counter = KAMAILIO_COUNTERS[i];
    lines.push(
      "# HELP " + counter[1] + " " + counter[2],
      "# TYPE " + counter[1] + " counter",
      counter[1] + " " + value(counter[0]),
    );
  }
  for (let i = 0; i < KAMAILIO_GAUGES.length; i++) {
    const gauge = KAMAILIO_GAUGES[i];
    lines.push(
      "# HELP " + gauge[1] + " " + gauge[2],
      "# TYPE " + gauge[1] + " gauge",
      gauge[1] + " " + value(gauge[0]),
    );
  }
  const histogram = "pusher_wake_latency_seconds";
  lines.push(
    "# HELP " + histogram + " Waking REGISTER received → held INVITE relayed to the phone, in Kamailio.",
    "# TYPE " + histogram + " histogram",
  );
  let cumulative = 0;
  for (let i = 0; i < WAKE_LATENCY_BUCKETS_MS.length; i++) {
    const bound = WAKE_LATENCY_BUCKETS_MS[i];
    cumulative += value("wake_latency_le_" + bound);
    lines.push(histogram + '_bucket{le="' + bound / 1000 + '"} ' + cumulative);
  }
  cumulative += value("wake_latency_le_inf");
  lines.push(histogram + '_bucket{le="+Inf"} ' + cumulative);
  lines.push(
    histogram + "_sum " + value("wake_latency_sum_us") / 1e6,
    histogram + "_count " + value("wake_latency_count"),
  );
  lines.push(
    "# HELP pusher_kamailio_helper_connections Helper connections that proved the link secret to Kamailio.",
    "# TYPE pusher_kamailio_helper_connections gauge",
  );
  lines.push("pusher_kamailio_helper_connections " + helperConnections);
  return lines.join("\n") + "\n";
}
