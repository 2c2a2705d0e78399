// `pusher start` and `pusher check` name the Kamailio they run against (the `kamailio` in PATH) and refuse one
// below 5.6. An old Kamailio is a fake `kamailio` script first in PATH that prints an old `kamailio -v` and logs
// how it was called, so a test also sees that start never ran it as Kamailio.
import { execFileSync, spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { beforeEach, describe, expect, it } from "vitest";
import { parseKamailioVersion, requireSupportedKamailio } from "../../src/cli/kamailio-version";
import { ROOT } from "../support/pusher-process";

let dir: string;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "pusher-kamailio-version-"));
});

/** A `kamailio` that answers -v with `versionLine` and writes each command line it got to calls.log. */
function fakeKamailio(versionLine: string): string {
  const bin = join(dir, "bin");
  mkdirSync(bin, { recursive: true });
  const script = join(bin, "kamailio");
  writeFileSync(
    script,
    `#!/bin/sh\necho "$*" >> ${JSON.stringify(join(dir, "calls.log"))}\nprintf '%s\\n' ${JSON.stringify(versionLine)} "flags: USE_TCP"\n`,
  );
  chmodSync(script, 0o755);
  return bin;
}

function pusher(
  pathFirst: string | undefined,
  ...args: string[]
): { code: number | null; stdout: string; stderr: string; signal: NodeJS.Signals | null } {
  const config = join(dir, "pusher.json");
  writeFileSync(config, JSON.stringify({ sip: { auth: false }, stateDir: join(dir, "state") }));
  const env = { ...process.env, PATH: pathFirst ? pathFirst + delimiter + process.env.PATH : process.env.PATH };
  const result = spawnSync(process.execPath, [join(ROOT, "dist", "cli.js"), "--config", config, ...args], {
    encoding: "utf8",
    env,
    timeout: 20_000,
    killSignal: "SIGKILL",
  });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr, signal: result.signal };
}

const calls = (): string[] => readFileSync(join(dir, "calls.log"), "utf8").trim().split("\n");
const realVersion = (): string =>
  execFileSync("kamailio", ["-v"], { encoding: "utf8" })
    .split("\n")[0]
    .replace(/^version:\s*/, "")
    .trim();

describe("the Kamailio version", () => {
  it("pusher start refuses a Kamailio below 5.6 with exit 1 and a message naming both versions, before writing anything", () => {
    const bin = fakeKamailio("version: kamailio 5.5.4 (x86_64/linux) ");
    const result = pusher(bin, "start");
    expect(result.signal).toBeNull();
    expect(result.code).toBe(1);
    expect(result.stderr).toBe(
      `pusher: PUSHER_ERR_KAMAILIO_VERSION: ${join(bin, "kamailio")} is kamailio 5.5.4 (x86_64/linux): kamailio-pusher needs Kamailio 5.6 or later (the plugin calls app_jsdt functions of 5.6; ` +
        "tested on 5.6 and 6.0): install Debian 12's or 13's kamailio kamailio-extra-modules kamailio-utils-modules kamailio-sqlite-modules kamailio-tls-modules, or put a newer kamailio first in PATH\n",
    );
    expect(calls()).toEqual(["-v"]); // asked for its version, never started
    expect(existsSync(join(dir, "state"))).toBe(false);
  });

  it("pusher check fails a Kamailio below 5.6 on its own line and exits 1", () => {
    const bin = fakeKamailio("version: kamailio 5.4.8 (x86_64/linux)");
    const result = pusher(bin, "check");
    expect(result.code).toBe(1);
    expect(result.stdout.split("\n")[1]).toMatch(
      /^FAIL .*\/kamailio is kamailio 5\.4\.8 \(x86_64\/linux\): kamailio-pusher needs Kamailio 5\.6 or later/,
    );
    expect(result.stderr).toBe("pusher: PUSHER_ERR_CHECK: Kamailio failed the check\n");
  });

  it("pusher check prints the version of the kamailio in PATH and passes it", () => {
    const result = pusher(undefined, "check");
    expect(result.code, result.stdout + result.stderr).toBe(0);
    expect(result.stdout.split("\n")[1]).toMatch(
      new RegExp(`^ok {3}${realVersion().replace(/[().]/g, "\\$&")} \\(/\\S+/kamailio\\)$`),
    );
  });

  it("pusher check and start pass a newer Kamailio than 5.6 (6.0, as Debian 13 ships)", () => {
    const bin = fakeKamailio("version: kamailio 6.0.1 (x86_64/linux) ");
    const check = pusher(bin, "check");
    expect(check.code, check.stdout + check.stderr).toBe(0);
    expect(check.stdout.split("\n")[1]).toBe(`ok   kamailio 6.0.1 (x86_64/linux) (${join(bin, "kamailio")})`);
    // start accepts it, prints it, then runs the fake as Kamailio (which exits at once: a start-up failure).
    const start = pusher(bin, "start");
    expect(start.stdout).toContain(`[pusher] kamailio 6.0.1 (x86_64/linux) (${join(bin, "kamailio")})\n`);
    expect(calls().slice(-1)[0]).toMatch(/^-f \S+kamailio\.cfg /);
  });
});

describe("parseKamailioVersion and requireSupportedKamailio", () => {
  it("read the numbers of release and development builds", () => {
    expect(parseKamailioVersion("version: kamailio 5.6.3 (x86_64/linux) \nflags: …", "/usr/sbin/kamailio")).toEqual({
      major: 5,
      minor: 6,
      patch: 3,
      text: "kamailio 5.6.3 (x86_64/linux)",
      path: "/usr/sbin/kamailio",
    });
    expect(parseKamailioVersion("version: kamailio 6.1.0-dev3 (aarch64/linux) 1a2b3c", "k")).toMatchObject({
      major: 6,
      minor: 1,
      patch: 0,
    });
  });

  it("refuse output without a version line, naming what it printed", () => {
    expect(() => parseKamailioVersion("Usage: kamailio [options]\n", "/opt/k")).toThrow(
      'cannot read the version in `/opt/k -v`: "Usage: kamailio [options]"',
    );
  });

  it("accept 5.6 and later, refuse anything older", () => {
    const version = (text: string) => parseKamailioVersion(`version: kamailio ${text} (x86_64/linux)`, "k");
    for (const ok of ["5.6.0", "5.6.3", "5.8.4", "6.0.1", "10.0.0"])
      expect(() => requireSupportedKamailio(version(ok)), ok).not.toThrow();
    for (const old of ["5.5.9", "5.0.0", "4.4.7"])
      expect(() => requireSupportedKamailio(version(old)), old).toThrow(/needs Kamailio 5\.6 or later/);
  });
});
