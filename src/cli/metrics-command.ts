// `pusher metrics`: both sides' counters as one Prometheus text. The helper's endpoint
// (http://127.0.0.1:<metrics.port>/metrics, what Prometheus scrapes) has both while its link to Kamailio is up
// (pusher_kamailio_stats_up 1); otherwise Kamailio's call counters and wake-latency histogram (htable
// pusher_stats, src/kamailio-stats.ts) are read here over the ctl socket.
import http from "node:http";
import { runningConfig } from "./cluster-options";
import { CliError } from "./config-file";
import { parseHtableItems } from "./devices-command";
import { callKamailio } from "./kamailio-rpc";
import { kamailioMetricsText } from "../kamailio-stats";

const HELPER_TIMEOUT_MS = 3000;

/** Prometheus text for Kamailio's side, from the items of `htable.dump pusher_stats` and the helper count. */
export function kamailioMetrics(stats: { name: string; value: string }[], helperConnections: number): string {
  return kamailioMetricsText(
    (key) => Number(stats.find((item) => item.name === key)?.value ?? 0) || 0,
    helperConnections,
  );
}

function fetchHelperMetrics(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const request = http.get({ host: "127.0.0.1", port, path: "/metrics", timeout: HELPER_TIMEOUT_MS }, (response) => {
      let body = "";
      response.setEncoding("utf8");
      response.on("data", (chunk: string) => (body += chunk));
      response.on("end", () =>
        response.statusCode === 200 ? resolve(body) : reject(new Error(`HTTP ${response.statusCode}`)),
      );
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
  const { config, paths } = runningConfig(configPath, { ownKamailio: kamailioCtl !== undefined });
  const ctlSocket = kamailioCtl ? kamailioCtl.replace(/^unix:/, "") : paths.ctlSocket;
  const problems: string[] = [];
  const helper =
    config.metrics.port > 0
      ? await fetchHelperMetrics(config.metrics.port).catch(
          (error: Error) => (problems.push(`helper at 127.0.0.1:${config.metrics.port}: ${error.message}`), ""),
        )
      : (problems.push("helper: metrics.port is 0 (off)"), "");
  const helperHasKamailio = /^pusher_kamailio_stats_up 1$/m.test(helper);
  const kamailio = helperHasKamailio
    ? ""
    : await readKamailioMetrics(ctlSocket).catch((error: Error) => (problems.push(`Kamailio: ${error.message}`), ""));
  process.stdout.write(helper + kamailio);
  if (problems.length) throw new CliError("PUSHER_ERR_METRICS", `could not read every side: ${problems.join("; ")}`);
}
