// `pusher reload` against the running product: a held call survives it and is delivered after it, User-Agent
// rules and apps change without a restart, and a broken config is refused whole while the running one stays.
import { execFile } from "node:child_process";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { makeAppCertificate } from "../support/make-app-certificate";
import { ROOT, TEST_CA_DIR } from "../support/pusher-process";
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

const NEW_APP_ID = "com.app.second";
const NEW_USER_AGENT = "OtherApp Android 3.1";

let fixture: WakeFixture;

function pusherCli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [join(ROOT, "dist", "cli.js"), "--config", fixture.pusher.configPath, ...args],
      (error, stdout, stderr) => {
        resolve({ code: error ? (typeof error.code === "number" ? error.code : 1) : 0, stdout, stderr });
      },
    );
  });
}

function editConfig(change: (config: Record<string, any>) => void): void {
  const config = JSON.parse(readFileSync(fixture.pusher.configPath, "utf8"));
  change(config);
  writeFileSync(fixture.pusher.configPath, JSON.stringify(config, null, 2));
}

function runtimeConfig(): string {
  return readFileSync(join(fixture.pusher.dir, "state", "pusher.runtime.json"), "utf8");
}

beforeAll(async () => {
  fixture = await startWakeFixture({ timers: { inviteFirstMs: 1000, pushWaitMs: 10000, afterWakeMs: 5000 } });
}, 30000);

afterAll(async () => {
  await fixture?.stop();
});

describe("pusher reload", () => {
  it("applies a new User-Agent rule and a new app while a call is held, and the held call is still delivered", async () => {
    const { pusher, apns } = fixture;
    const phone = await Phone.create();
    const token = apns.newDevice(APP_ID);
    await registerPhone(pusher, phone, pushParams(token));
    dropBindings(pusher, phone);
    const callId = sharedCallId(phone);
    const caller = call(pusher, phone, "call-answered.xml", { callId });
    await waitForPushes(apns, token, 1, 8000, pusher);

    // Before the reload a phone of the other app is neither stored (no rule matches its User-Agent) nor pushable.
    const otherPhone = await Phone.create();
    const otherToken = apns.newDevice(NEW_APP_ID);
    const otherParams = `;app-id=${NEW_APP_ID};pn-tok=${otherToken};pn-type=apple`;
    await registerPhone(pusher, otherPhone, otherParams, { userAgent: NEW_USER_AGENT });
    expect(pusher.rpc("htable.dump", "pusher_devices")).not.toContain(otherToken);

    editConfig((config) => {
      config.userAgents.push({ name: "OtherApp", regex: "^OtherApp" });
      // The mock allows a certificate only its own bundle id as topic, as APNs does.
      const certificateFile = makeAppCertificate(pusher.dir, NEW_APP_ID, { caDir: TEST_CA_DIR, bundleId: NEW_APP_ID });
      config.apps[NEW_APP_ID] = { apple: apns.appleConfig({ certificateFile }) };
    });
    const reload = await pusherCli("reload");
    expect(reload.code, reload.stderr).toBe(0);
    expect(reload.stdout).toMatch(/config generation \d+/);
    await pusher.waitFor(/config reloaded: 2 app\(s\)/);
    expect(runtimeConfig()).toContain(NEW_APP_ID);

    // The held call: its phone wakes and registers now, after the reload, and answers.
    const woken = await registerAndAnswer(pusher, await phone.newSocket(), pushParams(token), callId);
    expect(woken.code, woken.output).toBe(0);
    const answered = await caller;
    expect(answered.code, answered.output).toBe(0);

    // The new rule stores the other app's phone; the helper pushes it with the new app's credentials.
    await registerPhone(pusher, otherPhone, otherParams, { userAgent: NEW_USER_AGENT });
    expect(pusher.rpc("htable.dump", "pusher_devices")).toContain(otherToken);
    dropBindings(pusher, otherPhone);
    const otherCall = await call(pusher, otherPhone, "call-cancelled.xml");
    expect(otherCall.code, otherCall.output).toBe(0);
    const [push] = apns.requestsFor(otherToken);
    expect(push.headers["apns-topic"]).toBe(`${NEW_APP_ID}.voip`);
    expect(push.status).toBe(200);
    expect(pusher.output()).toMatch(
      new RegExp(`push call-id=\\S+ app="${NEW_APP_ID.replace(/\./g, "\\.")}" provider=apple token=\\S+ outcome=sent`),
    );
  });

  it("refuses a broken config with exit 1 naming the key, and the running config keeps working", async () => {
    const { pusher, apns } = fixture;
    const before = runtimeConfig();
    editConfig((config) => {
      config.timers.pushWaitMs = 5;
    });
    const reload = await pusherCli("reload");
    expect(reload.code).toBe(1);
    expect(reload.stderr).toContain("timers.pushWaitMs");
    expect(runtimeConfig()).toBe(before);
    editConfig((config) => {
      config.timers.pushWaitMs = 10000;
    });

    const phone = await Phone.create();
    const token = apns.newDevice(APP_ID);
    await registerPhone(pusher, phone, pushParams(token));
    dropBindings(pusher, phone);
    const caller = await call(pusher, phone, "call-cancelled.xml");
    expect(caller.code, caller.output).toBe(0);
    expect(apns.requestsFor(token).length).toBeGreaterThanOrEqual(1);
    expect(apns.requestsFor(token)[0].status).toBe(200);
  });

  it("does on SIGHUP to pusher start what pusher reload does (systemctl reload), and refuses a broken config", async () => {
    const { pusher } = fixture;
    const generation = () => pusher.rpc("htable.get", "pusher_state", "config_generation");
    const before = generation();
    editConfig((config) => {
      config.userAgents.push({ name: "SighupApp", regex: "^SighupApp" });
    });
    process.kill(pusher.pid, "SIGHUP");
    await pusher.waitFor(/\[pusher\] reload: /);
    expect(runtimeConfig()).toContain("SighupApp");
    expect(generation()).not.toBe(before);

    editConfig((config) => {
      config.timers.pushWaitMs = 5;
    });
    process.kill(pusher.pid, "SIGHUP");
    await pusher.waitFor(/\[pusher\] reload refused, the running config stays: .*timers\.pushWaitMs/);
    expect(runtimeConfig()).toContain("SighupApp");
    editConfig((config) => {
      config.timers.pushWaitMs = 10000;
    });
  });

  it("the helper refuses a broken file on SIGHUP, logs the key, and keeps its apps", async () => {
    const { pusher, apns } = fixture;
    const runtimePath = join(pusher.dir, "state", "pusher.runtime.json");
    const good = runtimeConfig();
    const broken = JSON.parse(good);
    broken.apps[APP_ID].apple.keyId = "short";
    writeFileSync(runtimePath, JSON.stringify(broken));
    const pid = Number(readFileSync(join(pusher.dir, "state", "helper.pid"), "utf8"));
    process.kill(pid, "SIGHUP");
    await pusher.waitFor(
      /config reload refused, the running config stays: PUSHER_ERR_CONFIG \S+: apps\.com\.app\.mymobileapp\.apple/,
    );
    writeFileSync(runtimePath, good);

    const phone = await Phone.create();
    const token = apns.newDevice(APP_ID);
    await registerPhone(pusher, phone, pushParams(token));
    dropBindings(pusher, phone);
    const caller = await call(pusher, phone, "call-cancelled.xml");
    expect(caller.code, caller.output).toBe(0);
    expect(apns.requestsFor(token)[0].headers["apns-topic"]).toBe(`${APP_ID}.voip`);
    expect(apns.requestsFor(token)[0].status).toBe(200);
  });

  it("the plugin refuses a broken runtime file naming the key, says so of a missing one, and reads the good one again", async () => {
    const { pusher, apns } = fixture;
    const runtimePath = join(pusher.dir, "state", "pusher.runtime.json");
    const good = runtimeConfig();
    // What `pusher reload` does after writing the file: each Kamailio process reads it at its next request.
    const nextGeneration = () => {
      const generation = Number(
        /value:\s*(\d+)/.exec(pusher.rpc("htable.get", "pusher_state", "config_generation"))![1],
      );
      pusher.rpc("htable.seti", "pusher_state", "config_generation", String(generation + 1));
    };
    const registerNewPhone = async () => {
      const phone = await Phone.create();
      await registerPhone(pusher, phone, pushParams(apns.newDevice(APP_ID)));
      return phone;
    };
    try {
      const broken = JSON.parse(good);
      broken.timers.pushWaitMs = 5;
      writeFileSync(runtimePath, JSON.stringify(broken));
      nextGeneration();
      await registerNewPhone();
      await pusher.waitFor(
        /pusher: config file \S+pusher\.runtime\.json refused: timers\.pushWaitMs: must be an integer from 1000 to 600000/,
        3000,
      );

      rmSync(runtimePath);
      nextGeneration();
      await registerNewPhone();
      await pusher.waitFor(/pusher: cannot read config file \S+pusher\.runtime\.json/, 3000);
    } finally {
      writeFileSync(runtimePath, good);
      nextGeneration();
    }
    const phone = await registerNewPhone();
    expect(pusher.rpc("htable.dump", "pusher_devices")).toContain(phone.aor);
  });
});
