// The registration side end to end: real Kamailio (started by `pusher start`), sipp phones, the real helper
// and a mock APNs. Device records are read back with `pusher devices --json --show-tokens`, which asks the
// running Kamailio over its ctl socket: what it lists is what a call would push.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { freePort } from "../support/free-port";
import { MockApns } from "../support/mock-apns";
import { PusherProcess, ROOT, startPusher, TEST_CA_DIR } from "../support/pusher-process";
import { featureCapsIn, runSipp } from "../support/sipp";
import type { ListedDevice } from "../../src/cli/devices-command";

const KAZOO_APP = "com.app.mymobileapp";
const KAZOO_UA = "MyMobileApp iOS 1.0";
const RESTRICTED_UA = "RestrictedApp/2.0";
const CUSTOM_PARAMS_UA = "CustomParams/1.0";
const LINPHONE_UA = "LinphoneiOS/5.2.0 (iPhone) LinphoneSDK/5.3.0";
/** An RFC 8599 app: TeamID.BundleID in pn-param; no User-Agent rule is needed for it. */
const TEAM_ID = "ABCDE12345";
const RFC_BUNDLE = "org.example.phone";
const TIMERS = { inviteFirstMs: 500, pushWaitMs: 2000, afterWakeMs: 5000 };

/** A device record as `pusher devices --json` lists it. */
type Device = ListedDevice;

let apns: MockApns;
let pusher: PusherProcess;
let counter = 0;

function nextUser(): string {
  counter += 1;
  return `reg_${process.pid}_${counter}`;
}

/** A token unique to this test run, in APNs' hex alphabet. */
function nextToken(): string {
  counter += 1;
  return `${process.pid.toString(16)}${counter.toString(16).padStart(6, "0")}00ff00ff00ff`;
}

function aorOf(user: string): string {
  return `${user}@127.0.0.1`;
}

function devicesOf(user: string): Device[] {
  const out = execFileSync(process.execPath, [join(ROOT, "dist", "cli.js"), "--config", pusher.configPath, "devices", aorOf(user), "--json", "--show-tokens"], {
    encoding: "utf8",
  });
  return JSON.parse(out) as Device[];
}

interface RegisterOptions {
  userAgent?: string;
  expires?: string;
  scenario?: string;
  /** The whole Contact value; default: a contact at the phone's port carrying `params`. */
  contact?: string;
  /** The phone's port; default: a new one (a new Contact each time). */
  port?: number;
}

async function register(user: string, params: string, options: RegisterOptions = {}): Promise<string> {
  const port = options.port ?? (await freePort());
  const run = await runSipp({
    scenario: options.scenario ?? "register.xml",
    remotePort: pusher.sipPort,
    localPort: port,
    keys: {
      user,
      domain: "127.0.0.1",
      contact: options.contact ?? `<sip:${user}@127.0.0.1:${port};transport=udp>${params}`,
      user_agent: options.userAgent ?? KAZOO_UA,
      expires: options.expires ?? "600",
    },
  });
  expect(run.code, run.output + pusher.output().slice(-3000)).toBe(0);
  return run.output;
}

/** The Feature-Caps header values of the REGISTER's 200 (register-feature-caps.xml prints them). */
async function featureCapsOf(user: string, params: string, userAgent = LINPHONE_UA, port?: number): Promise<string[]> {
  const output = await register(user, params, { scenario: "register-feature-caps.xml", userAgent, port });
  const values = featureCapsIn(output);
  expect(values, output).not.toBeNull();
  return values!;
}

function kazooParams(token: string, instance?: string): string {
  const instanceParam = instance ? `;+sip.instance="<urn:uuid:${instance}>"` : "";
  return `${instanceParam};app-id=${KAZOO_APP};pn-tok=${token};pn-type=apple`;
}

function rfcParams(prid: string, service = ".voip", instance?: string): string {
  const instanceParam = instance ? `;+sip.instance="<urn:uuid:${instance}>"` : "";
  return `${instanceParam};pn-provider=apns;pn-prid=${prid};pn-param=${TEAM_ID}.${RFC_BUNDLE}${service}`;
}

/** Calls `user` whose bindings were dropped (so every device is pushed at once); resolves when the caller is answered. */
async function callAsleep(user: string): Promise<void> {
  pusher.rpc("ul.rm", "location", aorOf(user));
  const caller = await runSipp({ scenario: "call-unavailable.xml", remotePort: pusher.sipPort, keys: { callee: user, caller: "15551234567", domain: "127.0.0.1" } });
  expect(caller.code, caller.output).toBe(0);
}

function storedLines(user: string): number {
  return pusher.output().split("\n").filter((line) => line.includes(`device stored aor=${aorOf(user)} `)).length;
}

beforeAll(async () => {
  apns = await MockApns.start({ caDir: TEST_CA_DIR });
  const apple = { certificateFile: join(TEST_CA_DIR, "apple-app.pem"), host: `127.0.0.1:${apns.port}` };
  pusher = await startPusher({
    timers: TIMERS,
    userAgents: [
      { name: "restricted", regex: "^RestrictedApp/", appIds: [KAZOO_APP] },
      { name: "custom-params", regex: "^CustomParams/", properties: { appId: "x-app", type: "x-kind", token: "x-push-token" } },
      { name: "MyMobileApp", regex: "^MyMobileApp" },
      { name: "linphone", regex: "^Linphone" },
    ],
    apps: { [KAZOO_APP]: { apple }, [RFC_BUNDLE]: { apple } },
  });
}, 30000);

afterAll(async () => {
  await pusher?.stop();
  await apns?.close();
});

beforeEach(() => {
  apns.requests.length = 0;
});

describe("the device store", () => {
  it("keeps one record per device instance of an AOR and pushes both phones of a call", async () => {
    const user = nextUser();
    const [tokenA, tokenB] = [nextToken(), nextToken()];
    await register(user, kazooParams(tokenA, "00000000-0000-0000-0000-00000000000a"));
    await register(user, kazooParams(tokenB, "00000000-0000-0000-0000-00000000000b"));
    const devices = devicesOf(user);
    expect(devices.map((device) => [device.instance, device.token]).sort()).toEqual([
      ["urn:uuid:00000000-0000-0000-0000-00000000000a", tokenA],
      ["urn:uuid:00000000-0000-0000-0000-00000000000b", tokenB],
    ]);
    await callAsleep(user);
    expect(apns.requestsFor(tokenA)).toHaveLength(1);
    expect(apns.requestsFor(tokenB)).toHaveLength(1);
  });

  it("keys a device without +sip.instance by its reg-id, else by its contact URI", async () => {
    const user = nextUser();
    const [tokenA, tokenB] = [nextToken(), nextToken()];
    await register(user, `;reg-id=1${kazooParams(tokenA)}`);
    await register(user, kazooParams(tokenB));
    const instances = devicesOf(user).map((device) => device.instance);
    expect(instances).toHaveLength(2);
    expect(instances).toContain("reg-id:1");
    expect(instances.find((instance) => instance !== "reg-id:1")).toMatch(new RegExp(`^sip:${user}@127\\.0\\.0\\.1:\\d+;transport=udp$`));
  });

  it("moves a token that registers under another AOR there: the old AOR's record is removed", async () => {
    const [oldUser, newUser] = [nextUser(), nextUser()];
    const token = nextToken();
    await register(oldUser, kazooParams(token, "00000000-0000-0000-0000-0000000000c1"));
    expect(devicesOf(oldUser)).toHaveLength(1);
    await register(newUser, kazooParams(token, "00000000-0000-0000-0000-0000000000c1"));
    expect(devicesOf(oldUser)).toEqual([]);
    expect(devicesOf(newUser).map((device) => device.token)).toEqual([token]);
  });

  it("moves a token that registers under another instance of the same AOR", async () => {
    const user = nextUser();
    const token = nextToken();
    await register(user, kazooParams(token, "00000000-0000-0000-0000-0000000000d1"));
    await register(user, kazooParams(token, "00000000-0000-0000-0000-0000000000d2"));
    expect(devicesOf(user).map((device) => device.instance)).toEqual(["urn:uuid:00000000-0000-0000-0000-0000000000d2"]);
  });

  it("writes nothing for a re-REGISTER with unchanged params, and replaces the record when they change", async () => {
    const user = nextUser();
    const [token, newToken] = [nextToken(), nextToken()];
    const instance = "00000000-0000-0000-0000-0000000000e1";
    await register(user, kazooParams(token, instance));
    const [first] = devicesOf(user);
    await register(user, kazooParams(token, instance));
    expect(devicesOf(user)).toEqual([first]);
    await register(user, kazooParams(newToken, instance));
    const [replaced] = devicesOf(user);
    expect(replaced.token).toBe(newToken);
    expect(replaced.registeredAtMs).toBeGreaterThanOrEqual(first.registeredAtMs);
    // Kamailio's log reaches us after the 200: wait for the replacement's line, then none may be in between.
    await pusher.waitFor(new RegExp(`device stored aor=${aorOf(user)} [^\\n]*\\n[\\s\\S]*device stored aor=${aorOf(user)} `));
    expect(storedLines(user)).toBe(2);
  });

  it("removes the device's record at once on a de-REGISTER with Expires: 0", async () => {
    const user = nextUser();
    const [tokenA, tokenB] = [nextToken(), nextToken()];
    await register(user, kazooParams(tokenA, "00000000-0000-0000-0000-0000000000f1"));
    await register(user, kazooParams(tokenB, "00000000-0000-0000-0000-0000000000f2"));
    await register(user, ';+sip.instance="<urn:uuid:00000000-0000-0000-0000-0000000000f1>"', { expires: "0" });
    expect(devicesOf(user).map((device) => device.token)).toEqual([tokenB]);
  });

  it("removes every device of the AOR on Contact: *", async () => {
    const user = nextUser();
    await register(user, kazooParams(nextToken(), "00000000-0000-0000-0000-0000000000f3"));
    await register(user, kazooParams(nextToken(), "00000000-0000-0000-0000-0000000000f4"));
    await register(user, "", { contact: "*", expires: "0" });
    expect(devicesOf(user)).toEqual([]);
  });

  describe("refuses malformed push params: the REGISTER gets 200, the good record stays, one masked warning", () => {
    const longToken = "ab".repeat(2049);
    it.each([
      // Quoted: Kamailio's own parser answers 400 to a bare `pn-tok=` before the plugin runs.
      ["an empty token", ';app-id=com.app.mymobileapp;pn-tok="";pn-type=apple', ""],
      ["a token longer than 4 KiB", `;app-id=com.app.mymobileapp;pn-tok=${longToken};pn-type=apple`, longToken],
      ["a token with characters outside the APNs alphabet", ";app-id=com.app.mymobileapp;pn-tok=abc%3Cscript%3Edef0123;pn-type=apple", "abc<script>def0123"],
      ["an app id with a quote", ";app-id=com.app%27mymobileapp;pn-tok=0123456789abcdef0123;pn-type=apple", "0123456789abcdef0123"],
      ["an unknown pn-type", ";app-id=com.app.mymobileapp;pn-tok=0123456789abcdef0456;pn-type=pigeon", "0123456789abcdef0456"],
      ["an empty pn-param", ";pn-provider=apns;pn-prid=0123456789abcdef0789;pn-param=", "0123456789abcdef0789"],
      ["a malformed two-token pn-prid", `;pn-provider=apns;pn-prid=0a0b:remote%260c0d:video;pn-param=${TEAM_ID}.${RFC_BUNDLE}`, "0a0b:remote&0c0d:video"],
    ])("%s", async (_what, badParams, badToken) => {
      const user = nextUser();
      const token = nextToken();
      const instance = ';+sip.instance="<urn:uuid:00000000-0000-0000-0000-000000000abc>"';
      await register(user, kazooParams(token, "00000000-0000-0000-0000-000000000abc"));
      const [good] = devicesOf(user);
      const before = pusher.output().length;
      await register(user, instance + badParams);
      expect(devicesOf(user)).toEqual([good]);
      // Kamailio's log reaches us through a pipe: give the warning a moment to arrive.
      const refused = new RegExp(`push params refused aor=${aorOf(user)}`, "g");
      for (let waited = 0; waited < 3000 && !refused.test(pusher.output().slice(before)); waited += 50) {
        await new Promise((done) => setTimeout(done, 50));
      }
      const log = pusher.output().slice(before);
      expect(log.match(refused)).toHaveLength(1);
      if (badToken.length > 12) expect(log).not.toContain(badToken);
    });
  });
});

describe("re-REGISTERs that change nothing (answered from cfg, without the plugin's JS)", () => {
  /** REGISTERs cfg answered as unchanged so far (pusher_stats, `pusher metrics`). */
  function unchangedCount(): number {
    const match = /value:\s*(\d+)/.exec(pusher.rpc("htable.get", "pusher_stats", "registers_unchanged"));
    return match ? Number(match[1]) : 0;
  }

  it("gets the same Feature-Caps and stores nothing new", async () => {
    const user = nextUser();
    const port = await freePort();
    const params = rfcParams(nextToken(), ".voip", "00000000-0000-0000-0000-00000000aa01");
    expect(await featureCapsOf(user, params, LINPHONE_UA, port)).toEqual(['*;+sip.pns="apns"']);
    const before = unchangedCount();
    const [stored] = devicesOf(user);
    expect(await featureCapsOf(user, params, LINPHONE_UA, port)).toEqual(['*;+sip.pns="apns"']);
    expect(unchangedCount()).toBe(before + 1);
    expect(devicesOf(user)).toEqual([stored]);
  });

  it("goes to the plugin again once the AOR's records changed in between, and restores a removed record", async () => {
    const user = nextUser();
    const port = await freePort();
    const token = nextToken();
    const params = kazooParams(token, "00000000-0000-0000-0000-00000000aa02");
    await register(user, params, { port });
    pusher.rpc("htable.delete", "pusher_devices", aorOf(user));
    expect(devicesOf(user)).toEqual([]);
    const before = unchangedCount();
    await register(user, params, { port });
    expect(unchangedCount()).toBe(before);
    expect(devicesOf(user).map((device) => device.token)).toEqual([token]);
  });

  it("goes to the plugin again after a config reload, and for a de-REGISTER from the same Contact", async () => {
    const user = nextUser();
    const port = await freePort();
    const params = kazooParams(nextToken(), "00000000-0000-0000-0000-00000000aa03");
    await register(user, params, { port });
    const generation = Number(/value:\s*(\d+)/.exec(pusher.rpc("htable.get", "pusher_state", "config_generation"))![1]);
    pusher.rpc("htable.seti", "pusher_state", "config_generation", String(generation + 1));
    const before = unchangedCount();
    await register(user, params, { port });
    expect(unchangedCount()).toBe(before);
    await register(user, params, { port, expires: "0" });
    expect(unchangedCount()).toBe(before);
    expect(devicesOf(user)).toEqual([]);
  });
});

describe("User-Agent rules", () => {
  it("stores nothing for a legacy binding whose User-Agent no rule matches, and says so once", async () => {
    const userAgent = `UnknownPhone/${process.pid}`;
    const [userA, userB] = [nextUser(), nextUser()];
    await register(userA, kazooParams(nextToken()), { userAgent });
    await register(userB, kazooParams(nextToken()), { userAgent });
    expect(devicesOf(userA)).toEqual([]);
    expect(devicesOf(userB)).toEqual([]);
    expect(pusher.output().split(`push params from User-Agent '${userAgent}' ignored`).length - 1).toBe(1);
  });

  it("stores only the app ids a rule accepts", async () => {
    const [accepted, refused] = [nextUser(), nextUser()];
    await register(accepted, kazooParams(nextToken()), { userAgent: RESTRICTED_UA });
    await register(refused, `;app-id=com.other.app;pn-tok=${nextToken()};pn-type=apple`, { userAgent: RESTRICTED_UA });
    expect(devicesOf(accepted).map((device) => [device.appId, device.rule])).toEqual([[KAZOO_APP, "restricted"]]);
    expect(devicesOf(refused)).toEqual([]);
  });

  it("reads the params a rule's properties name (Kazoo's Token-App/Token-Type/Token-ID)", async () => {
    const user = nextUser();
    const token = nextToken();
    await register(user, `;x-app=${KAZOO_APP};x-kind=apple;x-push-token=${token}`, { userAgent: CUSTOM_PARAMS_UA });
    expect(devicesOf(user).map((device) => [device.appId, device.provider, device.token])).toEqual([[KAZOO_APP, "apple", token]]);
  });

  it("needs no rule for an RFC 8599 binding", async () => {
    const user = nextUser();
    const token = nextToken();
    await register(user, rfcParams(token), { userAgent: "SomeRfcPhone/1.0" });
    expect(devicesOf(user).map((device) => device.token)).toEqual([token]);
  });
});

describe("each dialect, from REGISTER to the push APNs receives", () => {
  it("Kazoo: app-id, pn-tok, pn-type → a VoIP push to <app-id>.voip", async () => {
    const user = nextUser();
    const token = nextToken();
    await register(user, kazooParams(token));
    await callAsleep(user);
    const [push] = apns.requestsFor(token);
    expect(push.headers["apns-topic"]).toBe(`${KAZOO_APP}.voip`);
    expect(push.headers["apns-push-type"]).toBe("voip");
  });

  it("RFC 8599: pn-provider=apns, pn-param TeamID.BundleID.voip → a VoIP push to the bundle's .voip topic", async () => {
    const user = nextUser();
    const token = nextToken();
    await register(user, rfcParams(token, ".voip"), { userAgent: "SomeRfcPhone/1.0" });
    expect(devicesOf(user)[0]).toMatchObject({ appId: RFC_BUNDLE, apnsTopic: RFC_BUNDLE, pushKind: "voip", token });
    await callAsleep(user);
    const [push] = apns.requestsFor(token);
    expect(push.path).toBe(`/3/device/${token}`);
    expect(push.headers["apns-topic"]).toBe(`${RFC_BUNDLE}.voip`);
    expect(push.headers["apns-push-type"]).toBe("voip");
  });

  it("RFC 8599 without the .voip service: an alert push to the bundle id", async () => {
    const user = nextUser();
    const token = nextToken();
    await register(user, rfcParams(token, ""), { userAgent: "SomeRfcPhone/1.0" });
    expect(devicesOf(user)[0]).toMatchObject({ pushKind: "alert", apnsTopic: RFC_BUNDLE });
    await callAsleep(user);
    const [push] = apns.requestsFor(token);
    expect(push.headers["apns-topic"]).toBe(RFC_BUNDLE);
    expect(push.headers["apns-push-type"]).toBe("alert");
  });

  it("Linphone: pn-prid=<tok>:remote&<tok>:voip → the call goes to the VoIP token, the alert token is kept", async () => {
    const user = nextUser();
    const [remote, voip] = [nextToken(), nextToken()];
    const params =
      `;+sip.instance="<urn:uuid:00000000-0000-0000-0000-00000000aaaa>";pn-provider=apns;pn-prid=${remote}:remote%26${voip}:voip` +
      `;pn-param=${TEAM_ID}.${RFC_BUNDLE}.remote%26voip;pn-msg-str=IM_MSG;pn-call-str=IC_MSG;pn-call-snd=notes_of_the_optimistic.caf;pn-silent=1;pn-timeout=0`;
    await register(user, params, { userAgent: LINPHONE_UA });
    expect(devicesOf(user)[0]).toMatchObject({
      token: voip,
      alertToken: remote,
      pushKind: "voip",
      options: { "pn-msg-str": "IM_MSG", "pn-call-str": "IC_MSG", "pn-call-snd": "notes_of_the_optimistic.caf", "pn-silent": "1", "pn-timeout": "0" },
    });
    await callAsleep(user);
    expect(apns.requestsFor(voip)).toHaveLength(1);
    expect(apns.requestsFor(remote)).toHaveLength(0);
    expect(apns.requestsFor(voip)[0].headers["apns-topic"]).toBe(`${RFC_BUNDLE}.voip`);
  });

  it("Linphone: pn-provider=apns.dev marks the record as a sandbox token", async () => {
    const user = nextUser();
    const token = nextToken();
    await register(user, `;pn-provider=apns.dev;pn-prid=${token}:voip;pn-param=${TEAM_ID}.${RFC_BUNDLE}.voip`, { userAgent: LINPHONE_UA });
    expect(devicesOf(user)[0]).toMatchObject({ token, sandbox: true, pushKind: "voip" });
  });
});

describe("RFC 8599 on REGISTER", () => {
  it("leaves a REGISTER that passed a proxy pushing for it (+sip.pns Feature-Caps in the request) alone: no record, no Feature-Caps", async () => {
    const viaProxy = (user: string, params: string, port?: number) =>
      register(user, params, { scenario: "register-via-pushing-proxy.xml", userAgent: LINPHONE_UA, port });
    const newcomer = nextUser();
    expect(featureCapsIn(await viaProxy(newcomer, rfcParams(nextToken())))).toEqual([]);
    expect(devicesOf(newcomer)).toEqual([]);
    expect(pusher.rpc("ul.dump")).toContain(aorOf(newcomer)); // registered as usual, without push

    // A phone the plugin already handled directly: cfg's unchanged-REGISTER shortcut must not answer for it.
    const user = nextUser();
    const port = await freePort();
    const params = rfcParams(nextToken());
    expect(await featureCapsOf(user, params, LINPHONE_UA, port)).toEqual(['*;+sip.pns="apns"']);
    expect(featureCapsIn(await viaProxy(user, params, port))).toEqual([]);
  });

  it("adds Feature-Caps: *;+sip.pns=\"apns\" to the 200 when apns is configured for the app", async () => {
    expect(await featureCapsOf(nextUser(), rfcParams(nextToken()))).toEqual(['*;+sip.pns="apns"']);
  });

  it("adds no Feature-Caps for a legacy binding", async () => {
    expect(await featureCapsOf(nextUser(), kazooParams(nextToken()), KAZOO_UA)).toEqual([]);
  });

  it("answers 555 to a provider that is not configured for the app, and stores nothing", async () => {
    const user = nextUser();
    await register(user, `;pn-provider=fcm;pn-prid=fcmToken:APA91b${counter};pn-param=example-project`, { scenario: "register-refused.xml", userAgent: LINPHONE_UA });
    await register(user, `;pn-provider=apns;pn-prid=${nextToken()};pn-param=${TEAM_ID}.org.unknown.app.voip`, { scenario: "register-refused.xml", userAgent: LINPHONE_UA });
    await register(user, `;pn-provider=huawei;pn-prid=abc123;pn-param=x`, { scenario: "register-refused.xml", userAgent: LINPHONE_UA });
    expect(devicesOf(user)).toEqual([]);
    expect(pusher.rpc("ul.dump")).not.toContain(aorOf(user));
  });

  it("lists the supported providers for a query REGISTER (pn-provider without pn-prid)", async () => {
    expect(await featureCapsOf(nextUser(), ";pn-provider")).toEqual(['*;+sip.pns="apns"']);
    expect(await featureCapsOf(nextUser(), ";pn-provider=apns")).toEqual(['*;+sip.pns="apns"']);
    await register(nextUser(), ";pn-provider=fcm", { scenario: "register-refused.xml", userAgent: LINPHONE_UA });
  });
});

describe("Kamailio's log", () => {
  it("has no cfg evaluation errors from the REGISTER routes (a transformation of a missing item, a substring out of range)", () => {
    // Every REGISTER of this file went through PUSHER_KNOWN_REGISTER and PUSHER_REGISTER; such errors cost a log line each.
    const errors = pusher.output().split("\n").filter((line) => / ERROR: .*(lval_|tr_eval_|pv_trans|rval_)/.test(line));
    expect(errors).toEqual([]);
  });
});
