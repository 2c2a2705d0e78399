// Load, long variant (npm run test:faults only, about 2 minutes): more than 1000 calls held at once while phones
// REGISTER at 300/s for 60 s. Calls arrive at 55/s for the same 60 s and each is held for t2 = 20 s, so from
// 20 s on about 1100 are held at any time. Every call gets exactly one final answer by t2 (+1 s), shared memory
// returns to its baseline, nothing restarts. load.short.test.ts is the variant npm test runs.
import { expect, it } from "vitest";
import { LoadOptions, describeLoad, expectLoadSurvived, runLoad, useLoadFixture } from "./support/load";

const OPTIONS: LoadOptions = {
  callees: 1000,
  calls: 3300,
  callsPerSecond: 55,
  t2Ms: 20000,
  registerPhones: 300,
  registersPerSecond: 300,
  registerSeconds: 60,
};

const fixture = useLoadFixture(OPTIONS);

it("gives 3300 calls, over 1000 held at once, exactly one final answer each under 300 REGISTER/s for 60 s", async () => {
  const figures = await runLoad(fixture(), OPTIONS);
  console.log(describeLoad("load (long)", figures, OPTIONS));
  expectLoadSurvived(figures, OPTIONS, fixture());
  expect(figures.peakHeld).toBeGreaterThanOrEqual(1000);
}, 300000);
