// `pusher devices` of every AOR on a node with more AORs than one htable.dump reply holds (kamcmd takes 128 KB: about
// 250 AORs of one device each) lists them from the device database, the source of truth, with a note on stderr: the
// same records, filtered by retention and masked as a listing from memory, in the database's AOR order (streamed). The rows are seeded straight into
// the sqlite file (test/support/seed-devices.ts) while pusher is stopped, then loaded at its restart.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { execFileSync, spawnSync } from "node:child_process";
import { rmSync } from "node:fs";
import { join } from "node:path";
import type { DeviceRecord } from "../../src/device-record";
import { maskToken } from "../../src/mask-token";
import { PusherProcess, ROOT, startPusher } from "../support/pusher-process";
import { seedDeviceRows, seededPhone } from "../support/seed-devices";
import { DOMAIN } from "../support/topology";

const DAY_MS = 24 * 3600 * 1000;
// More than two pages of the database (5 000 rows each), and far more than one kamcmd reply holds.
const SEEDED = 12_000;
const LOADED = /device records loaded from the database: (\d+) devices of (\d+) AORs/;
const FROM_DATABASE = /^pusher devices: listed from the device database .*devices\.sqlite/m;

// A record as the plugin writes it for a REGISTER (every field but aor, instance, token and registeredAtMs is copied).
const TEMPLATE: DeviceRecord = {
  aor: "model1@example.com",
  instance: "urn:uuid:00000000-0000-4000-8000-000000000001",
  appId: "com.example.phone",
  provider: "apple",
  token: "ab".repeat(32),
  userAgent: "MyMobileApp iOS 1.0",
  proxy: "sip:127.0.0.1:5060;transport=udp",
  registeredAtMs: 1,
  userCaseKept: true,
  rule: "MyMobileApp",
};

let pusher: PusherProcess;

function devicesCommand(...args: string[]): { stdout: string; stderr: string } {
  const result = spawnSync(
    process.execPath,
    [join(ROOT, "dist", "cli.js"), "--config", pusher.configPath, "devices", ...args],
    {
      encoding: "utf8",
      maxBuffer: 256 * 1024 * 1024,
    },
  );
  expect(result.status, result.stderr).toBe(0);
  return { stdout: result.stdout, stderr: result.stderr };
}

function deviceFile(): string {
  return join(pusher.dir, "state", "devices.sqlite");
}

/** Stops pusher, has `seed` write the rows, and starts it again with every row loaded. */
async function restartWith(seed: () => void): Promise<void> {
  await pusher.stop();
  seed();
  pusher = await pusher.restart();
  await pusher.waitFor(LOADED, 30_000);
}

beforeAll(async () => {
  pusher = await startPusher({});
  // The load timer loads the (empty) table within a second of the start; until then the list says it is loading.
  await pusher.waitFor(/device records loaded from the database/);
}, 60_000);

afterAll(async () => {
  await pusher?.stop();
  if (pusher) rmSync(pusher.dir, { recursive: true, force: true });
});

describe("pusher devices of every AOR", () => {
  it("lists a small node's devices from memory, without a note", () => {
    const { stdout, stderr } = devicesCommand("--json");
    expect(JSON.parse(stdout)).toEqual([]);
    expect(stderr).toBe("");
  });

  describe(`with ${SEEDED} AORs`, () => {
    const known = seededPhone("phone", 4321);
    const quoted = seededPhone("o'neil", 1);

    beforeAll(async () => {
      await restartWith(() => {
        seedDeviceRows(deviceFile(), { prefix: "phone", count: SEEDED, domain: DOMAIN, template: TEMPLATE });
        seedDeviceRows(deviceFile(), { prefix: "o'neil", count: 1, domain: DOMAIN, template: TEMPLATE });
        // Past devices.retentionDays (30) though their rows are not expired: left out, as from memory.
        seedDeviceRows(deviceFile(), {
          prefix: "stale",
          count: 3,
          domain: DOMAIN,
          template: TEMPLATE,
          registeredAtMs: Date.now() - 40 * DAY_MS,
        });
      });
    }, 60_000);

    it("lists every device from the device database as JSON, in the database's AOR order, its tokens masked, with a note on stderr", () => {
      const { stdout, stderr } = devicesCommand("--json");
      expect(stderr).toMatch(FROM_DATABASE);
      const devices = JSON.parse(stdout) as DeviceRecord[];
      expect(devices).toHaveLength(SEEDED + 1);
      expect(devices.some((device) => device.aor.startsWith("stale"))).toBe(false);
      // sqlite's order: the AORs' bytes (the AORs here are ASCII: JS's default sort).
      const aors = devices.map((device) => device.aor);
      expect(aors).toEqual([...aors].sort());
      expect(devices.map((device) => device.aor)).toContain(`${quoted.user}@${DOMAIN}`);
      const record = devices.find((device) => device.aor === `${known.user}@${DOMAIN}`);
      expect(record).toEqual({
        ...TEMPLATE,
        aor: `${known.user}@${DOMAIN}`,
        instance: `urn:uuid:${known.instance}`,
        token: maskToken(known.token),
        registeredAtMs: record!.registeredAtMs,
      });
      // The record memory holds, as `pusher devices <aor>` reads it from htable.
      expect([record]).toEqual(JSON.parse(devicesCommand(`${known.user}@${DOMAIN}`, "--json").stdout));
    });

    it("shows the tokens with --show-tokens", () => {
      const devices = JSON.parse(devicesCommand("--json", "--show-tokens").stdout) as DeviceRecord[];
      expect(devices).toHaveLength(SEEDED + 1);
      expect(devices.find((device) => device.aor === `${known.user}@${DOMAIN}`)?.token).toBe(known.token);
    });

    it("lists every device as text lines too", () => {
      const { stdout, stderr } = devicesCommand();
      expect(stderr).toMatch(FROM_DATABASE);
      const lines = stdout.split("\n").filter(Boolean);
      expect(lines).toHaveLength(SEEDED + 1);
      const line = lines.find((text) => text.startsWith(`${known.user}@${DOMAIN}\t`))!;
      expect(line.split("\t").slice(0, 6)).toEqual([
        `${known.user}@${DOMAIN}`,
        `urn:uuid:${known.instance}`,
        TEMPLATE.appId,
        TEMPLATE.provider,
        maskToken(known.token),
        TEMPLATE.userAgent,
      ]);
    });
  });

  it("lists from the device database when fewer AORs are still too big for one htable.dump reply", async () => {
    const count = 150;
    await restartWith(() => {
      execFileSync("sqlite3", [deviceFile(), "DELETE FROM pusher_devices"]);
      // 1 000 characters of User-Agent each: 150 AORs are more than kamcmd's 128 KB.
      const template = { ...TEMPLATE, userAgent: "MyMobileApp iOS 1.0 " + "x".repeat(1000) };
      seedDeviceRows(deviceFile(), { prefix: "long", count, domain: DOMAIN, template });
    });
    expect(() => pusher.rpc("htable.dump", "pusher_devices")).toThrow(/reply too big/);
    const { stdout, stderr } = devicesCommand("--json");
    expect(stderr).toMatch(FROM_DATABASE);
    expect(stderr).toMatch(/reply too big/);
    expect((JSON.parse(stdout) as DeviceRecord[]).map((device) => device.aor).sort()).toEqual(
      Array.from({ length: count }, (_, n) => `${seededPhone("long", n + 1).user}@${DOMAIN}`).sort(),
    );
  }, 60_000);
});
