// `pusher metrics`: both sides' counters as one Prometheus text. The helper's come from its own endpoint
// (http://127.0.0.1:<metrics.port>/metrics, what Prometheus scrapes); Kamailio's call counters and the wake
// latency histogram live in htable pusher_stats (src/plugin/call-metrics.ts) and are read over the ctl
// socket. Write the output to node_exporter's textfile collector to scrape Kamailio's side too.
import http from "node:http";
import { CliError, loadConfig } from "./config-file";
import { parseHtableItems } from "./devices-command";
import { callKamailio } from "./kamailio-rpc";
import { runtimePaths } from "./start";

const HELPER_TIMEOUT_MS = 3000;
/** The plugin's buckets (call-metrics.ts WAKE_LATENCY_BUCKETS_MS); `inf` collects the rest. */
const WAKE_LATENCY_BUCKETS_MS = [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500];

const CALL_COUNTERS: [string, string, string][] = [
  ["calls_held", "pusher_calls_held_total", "Calls whose callee's phones were pushed (held until a phone registers)."],
  ["calls_woken", "pusher_calls_woken_total", "Held calls relayed to a phone that registered after its push."],
  ["calls_timed_out", "pusher_calls_timed_out_total", "Held calls no phone registered for within t2 (timers.pushWaitMs)."],
  ["calls_cancelled", "pusher_calls_cancelled_total", "Pushed calls the caller cancelled before a phone answered."],
  ["calls_unreachable", "pusher_calls_unreachable_total", "Held calls answered at once because every push failed."],
  ["tokens_purged", "pusher_devices_purged_total", "Device records removed because the provider said the token is dead."],
  ["registers_unchanged", "pusher_registers_unchanged_total", "REGISTERs answered without the plugin's JS: the same as one it already handled."],
];

/** Prometheus text for Kamailio's side, from the items of `htable.dump pusher_stats` and the helper count. */
export function kamailioMetrics(stats: { name: string; value: string }[], helperConnections: number): string {
  const value = (name: string): number => Number(stats.find((item) => item.name === name)?.value ?? 0) || 0;
  const lines: string[] = [];
  for (const [key, name, help] of CALL_COUNTERS) lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} counter`, `${name} ${value(key)}`);
  const histogram = "pusher_wake_latency_seconds";
  lines.push(`# HELP ${histogram} Waking REGISTER received → held INVITE relayed to the phone, in Kamailio.`, `# TYPE ${histogram} histogram`);
  let cumulative = 0;
  for (const bound of WAKE_LATENCY_BUCKETS_MS) {
    cumulative += value(`wake_latency_le_${bound}`);
    lines.push(`${histogram}_bucket{le="${bound / 1000}"} ${cumulative}`);
  }
  cumulative += value("wake_latency_le_inf");
  lines.push(`${histogram}_bucket{le="+Inf"} ${cumulative}`);
  lines.push(`${histogram}_sum ${value("wake_latency_sum_us") / 1e6}`, `${histogram}_count ${value("wake_latency_count")}`);
  lines.push("# HELP pusher_kamailio_helper_connections Helper connections Kamailio's evapi has open.", "# TYPE pusher_kamailio_helper_connections gauge");
  lines.push(`pusher_kamailio_helper_connections ${helperConnections}`);
  return lines.join("\n") + "\n";
}

function fetchHelperMetrics(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const request = http.get({ host: "127.0.0.1", port, path: "/metrics", timeout: HELPER_TIMEOUT_MS }, (response) => {
      let body = "";
      response.setEncoding("utf8");
      response.on("data", (chunk: string) => (body += chunk));
      response.on("end", () => (response.statusCode === 200 ? resolve(body) : reject(new Error(`HTTP ${response.statusCode}`))));
    });
    request.on("timeout", () => request.destroy(new Error("no answer")));
    request.on("error", reject);
  });
}

async function readKamailioMetrics(ctlSocket: string): Promise<string> {
  let stats: { name: string; value: string }[] = [];
  try {
    stats = parseHtableItems(await callKamailio(ctlSocket, ["htable.dump", "pusher_stats"]));
  } catch (error) {
    // An empty table (no call yet) is fine; an unreachable Kamailio is not.
    if (!/empty|no such|not found/i.test((error as Error).message)) throw error;
  }
  const state = parseHtableItems(await callKamailio(ctlSocket, ["htable.get", "pusher_state", "helper_connections"]));
  return kamailioMetrics(stats, Number(state[0]?.value ?? 0) || 0);
}

/** `pusher metrics [--kamailio-ctl SOCKET]`: prints both sides; exit 1 when a side cannot be read. */
export async function runMetrics(configPath: string, kamailioCtl?: string): Promise<void> {
  const { config } = loadConfig(configPath);
  const ctlSocket = kamailioCtl ? kamailioCtl.replace(/^unix:/, "") : runtimePaths(configPath, config).ctlSocket;
  const problems: string[] = [];
  const [helper, kamailio] = await Promise.all([
    config.metrics.port > 0
      ? fetchHelperMetrics(config.metrics.port).catch((error: Error) => (problems.push(`helper at 127.0.0.1:${config.metrics.port}: ${error.message}`), ""))
      : Promise.resolve((problems.push("helper: metrics.port is 0 (off)"), "")),
    readKamailioMetrics(ctlSocket).catch((error: Error) => (problems.push(`Kamailio: ${error.message}`), "")),
  ]);
  process.stdout.write(helper + kamailio);
  if (problems.length) throw new CliError("PUSHER_ERR_METRICS", `could not read every side: ${problems.join("; ")}`);
}
