// Load, short variant (runs in npm test): 100 calls held at once while phones REGISTER at 300/s for 5 s.
// Every call gets exactly one final answer by t2 (+1 s), shared memory returns to its baseline, nothing restarts.
// The long variant (1000 held, 60 s) is load.long.test.ts in npm run test:faults.
import { expect, it } from "vitest";
import { LoadOptions, describeLoad, expectLoadSurvived, runLoad, useLoadFixture } from "./support/load";

const OPTIONS: LoadOptions = {
  callees: 100,
  calls: 100,
  callsPerSecond: 200,
  t2Ms: 5000,
  registerPhones: 300,
  registersPerSecond: 300,
  registerSeconds: 5,
};

const fixture = useLoadFixture(OPTIONS);

it("gives 100 held calls exactly one final answer each under 300 REGISTER/s, and shared memory returns to its baseline", async () => {
  const figures = await runLoad(fixture(), OPTIONS);
  if (!fixture().apns.requests.length)
    console.log(
      fixture()
        .pusher.output()
        .split("\n")
        .filter((line) => /helper\]|ERROR|WARN|push failed/.test(line))
        .slice(0, 15)
        .join("\n"),
    );
  console.log(describeLoad("load (short)", figures, OPTIONS));
  expectLoadSurvived(figures, OPTIONS, fixture());
  expect(figures.peakHeld).toBe(OPTIONS.calls);
}, 120000);
