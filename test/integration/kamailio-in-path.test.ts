// The integration suite runs on the `kamailio` first in PATH: Debian 12's 5.6, and in `npm test`'s second pass
// Debian 13's 6.0 (scripts/kamailio-6.0/ first in PATH; docs/kamailio-versions.md). scripts/test.sh names the
// version a pass must run on in PUSHER_TEST_KAMAILIO, so a pass that silently fell back to another Kamailio fails.
import { execFileSync } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PusherProcess, startPusher } from "../support/pusher-process";

let pusher: PusherProcess;

beforeAll(async () => {
  pusher = await startPusher({});
});

afterAll(async () => {
  await pusher?.stop();
});

/** "kamailio 6.0.1 (x86_64/linux)" from `kamailio -v` of the kamailio in PATH. */
const versionInPath = (): string =>
  execFileSync("kamailio", ["-v"], { encoding: "utf8" })
    .split("\n")[0]
    .replace(/^version:\s*/, "")
    .trim();

describe("the Kamailio the suite runs on", () => {
  it("is the one in PATH: pusher start names it, and the running Kamailio answers core.version with it", () => {
    const version = versionInPath();
    expect(pusher.output()).toMatch(
      new RegExp(`^\\[pusher\\] ${version.replace(/[().]/g, "\\$&")} \\(/\\S+/kamailio\\)$`, "m"),
    );
    // kamcmd prints the RPC's string as it is: "kamailio 6.0.1 (x86_64/linux)".
    expect(pusher.rpc("core.version").trim()).toBe(version);
  });

  it.runIf(process.env.PUSHER_TEST_KAMAILIO)("is the version scripts/test.sh runs this pass on", () => {
    expect(versionInPath()).toMatch(
      new RegExp(`^kamailio ${process.env.PUSHER_TEST_KAMAILIO!.replace(/\./g, "\\.")}\\.\\d`),
    );
  });
});
