// The helper's half of Kamailio's metrics: a scrape asks over the link and waits a bounded time for the answer.
import { describe, expect, it } from "vitest";
import { KamailioStatsRequests } from "../../src/helper/kamailio-stats-requests";
import type { StatsRequest } from "../../src/protocol";

describe("KamailioStatsRequests", () => {
  it("adds Kamailio's counters to the scrape when the plugin answers its request", async () => {
    const sent: StatsRequest[] = [];
    const stats = new KamailioStatsRequests((request) => (sent.push(request), true));
    const text = stats.text();
    stats.receive({ type: "stats", id: sent[0].id + 1, values: { calls_held: 99 }, helperConnections: 2 }); // not ours
    stats.receive({
      type: "stats",
      id: sent[0].id,
      values: { calls_held: 4, wake_latency_le_1: 2, wake_latency_count: 2 },
      helperConnections: 1,
    });
    const scraped = await text;
    expect(scraped).toContain("pusher_kamailio_stats_up 1\n");
    expect(scraped).toContain("pusher_calls_held_total 4\n");
    expect(scraped).toContain('pusher_wake_latency_seconds_bucket{le="+Inf"} 2\n');
    expect(scraped).toContain("pusher_kamailio_helper_connections 1\n");
  });

  it("leaves Kamailio's side out, with pusher_kamailio_stats_up 0, when the link is down or nobody answers in time", async () => {
    const down = new KamailioStatsRequests(() => false);
    expect(await down.text()).toMatch(/pusher_kamailio_stats_up 0\n$/);
    const silent = new KamailioStatsRequests(() => true, 20);
    const text = await silent.text();
    expect(text).toMatch(/pusher_kamailio_stats_up 0\n$/);
    expect(text).not.toContain("pusher_calls_held_total");
  });
});
