// The helper's counters in Prometheus text format (exposition format 0.0.4), served on 127.0.0.1 only:
// pushes per provider, outcome and code, tokens the providers declared dead, credentials alarms, the link; and
// Kamailio's, asked for at each scrape (kamailio-stats-requests.ts).
// No dependency: a counter is a map from its label string to a number.
import http from "node:http";
import type { PushProvider, PushPurpose } from "../protocol";
import type { Logger } from "./logger";

export const METRICS_HOST = "127.0.0.1";

interface CounterFamily {
  help: string;
  values: Map<string, number>;
}

/** Prometheus label value escaping: backslash, double quote and newline. */
function labelValue(value: string): string {
  return value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

function labelString(labels: { [name: string]: string }): string {
  const names = Object.keys(labels);
  if (!names.length) return "";
  return "{" + names.map((name) => `${name}="${labelValue(labels[name])}"`).join(",") + "}";
}

export class HelperMetrics {
  private readonly counters = new Map<string, CounterFamily>();
  /** Whether the evapi link to Kamailio is up, read when the metrics are rendered. */
  linkUp: () => boolean = () => false;

  constructor() {
    this.family(
      "pusher_pushes_total",
      "Pushes the helper finished, by provider, purpose (call, call-ended, message, refresh), outcome (sent, failed) and PUSHER_ERR_* code.",
    );
    this.family(
      "pusher_tokens_purged_total",
      "Device tokens the provider declared dead (dropped from the device records).",
    );
    this.family(
      "pusher_credentials_alarms_total",
      "Pushes refused because of the app's credentials, by app and provider.",
    );
    this.family("pusher_config_reloads_total", "Configuration reloads (SIGHUP), by result (applied, refused).");
  }

  private family(name: string, help: string): void {
    this.counters.set(name, { help, values: new Map() });
  }

  private increment(name: string, labels: { [name: string]: string }): void {
    const family = this.counters.get(name)!;
    const key = labelString(labels);
    family.values.set(key, (family.values.get(key) ?? 0) + 1);
  }

  /** One finished push (after its retries). */
  countPush(
    provider: PushProvider,
    purpose: PushPurpose,
    outcome: "sent" | "failed",
    code: string | undefined,
    dropToken: boolean,
  ): void {
    this.increment("pusher_pushes_total", { provider, purpose, outcome, code: code ?? "" });
    if (dropToken) this.increment("pusher_tokens_purged_total", { provider });
  }

  countCredentialsAlarm(appId: string, provider: PushProvider): void {
    this.increment("pusher_credentials_alarms_total", { app: appId, provider });
  }

  countReload(result: "applied" | "refused"): void {
    this.increment("pusher_config_reloads_total", { result });
  }

  /** The Prometheus text of every counter and gauge. */
  render(): string {
    const lines: string[] = [];
    for (const [name, family] of this.counters) {
      lines.push(`# HELP ${name} ${family.help}`, `# TYPE ${name} counter`);
      for (const [labels, value] of family.values) lines.push(`${name}${labels} ${value}`);
    }
    lines.push(
      "# HELP pusher_helper_connected 1 while the helper's link to Kamailio (evapi) is up.",
      "# TYPE pusher_helper_connected gauge",
    );
    lines.push(`pusher_helper_connected ${this.linkUp() ? 1 : 0}`);
    return lines.join("\n") + "\n";
  }
}

/**
 * Serves GET /metrics on 127.0.0.1:<port>: the helper's counters, then `kamailioSide` (Kamailio's, asked over the
 * link). A port in use is logged and tolerated: pushes matter more than metrics. Resolves with the server (null
 * when it could not listen).
 */
export function serveMetrics(
  metrics: HelperMetrics,
  port: number,
  logger: Logger,
  kamailioSide?: () => Promise<string>,
): Promise<http.Server | null> {
  const server = http.createServer((request, response) => {
    if (request.method !== "GET" || (request.url ?? "").split("?")[0] !== "/metrics") {
      response.writeHead(404, { "content-type": "text/plain" }).end("only GET /metrics here\n");
      return;
    }
    const helperSide = metrics.render();
    void (kamailioSide ? kamailioSide() : Promise.resolve("")).then((text) => {
      response.writeHead(200, { "content-type": "text/plain; version=0.0.4; charset=utf-8" }).end(helperSide + text);
    });
  });
  return new Promise((resolve) => {
    server.once("error", (error: NodeJS.ErrnoException) => {
      logger.error(
        `metrics: cannot listen on ${METRICS_HOST}:${port} (${error.code ?? error.message}); no /metrics (set metrics.port)`,
      );
      resolve(null);
    });
    server.listen(port, METRICS_HOST, () => {
      logger.info(`metrics: Prometheus text on http://${METRICS_HOST}:${port}/metrics`);
      server.unref();
      resolve(server);
    });
  });
}
