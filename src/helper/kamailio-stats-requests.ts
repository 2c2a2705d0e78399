// Kamailio's counters for the helper's /metrics: each scrape asks the plugin over the link (a StatsRequest), which
// answers with the items of htable pusher_stats (a StatsReport). Prometheus then scrapes one endpoint for both
// sides. A Kamailio that does not answer in time leaves its side out of that scrape (pusher_kamailio_stats_up 0).
import { randomInt } from "node:crypto";
import { kamailioMetricsText } from "../kamailio-stats";
import type { StatsReport, StatsRequest } from "../protocol";

export const STATS_TIMEOUT_MS = 1000;

export class KamailioStatsRequests {
  // evapi sends a report to every connected helper: ids that start apart keep two helpers' scrapes apart.
  private nextId = randomInt(1, 2 ** 30);
  private readonly pending = new Map<number, (report: StatsReport | null) => void>();

  constructor(
    private readonly send: (request: StatsRequest) => boolean,
    private readonly timeoutMs = STATS_TIMEOUT_MS,
  ) {}

  /** The plugin's report, or null when the link is down or Kamailio did not answer within the timeout. */
  request(): Promise<StatsReport | null> {
    const id = this.nextId++;
    if (!this.send({ type: "stats-request", id })) return Promise.resolve(null);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        resolve(null);
      }, this.timeoutMs);
      timer.unref();
      this.pending.set(id, (report) => {
        clearTimeout(timer);
        resolve(report);
      });
    });
  }

  /** A report from the link; one nobody waits for (another helper's, or too late) is ignored. */
  receive(report: StatsReport): void {
    const done = this.pending.get(report.id);
    if (!done) return;
    this.pending.delete(report.id);
    done(report);
  }

  /** Kamailio's side as Prometheus text, and whether Kamailio answered (pusher_kamailio_stats_up). */
  async text(): Promise<string> {
    const report = await this.request();
    const up =
      "# HELP pusher_kamailio_stats_up 1 when Kamailio answered this scrape with its counters (they follow).\n# TYPE pusher_kamailio_stats_up gauge\n";
    if (!report) return up + "pusher_kamailio_stats_up 0\n";
    return (
      up +
      "pusher_kamailio_stats_up 1\n" +
      kamailioMetricsText((key) => report.values[key] ?? 0, report.helperConnections)
    );
  }
}
