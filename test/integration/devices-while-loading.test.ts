// Kamailio restarted with many device records on disk answers for every AOR at once, not only for those its load has
// reached: 200 000 rows are seeded straight into the sqlite file (test/support/seed-devices.ts), so the load at start
// takes seconds, and the AORs these tests use sort after all of them (rows load in AOR order). Meanwhile a call to a
// sleeping phone is pushed (its record read through to the database), a REGISTER of a second device keeps the
// first one, a token that moves to another AOR leaves its old AOR for good, and `pusher devices` of an AOR not read
// yet says how far the load is. The tests run in order, in one load.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { execFileSync } from "node:child_process";
import { rmSync } from "node:fs";
import { join } from "node:path";
import type { DeviceRecord } from "../../src/device-record";
import { SipClient, invite, register } from "../faults/support/sip-client";
import { MockApns } from "../support/mock-apns";
import { PusherProcess, ROOT, startPusher, TEST_CA_DIR } from "../support/pusher-process";
import { seedDeviceRows, seededPhone } from "../support/seed-devices";
import { DOMAIN } from "../support/topology";
import { APP_ID, pushParams } from "../support/wake-fixture";

const SEEDED = 200_000;
const LOADED = /device records loaded from the database: (\d+) devices of (\d+) AORs/;

let apns: MockApns;
let pusher: PusherProcess;
let phone: SipClient;
let caller: SipClient;
let template: DeviceRecord;

// Each sorts after every seeded `seed<n>` AOR: the load reaches them last.
const sleeping = seededPhone("target", 1);
const twoDevices = seededPhone("ztwo", 1);
const moving = seededPhone("zmoved", 1);
const unread = seededPhone("zunread", 1);
const PREFIXES = ["target", "ztwo", "zmoved", "zunread"];

function devicesCommand(user: string, ...options: string[]): string {
  return execFileSync(
    process.execPath,
    [join(ROOT, "dist", "cli.js"), "--config", pusher.configPath, "devices", `${user}@${DOMAIN}`, ...options],
    { encoding: "utf8" },
  );
}

function listedDevices(user: string): DeviceRecord[] {
  return JSON.parse(devicesCommand(user, "--json", "--show-tokens")) as DeviceRecord[];
}

function rowOf(user: string): string {
  return execFileSync(
    "sqlite3",
    [join(pusher.dir, "state", "devices.sqlite"), `SELECT devices FROM pusher_devices WHERE aor = '${user}@${DOMAIN}'`],
    { encoding: "utf8" },
  ).trim();
}

function loadFinished(): boolean {
  return LOADED.test(pusher.output());
}

beforeAll(async () => {
  apns = await MockApns.start({ caDir: TEST_CA_DIR });
  pusher = await startPusher({
    userAgents: [{ name: "MyMobileApp", regex: "^MyMobileApp" }],
    apps: { [APP_ID]: { apple: apns.appleConfig({ certificateFile: join(TEST_CA_DIR, "apple-app.pem") }) } },
    // t2 short: a held call ends with 480 soon after its push (no phone wakes here).
    timers: { inviteFirstMs: 1000, pushWaitMs: 1500, afterWakeMs: 5000 },
    kamailio: { sharedMemoryMb: 1024 },
  });
  // The record the plugin writes for a real REGISTER is the seeded rows' template.
  phone = await SipClient.open(pusher.sipPort);
  caller = await SipClient.open(pusher.sipPort);
  const model = seededPhone("model", 1);
  expect(
    (await phone.send(register(phone, model.user, DOMAIN, pushParams(model.token, model.instance))).final)?.status,
  ).toBe(200);
  template = listedDevices(model.user)[0];
  expect(template.token).toBe(model.token);
  await pusher.stop();

  const file = join(pusher.dir, "state", "devices.sqlite");
  seedDeviceRows(file, { prefix: "seed", count: SEEDED, domain: DOMAIN, template });
  for (const prefix of PREFIXES) seedDeviceRows(file, { prefix, count: 1, domain: DOMAIN, template });
  apns.addDevice(sleeping.token, { bundle: APP_ID, kind: "voip" });
  apns.addDevice(moving.token, { bundle: APP_ID, kind: "voip" });
  pusher = await pusher.restart();
}, 120_000);

afterAll(async () => {
  phone?.close();
  caller?.close();
  await pusher?.stop();
  await apns?.close();
  // 200 000 rows are 90 MB of sqlite.
  if (pusher) rmSync(pusher.dir, { recursive: true, force: true });
});

describe("while the device records load at start", () => {
  const second = seededPhone("ztwo-second", 1);
  const newOwner = seededPhone("mover", 1);

  it("pushes a call to a sleeping phone the load has not reached yet", async () => {
    expect(loadFinished(), "the load must still run: seed more rows").toBe(false);
    const call = caller.send(invite(caller, sleeping.user, DOMAIN), { timeoutMs: 10_000 });
    const first = await call.firstAnswer;
    // The push, not a 404 or 480 from a proxy that knows no device of the callee.
    expect(first?.status, pusher.output().slice(-3000)).toBeLessThan(300);
    const deadline = Date.now() + 2000;
    while (!apns.requestsFor(sleeping.token).length && Date.now() < deadline)
      await new Promise((done) => setTimeout(done, 10));
    expect(apns.requestsFor(sleeping.token).length, pusher.output().slice(-3000)).toBe(1);
    expect(loadFinished(), "pushed before the load reached the callee").toBe(false);
    expect((await call.final)?.status).toBe(480);
  });

  it("says how far the load is when `pusher devices` asks for an AOR it has not read yet", () => {
    expect(loadFinished(), "the load must still run: seed more rows").toBe(false);
    // Every row: the seeded ones, one of each other prefix, and the model phone's.
    const rows = SEEDED + PREFIXES.length + 1;
    const progress = new RegExp(
      `^no devices for ${unread.user}@${DOMAIN} in memory yet: the device records are still loading \\((\\d+) of ${rows} rows read\\)\n`,
    );
    const output = devicesCommand(unread.user);
    expect(output).toMatch(progress);
    expect(Number(progress.exec(output)![1])).toBeLessThan(rows);
    expect(loadFinished(), "listed before the load reached the AOR").toBe(false);
  });

  it("keeps a device stored on disk when another device of its AOR registers", async () => {
    expect(
      (await phone.send(register(phone, twoDevices.user, DOMAIN, pushParams(second.token, second.instance))).final)
        ?.status,
    ).toBe(200);
    expect(loadFinished(), "registered before the load reached the AOR").toBe(false);
    expect(
      listedDevices(twoDevices.user)
        .map((device) => device.token)
        .sort(),
    ).toEqual([twoDevices.token, second.token].sort());
  });

  it("moves a token from an AOR the load has not reached, which a call then no longer pushes", async () => {
    // Authentication is off (sip.auth false): every REGISTER counts as authenticated for any AOR, so the token moves.
    expect(
      (await phone.send(register(phone, newOwner.user, DOMAIN, pushParams(moving.token, moving.instance))).final)
        ?.status,
    ).toBe(200);
    const call = caller.send(invite(caller, moving.user, DOMAIN), { timeoutMs: 10_000 });
    expect((await call.final)?.status).toBeGreaterThanOrEqual(400);
    expect(loadFinished(), "called before the load reached the old AOR").toBe(false);
    expect(apns.requestsFor(moving.token)).toEqual([]);
  });

  it("ends with every record loaded and none of these changes undone by it", async () => {
    const [, devices] = LOADED.exec(await pusher.waitFor(LOADED, 140_000))!;
    // The load leaves out what the calls and REGISTERs read through before it got there.
    expect(Number(devices)).toBeGreaterThan(SEEDED - 10);
    expect(
      listedDevices(twoDevices.user)
        .map((device) => device.token)
        .sort(),
    ).toEqual([twoDevices.token, second.token].sort());
    expect(rowOf(twoDevices.user)).toContain(twoDevices.token);
    expect(rowOf(twoDevices.user)).toContain(second.token);
    expect(listedDevices(moving.user)).toEqual([]);
    expect(rowOf(moving.user)).toBe("");
    expect(listedDevices(newOwner.user).map((device) => device.token)).toEqual([moving.token]);
    expect(pusher.rpc("htable.get", "pusher_tokens", `${template.provider}:${moving.token}`)).toContain(
      `${newOwner.user}@${DOMAIN}`,
    );
    expect(listedDevices(sleeping.user).map((device) => device.token)).toEqual([sleeping.token]);
    expect(listedDevices(unread.user).map((device) => device.token)).toEqual([unread.token]);
    expect(devicesCommand(unread.user)).not.toMatch(/loading/);
  }, 150_000);
});
