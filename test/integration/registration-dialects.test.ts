// Registration dialects end to end, on one `pusher start` (real Kamailio, sipp phones and callers, the real
// helper, a mock FCM + OAuth and a mock APNs) that runs with `kamailio.defines.PUSHER_REJECT_UNSUPPORTED` 0:
//   - RFC 8599 FCM (`pn-provider=fcm;pn-prid=<token>;pn-param=<project-id>`): from the REGISTER to the FCM v1
//     message for that project, to the woken phone answering the call;
//   - a provider not configured for the app, with the 555 knob off: 200, the binding saved, no device record;
//   - Linphone's extra params (pn-msg-str, pn-call-str, pn-call-snd, pn-silent, pn-timeout) kept on the record
//     in htable and on disk.
// The three places a device record lives are all read: `pusher devices` (asks Kamailio), `htable.dump
// pusher_devices` (the raw htable item) and the sqlite file Kamailio writes through to. Phones are those of the
// test topology (topology.ts): users on a named domain, each phone on its own loopback address.
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { MockApns } from "../support/mock-apns";
import { MockFcm } from "../support/mock-fcm";
import { PusherProcess, ROOT, startPusher, TEST_CA_DIR } from "../support/pusher-process";
import { featureCapsIn } from "../support/sipp";
import { Phone } from "../support/topology";
import { waitUntil } from "../support/wait-until";
import { call, dropBindings, registerAndAnswer, registerPhone, sharedCallId } from "../support/wake-fixture";
import type { ListedDevice } from "../../src/cli/devices-command";

/** Two Firebase projects, each its own app (RFC 8599 fcm: the app id is pn-param, the project id). */
const FCM_PROJECT_A = "rfc-project-a";
const FCM_PROJECT_B = "rfc-project-b";
const TEAM_ID = "ABCDE12345";
const RFC_BUNDLE = "org.example.phone";
const RFC_UA = "SomeRfcPhone/1.0";
const LINPHONE_UA = "LinphoneAndroid/5.2.0 (Pixel) LinphoneSDK/5.3.0";
const TIMERS = { inviteFirstMs: 500, pushWaitMs: 3000, afterWakeMs: 5000 };

/** A device record as `pusher devices --json` lists it. */
type Device = ListedDevice;

let work: string;
let fcm: MockFcm;
let apns: MockApns;
let pusher: PusherProcess;
let counter = 0;

/** An FCM registration token unique to this run (base64url with a colon, as FCM issues them). */
function nextFcmToken(): string {
  counter += 1;
  return `f${process.pid}x${counter}:APA91bRfc-e2e_token`;
}

/** A token unique to this run, in APNs' hex alphabet. */
function nextApnsToken(): string {
  counter += 1;
  return `${process.pid.toString(16)}${counter.toString(16).padStart(6, "0")}00ee00ee00ee`;
}

function instanceParam(n: number): string {
  return `;+sip.instance="<urn:uuid:00000000-0000-0000-0000-${n.toString(16).padStart(12, "0")}>"`;
}

function devicesOf(phone: Phone): Device[] {
  const out = execFileSync(
    process.execPath,
    [join(ROOT, "dist", "cli.js"), "--config", pusher.configPath, "devices", phone.aor, "--json", "--show-tokens"],
    {
      encoding: "utf8",
    },
  );
  return JSON.parse(out) as Device[];
}

/** The AOR's item in `kamcmd htable.dump pusher_devices` (its devices by instance), or null when it has none. */
function htableItem(phone: Phone): Record<string, Device> | null {
  const dump = pusher.rpc("htable.dump", "pusher_devices");
  const escaped = phone.aor.replace(/\./g, "\\.");
  const match = new RegExp(`^\\s*name: ${escaped}\\s*\\n\\s*value: (.*)$`, "m").exec(dump);
  // Marks of REGISTERs already applied (device-store.ts saveDevice's mark) may come before the JSON.
  return match ? (JSON.parse(match[1].slice(match[1].indexOf("{"))) as Record<string, Device>) : null;
}

/** The AOR's row in the sqlite file Kamailio writes device records to, or "" when there is none. */
function databaseRow(phone: Phone): string {
  const file = join(pusher.dir, "state", "devices.sqlite");
  return execFileSync("sqlite3", ["-readonly", file, `SELECT devices FROM pusher_devices WHERE aor = '${phone.aor}'`], {
    encoding: "utf8",
  }).trim();
}

/** Registers `phone` once; `scenario` register.xml expects 200, register-feature-caps.xml prints its Feature-Caps. */
async function register(phone: Phone, params: string, userAgent: string, scenario = "register.xml"): Promise<string> {
  return (await registerPhone(pusher, phone, params, { userAgent, scenario })).output;
}

/** Registers and returns the Feature-Caps values of the 200. */
async function registerForFeatureCaps(phone: Phone, params: string, userAgent: string): Promise<string[]> {
  const output = await register(phone, params, userAgent, "register-feature-caps.xml");
  const values = featureCapsIn(output);
  expect(values, output).not.toBeNull();
  return values!;
}

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), "registration-dialects-"));
  fcm = await MockFcm.start({ caDir: TEST_CA_DIR });
  apns = await MockApns.start({ caDir: TEST_CA_DIR });
  pusher = await startPusher({
    timers: TIMERS,
    kamailio: { defines: { PUSHER_REJECT_UNSUPPORTED: 0 } },
    userAgents: [{ name: "linphone", regex: "^Linphone" }],
    apps: {
      [FCM_PROJECT_A]: {
        firebase: { serviceAccountFile: fcm.createServiceAccount(work, FCM_PROJECT_A), host: fcm.host },
      },
      [FCM_PROJECT_B]: {
        firebase: { serviceAccountFile: fcm.createServiceAccount(work, FCM_PROJECT_B), host: fcm.host },
      },
      [RFC_BUNDLE]: { apple: apns.appleConfig({ certificateFile: join(TEST_CA_DIR, "apple-app.pem") }) },
    },
  });
}, 30000);

afterAll(async () => {
  await pusher?.stop();
  await Promise.all([fcm?.close(), apns?.close()]);
  if (work) rmSync(work, { recursive: true, force: true });
});

beforeEach(() => {
  fcm.requests.length = 0;
  apns.requests.length = 0;
});

describe("RFC 8599 FCM: pn-provider=fcm, pn-prid=<token>, pn-param=<project-id>", () => {
  it("stores the device, pushes an FCM v1 message to that project when a call comes, and hands the woken phone the call", async () => {
    const phone = await Phone.create();
    const token = nextFcmToken();
    // Project B, not the first app of the config: the push must go to the project the phone named.
    const params = `${instanceParam(0xf1)};pn-provider=fcm;pn-prid=${token};pn-param=${FCM_PROJECT_B}`;
    expect(await registerForFeatureCaps(phone, params, RFC_UA)).toEqual(['*;+sip.pns="fcm"']);
    expect(devicesOf(phone)).toMatchObject([
      { provider: "firebase", appId: FCM_PROJECT_B, fcmProjectId: FCM_PROJECT_B, token },
    ]);

    // The app sleeps: its binding is gone, its device record stays.
    dropBindings(pusher, phone);
    const callId = sharedCallId(phone);
    const caller = call(pusher, phone, "call-answered.xml", { callId });
    await waitUntil(
      () => fcm.requestsFor(token).length > 0,
      8000,
      () => `an FCM message for ${token}; pusher output:\n${pusher.output().slice(-3000)}`,
    );

    expect(fcm.requests).toHaveLength(1);
    const [message] = fcm.requestsFor(token);
    expect(message.project).toBe(FCM_PROJECT_B); // the mock took it from /v1/projects/<project>/messages:send
    expect(message.status).toBe(200);
    expect(message.body.message.token).toBe(token);
    expect(message.body.message.android.priority).toBe("HIGH");
    expect(message.body.message.data).toMatchObject({ "call-id": callId, "caller-id-number": "15551234567" });

    const woken = await registerAndAnswer(pusher, await phone.newSocket(), params, callId, { userAgent: RFC_UA });
    expect(woken.code, woken.output + pusher.output().slice(-3000)).toBe(0);
    const answered = await caller;
    expect(answered.code, answered.output).toBe(0);
  });
});

describe("kamailio.defines PUSHER_REJECT_UNSUPPORTED 0: a provider not configured for the app", () => {
  it.each([
    [
      "apns for an app without Apple credentials",
      () => `;pn-provider=apns;pn-prid=${nextApnsToken()};pn-param=${TEAM_ID}.org.unknown.app.voip`,
    ],
    [
      "fcm for a project without a service account",
      () => `;pn-provider=fcm;pn-prid=${nextFcmToken()};pn-param=unknown-project`,
    ],
    ["a push service this proxy does not know", () => `;pn-provider=huawei;pn-prid=abc123;pn-param=x`],
  ])("%s: 200 without Feature-Caps, the binding is saved, no device record is written", async (_what, paramsOf) => {
    const phone = await Phone.create();
    const before = pusher.output().length;
    // register-feature-caps.xml expects 200: a 555 fails the scenario.
    expect(await registerForFeatureCaps(phone, instanceParam(0xa1) + paramsOf(), LINPHONE_UA)).toEqual([]);
    expect(pusher.rpc("ul.lookup", "location", phone.aor)).toContain(
      `sip:${phone.contactUser}@${phone.address}:${phone.port}`,
    );
    expect(devicesOf(phone)).toEqual([]);
    expect(htableItem(phone)).toBeNull();
    expect(pusher.rpc("htable.dump", "pusher_devices")).not.toContain(phone.aor);
    expect(databaseRow(phone)).toBe("");
    expect(pusher.output().slice(before)).not.toMatch(new RegExp(`device stored aor=${phone.aor} |refused with 555`));
  });

  it("still stores the configured device of the same REGISTER", async () => {
    const phone = await Phone.create();
    const token = nextFcmToken();
    const at = phone.advertisedAddress;
    const contact =
      `<sip:${phone.contactUser}@${at};transport=udp>${instanceParam(0xb1)};pn-provider=fcm;pn-prid=${token};pn-param=${FCM_PROJECT_A}, ` +
      `<sip:${phone.contactUser}-b@${at};transport=udp>${instanceParam(0xb2)};pn-provider=apns;pn-prid=${nextApnsToken()};pn-param=${TEAM_ID}.org.unknown.app.voip`;
    await registerPhone(pusher, phone, "", { userAgent: LINPHONE_UA, keys: { contact } });
    expect(devicesOf(phone).map((device) => [device.provider, device.token])).toEqual([["firebase", token]]);
  });
});

describe("Linphone's extra params", () => {
  const OPTIONS = {
    "pn-msg-str": "IM_MSG",
    "pn-call-str": "IC_MSG",
    "pn-call-snd": "notes_of_the_optimistic.caf",
    "pn-silent": "1",
    "pn-timeout": "0",
  };
  const optionParams = Object.entries(OPTIONS)
    .map(([name, value]) => `;${name}=${value}`)
    .join("");

  it("keeps pn-msg-str, pn-call-str, pn-call-snd, pn-silent and pn-timeout on the record, in htable and on disk", async () => {
    const phone = await Phone.create();
    const token = nextApnsToken();
    await register(
      phone,
      `${instanceParam(0xc1)};pn-provider=apns;pn-prid=${token};pn-param=${TEAM_ID}.${RFC_BUNDLE}.voip${optionParams}`,
      LINPHONE_UA,
    );
    expect(devicesOf(phone)).toMatchObject([{ token, options: OPTIONS }]);

    const item = htableItem(phone);
    expect(item).not.toBeNull();
    const [inHtable] = Object.values(item!);
    expect(inHtable.options).toEqual(OPTIONS);

    const [onDisk] = Object.values(JSON.parse(databaseRow(phone)) as Record<string, Device>);
    expect(onDisk.options).toEqual(OPTIONS);
  });

  it("keeps them on a legacy (pn-type/pn-tok/app-id) Linphone binding too, and replaces them when they change", async () => {
    const phone = await Phone.create();
    const token = nextApnsToken();
    const legacy = `${instanceParam(0xc2)};app-id=${RFC_BUNDLE};pn-type=apple;pn-tok=${token}`;
    await register(phone, legacy + optionParams, LINPHONE_UA);
    expect(devicesOf(phone)).toMatchObject([{ token, options: OPTIONS }]);
    await register(phone, `${legacy};pn-call-snd=other.caf`, LINPHONE_UA);
    expect(devicesOf(phone)[0].options).toEqual({ "pn-call-snd": "other.caf" });
  });
});
