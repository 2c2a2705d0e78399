// `pusher metrics` after one pushed call: both sides' counters moved (Kamailio's from htable pusher_stats, the
// helper's from its /metrics), as Prometheus text. The helper's /metrics alone has both (it asks the plugin over
// the link at each scrape); without a helper, `pusher metrics` reads Kamailio's side over the ctl socket.
import { execFile } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import http from "node:http";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../support/free-port";
import { kamailioMetricsText, kamailioStatsKeys } from "../../src/kamailio-stats";
import { ROOT } from "../support/pusher-process";
import { Phone } from "../support/topology";
import {
  APP_ID,
  call,
  dropBindings,
  pushParams,
  registerAndAnswer,
  registerPhone,
  sharedCallId,
  startWakeFixture,
  waitForPushes,
  WakeFixture,
} from "../support/wake-fixture";

let fixture: WakeFixture;

function metrics(configPath = fixture.pusher.configPath): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [join(ROOT, "dist", "cli.js"), "--config", configPath, "metrics"],
      (error, stdout, stderr) => {
        resolve({ code: error ? 1 : 0, stdout, stderr });
      },
    );
  });
}

/** What Prometheus gets from the helper's endpoint. */
function scrapeHelper(): Promise<string> {
  const port = JSON.parse(readFileSync(fixture.pusher.configPath, "utf8")).metrics.port as number;
  return new Promise((resolve, reject) => {
    http
      .get({ host: "127.0.0.1", port, path: "/metrics" }, (response) => {
        let body = "";
        response.setEncoding("utf8");
        response.on("data", (chunk: string) => (body += chunk));
        response.on("end", () => resolve(body));
      })
      .on("error", reject);
  });
}

/** The value of one sample line, e.g. `pusher_calls_held_total` or `pusher_pushes_total{provider="apple",…}`. */
function sample(text: string, name: string): number {
  const line = text.split("\n").find((candidate) => candidate.startsWith(name + " "));
  if (!line) throw new Error(`no sample ${name} in:\n${text}`);
  return Number(line.slice(name.length + 1));
}

beforeAll(async () => {
  fixture = await startWakeFixture({ timers: { inviteFirstMs: 1000, pushWaitMs: 8000, afterWakeMs: 5000 } });
}, 30000);

afterAll(async () => {
  await fixture?.stop();
});

describe("pusher metrics", () => {
  it("starts at zero with the helper connected", async () => {
    const before = await metrics();
    expect(before.code, before.stderr).toBe(0);
    expect(sample(before.stdout, "pusher_calls_held_total")).toBe(0);
    expect(sample(before.stdout, "pusher_wake_latency_seconds_count")).toBe(0);
    expect(sample(before.stdout, "pusher_helper_connected")).toBe(1);
    expect(sample(before.stdout, "pusher_kamailio_helper_connections")).toBe(1);
  });

  it("counts a held call, its push, its wake-up and the wake latency", async () => {
    const { pusher, apns } = fixture;
    const phone = await Phone.create();
    const token = apns.newDevice(APP_ID);
    await registerPhone(pusher, phone, pushParams(token));
    dropBindings(pusher, phone);
    const callId = sharedCallId(phone);
    const caller = call(pusher, phone, "call-answered.xml", { callId });
    await waitForPushes(apns, token, 1, 8000, pusher);
    const woken = await registerAndAnswer(pusher, await phone.newSocket(), pushParams(token), callId);
    expect(woken.code, woken.output).toBe(0);
    expect((await caller).code).toBe(0);

    const after = await metrics();
    expect(after.code, after.stderr).toBe(0);
    expect(sample(after.stdout, "pusher_calls_held_total")).toBe(1);
    expect(sample(after.stdout, "pusher_calls_woken_total")).toBe(1);
    expect(sample(after.stdout, "pusher_calls_timed_out_total")).toBe(0);
    expect(sample(after.stdout, 'pusher_pushes_total{provider="apple",purpose="call",outcome="sent",code=""}')).toBe(1);
    expect(sample(after.stdout, "pusher_wake_latency_seconds_count")).toBe(1);
    expect(sample(after.stdout, 'pusher_wake_latency_seconds_bucket{le="+Inf"}')).toBe(1);
    expect(sample(after.stdout, "pusher_wake_latency_seconds_sum")).toBeGreaterThan(0);
  });

  it("counts a call nobody wakes for as timed out, and a cancelled one as cancelled", async () => {
    const { pusher, apns } = fixture;
    const sleeper = await Phone.create();
    const token = apns.newDevice(APP_ID);
    await registerPhone(pusher, sleeper, pushParams(token));
    dropBindings(pusher, sleeper);
    const cancelled = await call(pusher, sleeper, "call-cancelled.xml");
    expect(cancelled.code, cancelled.output).toBe(0);
    const unanswered = await call(pusher, sleeper, "call-unavailable.xml");
    expect(unanswered.code, unanswered.output).toBe(0);
    // One call push each, both accepted; a PushKit-only device gets no call-ended push.
    expect(apns.requestsFor(token).map((push) => push.status)).toEqual([200, 200]);
    const after = await metrics();
    expect(sample(after.stdout, "pusher_calls_cancelled_total")).toBe(1);
    expect(sample(after.stdout, "pusher_calls_timed_out_total")).toBe(1);
  }, 30000);

  it("serves Kamailio's counters on the helper's /metrics too, so Prometheus scrapes one endpoint", async () => {
    const scraped = await scrapeHelper();
    expect(sample(scraped, "pusher_kamailio_stats_up")).toBe(1);
    expect(sample(scraped, "pusher_calls_held_total")).toBe(3);
    expect(sample(scraped, "pusher_calls_cancelled_total")).toBe(1);
    expect(sample(scraped, "pusher_wake_latency_seconds_count")).toBe(1);
    expect(sample(scraped, "pusher_kamailio_helper_connections")).toBe(1);
    expect(
      sample(scraped, 'pusher_pushes_total{provider="apple",purpose="call",outcome="sent",code=""}'),
    ).toBeGreaterThanOrEqual(1);
    // Every pusher_stats item reaches the helper's /metrics with the value Kamailio holds (the plugin answers the
    // helper's stats request from htable): the scrape carries Kamailio's whole text, item by item.
    const dump = fixture.pusher.rpc("htable.dump", "pusher_stats");
    const items = new Map(
      [...dump.matchAll(/name: (\S+)\s*\n\s*value: (\S+)/g)].map((match) => [match[1], Number(match[2])]),
    );
    expect(kamailioStatsKeys().filter((key) => (items.get(key) ?? 0) > 0).length).toBeGreaterThan(5);
    const kamailioSide = kamailioMetricsText((key) => items.get(key) ?? 0, 1)
      .split("\n")
      .filter((line) => line !== "");
    expect(kamailioSide.filter((line) => !scraped.split("\n").includes(line))).toEqual([]);
    // `pusher metrics` prints each family once when the helper already has Kamailio's side.
    const printed = (await metrics()).stdout;
    expect(printed.match(/^# TYPE pusher_calls_held_total /gm)).toHaveLength(1);
  });

  it("reads Kamailio's side over the ctl socket when the helper cannot be reached, and says the helper is missing", async () => {
    const config = JSON.parse(readFileSync(fixture.pusher.configPath, "utf8"));
    config.metrics.port = await freePort(); // nobody listens there
    const configPath = join(fixture.pusher.dir, "pusher-without-helper.json");
    writeFileSync(configPath, JSON.stringify(config));
    const result = await metrics(configPath);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain("helper at 127.0.0.1:");
    expect(sample(result.stdout, "pusher_calls_held_total")).toBe(3);
    expect(result.stdout).not.toContain("pusher_helper_connected");
  });
});
