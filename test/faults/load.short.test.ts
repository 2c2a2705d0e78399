// Load, short variant (runs in npm test): 100 calls held at once while phones REGISTER at 300/s for 5 s.
// Every call gets exactly one final answer by t2 (+1 s), shared memory returns to its baseline, nothing restarts.
// The long variant (1000 held, 60 s) is load.long.test.ts in npm run test:faults.
import { afterAll, beforeAll, expect, it } from "vitest";
import { WakeFixture, startWakeFixture } from "../support/wake-fixture";
import { LoadOptions, describeLoad, expectLoadSurvived, runLoad } from "./support/load";

const OPTIONS: LoadOptions = {
  callees: 100,
  calls: 100,
  callsPerSecond: 200,
  t2Ms: 5000,
  registerPhones: 300,
  registersPerSecond: 300,
  registerSeconds: 5,
};
// Measured: within a few hundred bytes of the baseline. A leak of 1 KiB per call or per 25 REGISTERs exceeds this.
const SHM_SLACK_BYTES = 64 * 1024;

let fixture: WakeFixture;

beforeAll(async () => {
  fixture = await startWakeFixture({ calls: { strategy: "push-first" }, timers: { pushWaitMs: OPTIONS.t2Ms } });
}, 30000);

afterAll(async () => {
  await fixture?.stop();
});

it("gives 100 held calls exactly one final answer each under 300 REGISTER/s, and shared memory returns to its baseline", async () => {
  const figures = await runLoad(fixture, OPTIONS);
  if (!fixture.apns.requests.length) console.log(fixture.pusher.output().split("\n").filter((line) => /helper\]|ERROR|WARN|push failed/.test(line)).slice(0, 15).join("\n"));
  console.log(describeLoad("load (short)", figures, OPTIONS));
  expectLoadSurvived(figures, OPTIONS);
  expect(figures.peakHeld).toBe(OPTIONS.calls);
  expect(Math.abs(figures.afterShmBytes - figures.baselineShmBytes)).toBeLessThanOrEqual(SHM_SLACK_BYTES);
  expect(fixture.apns.requests.length).toBeGreaterThanOrEqual(OPTIONS.calls);
}, 120000);
