// The REGISTER flood, long variant (npm run test:faults only, a few minutes): 100 000 REGISTERs for 500 AORs, each
// with a new User-Agent and, half of them, a new instance id and token. Shared memory ends within 64 KiB of where
// it started once the log marks' lifetime passed. register-limits.test.ts runs 5 000 in npm test.
import { it } from "vitest";
import { describeFlood, expectFloodBounded, runFlood, useFloodFixture } from "./support/register-flood";

// Each AOR keeps about 100 of the flood's usrloc bindings until they are removed (ul.rm): every 200 OK lists them.
const AORS = 500;
const REGISTERS = 100_000;
const MAX_PER_AOR = 10;
const fixture = useFloodFixture();

it("ends 100 000 REGISTERs with new User-Agents and instance ids within 64 KiB of the shared memory it started with", async () => {
  const figures = await runFlood(fixture(), AORS, REGISTERS, MAX_PER_AOR);
  console.log(describeFlood("register flood (long)", figures, REGISTERS));
  expectFloodBounded(figures, AORS, MAX_PER_AOR);
}, 600000);
