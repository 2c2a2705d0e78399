// Refresh pushes before a binding expires (RFC 8599 §5.5; docs/messages.md) end to end: real Kamailio with
// kamailio/kamailio.cfg, the helper, a mock APNs that refuses a background push at priority 10 as Apple says it must.
// A binding with expires=130 (registrations.refreshBeforeSeconds 120) gets one background push about 10 s after its
// last REGISTER, its 2xx carried +sip.pnsreg; a PushKit-only binding gets none; a binding too short for a push is
// answered 423; a push armed before a restart still comes (the reference cfg keeps usrloc's bindings), and one sent
// before it is not sent again.
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ListedDevice } from "../../src/cli/devices-command";
import { MockApns } from "../support/mock-apns";
import { MockFcm } from "../support/mock-fcm";
import { PusherProcess, ROOT, TEST_CA_DIR } from "../support/pusher-process";
import { featureCapsIn } from "../support/sipp";
import { Phone } from "../support/topology";
import {
  APP_ID,
  WakeFixture,
  kamailioCounter,
  pushParams,
  registerPhone,
  rfc8599AppleParams,
  startWakeFixture,
  TEAM_ID,
  waitForPushes,
} from "../support/wake-fixture";
import { waitUntil } from "../support/wait-until";

// +sip.pnsreg and Min-Expires: refreshBeforeSeconds (120, the default) + 10 (src/plugin/refresh-pushes.ts).
const SELF_REFRESH_S = 130;

/** An Android app on the mock FCM (its service account's project). */
const ANDROID_APP = "com.example.refresh.android";
const FCM_PROJECT = "refresh-project";

let fixture: WakeFixture;
let apns: MockApns;
let fcm: MockFcm;
let work: string;
let pusher: PusherProcess;

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), "refresh-pushes-"));
  fcm = await MockFcm.start({ caDir: TEST_CA_DIR });
  const firebase = { serviceAccountFile: fcm.createServiceAccount(work, FCM_PROJECT), host: fcm.host };
  fixture = await startWakeFixture({ apps: { [ANDROID_APP]: { firebase } } });
  ({ apns, pusher } = fixture);
}, 30000);

afterAll(async () => {
  // The fixture's pusher until a test restarts it: stop the one running now.
  await pusher?.stop();
  await Promise.all([apns?.close(), fcm?.close()]);
  if (work) rmSync(work, { recursive: true, force: true });
});

/** The AOR's device records as `pusher devices <aor> --json --show-tokens` lists them. */
function devicesOf(phone: Phone): ListedDevice[] {
  const out = execFileSync(
    process.execPath,
    [join(ROOT, "dist", "cli.js"), "--config", pusher.configPath, "devices", phone.aor, "--json", "--show-tokens"],
    { encoding: "utf8" },
  );
  return JSON.parse(out) as ListedDevice[];
}

function sleep(ms: number): Promise<void> {
  return new Promise((done) => setTimeout(done, ms));
}

/** REGISTERs `phone` (Contact with the sip.pnsreg feature tag) and returns the Feature-Caps of its 200. */
async function register(phone: Phone, uriParams: string, expires = "130"): Promise<string[] | null> {
  const run = await registerPhone(pusher, phone, ";+sip.pnsreg", {
    uriParams,
    expires,
    scenario: "register-feature-caps.xml",
  });
  return featureCapsIn(run.output);
}

describe("a binding whose phone takes a background push", () => {
  it("gets one refresh push refreshBeforeSeconds before its last REGISTER expires, +sip.pnsreg in its 2xx, a restart in between or not; a PushKit-only binding gets none", async () => {
    const phone = await Phone.create();
    const pushKitOnly = await Phone.create();
    const alertToken = apns.newDevice(APP_ID, "alert");
    const voipToken = apns.newDevice(APP_ID, "voip");
    const pushes = kamailioCounter(pusher, "refresh_pushes");
    expect(await register(phone, rfc8599AppleParams(alertToken))).toEqual([
      '*;+sip.pns="apns"',
      `*;+sip.pnsreg="${SELF_REFRESH_S}"`,
    ]);
    expect(await register(pushKitOnly, rfc8599AppleParams(voipToken, "voip"))).toEqual(['*;+sip.pns="apns"']);
    // The same REGISTER again: answered from cfg without JavaScript (the fast path), which arms the new lifetime's
    // push and leaves the first one's stale (usrloc's expiry moved).
    await sleep(5000);
    const unchanged = kamailioCounter(pusher, "registers_unchanged");
    const lastRegisterAt = Date.now();
    expect(await register(phone, rfc8599AppleParams(alertToken))).toEqual([
      '*;+sip.pns="apns"',
      `*;+sip.pnsreg="${SELF_REFRESH_S}"`,
    ]);
    expect(kamailioCounter(pusher, "registers_unchanged") - unchanged).toBe(1);

    await waitForPushes(apns, alertToken, 1, 30000, pusher);
    const push = apns.requestsFor(alertToken)[0];
    // Not at the first lifetime's time (10 s after the first REGISTER): at the last one's.
    expect(push.receivedAtMs - lastRegisterAt).toBeGreaterThanOrEqual(8000);
    expect(push.headers["apns-push-type"]).toBe("background");
    expect(push.headers["apns-priority"]).toBe("5");
    expect(push.headers["apns-topic"]).toBe(APP_ID);
    expect(push.status).toBe(200);
    expect(push.body).toMatchObject({ aps: { "content-available": 1 }, event: "refresh" });
    expect((push.body as { aps: object }).aps).not.toHaveProperty("alert");
    await sleep(3000);
    expect(apns.requestsFor(alertToken)).toHaveLength(1);
    expect(apns.requestsFor(voipToken)).toHaveLength(0);
    expect(kamailioCounter(pusher, "refresh_pushes") - pushes).toBe(1);

    // Kamailio restarts: usrloc keeps both bindings (WITH_USRLOCDB). The one just pushed gets no second push in its
    // lifetime; one registered right before the restart still gets its push, armed again from its expiry.
    const next = await Phone.create();
    const nextToken = apns.newDevice(APP_ID, "alert");
    await register(next, rfc8599AppleParams(nextToken));
    await pusher.stop();
    pusher = await pusher.restart();
    await pusher.waitFor(/refresh pushes armed for 1 bindings kept across the restart/);
    await waitForPushes(apns, nextToken, 1, 30000, pusher);
    expect(apns.requestsFor(nextToken)[0].headers["apns-push-type"]).toBe("background");
    await sleep(2000);
    expect(apns.requestsFor(nextToken)).toHaveLength(1);
    expect(apns.requestsFor(alertToken)).toHaveLength(1);
  }, 90000);

  it("is answered 423 with Min-Expires when too short for a refresh push; bindings that get none are saved as they ask", async () => {
    const phone = await Phone.create();
    const alertToken = apns.newDevice(APP_ID, "alert");
    const refused = await registerPhone(pusher, phone, "", {
      uriParams: rfc8599AppleParams(alertToken),
      expires: "60",
      scenario: "register-interval-too-brief.xml",
    });
    expect(refused.output).toContain(`MIN-EXPIRES ${SELF_REFRESH_S} END-MIN-EXPIRES`);
    // A PushKit-only binding, and a Kazoo one (legacy params: any push rings), are never pushed for a refresh.
    await registerPhone(pusher, await Phone.create(), "", {
      uriParams: rfc8599AppleParams(apns.newDevice(APP_ID, "voip"), "voip"),
      expires: "60",
    });
    await registerPhone(pusher, await Phone.create(), pushParams(apns.newDevice(APP_ID, "voip")), { expires: "60" });
  });
});

describe("a refresh push answered that the token is dead", () => {
  it("removes the device record (APNs 410 Unregistered, FCM UNREGISTERED), as a call push's answer does; one refused as not for its topic stays", async () => {
    const [unregistered, fcmGone, notForTopic] = [await Phone.create(), await Phone.create(), await Phone.create()];
    const appleToken = apns.newDevice(APP_ID, "alert");
    apns.replyFor(appleToken, { status: 410, reason: "Unregistered" });
    const fcmToken = `fcm-${randomBytes(8).toString("hex")}:APA91b-refresh-unregistered`;
    fcm.replyFor(fcmToken, {
      status: 404,
      errorStatus: "NOT_FOUND",
      errorCode: "UNREGISTERED",
      message: "Requested entity was not found.",
    });
    const otherAppsToken = apns.newDevice("com.example.otherapp", "alert"); // our topic (APP_ID) does not fit it
    await register(unregistered, rfc8599AppleParams(appleToken));
    await register(fcmGone, `;pn-provider=fcm;pn-prid=${fcmToken};pn-param=${FCM_PROJECT};app-id=${ANDROID_APP}`);
    await register(notForTopic, rfc8599AppleParams(otherAppsToken));
    for (const phone of [unregistered, fcmGone, notForTopic]) expect(devicesOf(phone)).toHaveLength(1);

    // Pushed about 10 s after the REGISTERs (expires 130, refreshBeforeSeconds 120).
    await waitUntil(
      () => devicesOf(unregistered).length === 0 && devicesOf(fcmGone).length === 0,
      30000,
      () => `both records removed; pusher output:\n${pusher.output().slice(-4000)}`,
      250,
    );
    expect(apns.requestsFor(appleToken).map((push) => `${push.headers["apns-push-type"]} ${push.status}`)).toEqual([
      "background 410",
    ]);
    expect(fcm.requestsFor(fcmToken).map((push) => `${push.body.message.data.event} ${push.status}`)).toEqual([
      "refresh 404",
    ]);
    for (const phone of [unregistered, fcmGone])
      await pusher.waitFor(new RegExp(`device removed aor=${phone.aor} .*token is dead`), 3000);

    await waitForPushes(apns, otherAppsToken, 1, 10000, pusher);
    await pusher.waitFor(
      new RegExp(`push failed call-id= aor=${notForTopic.aor} code=PUSHER_ERR_APNS_TOKEN_NOT_FOR_TOPIC`),
      5000,
    );
    await sleep(300); // Kamailio's log trails its htable
    expect(apns.requestsFor(otherAppsToken).map((push) => push.status)).toEqual([400]);
    expect(devicesOf(notForTopic).map((device) => device.token)).toEqual([otherAppsToken]);
    expect(pusher.output()).not.toMatch(new RegExp(`device removed aor=${notForTopic.aor} `));
  }, 60000);

  it("drops only the dead alert token of Linphone's two-token binding (APNs 410 Unregistered): the device keeps its VoIP token", async () => {
    const phone = await Phone.create();
    const [alertToken, voipToken] = [apns.newDevice(APP_ID, "alert"), apns.newDevice(APP_ID, "voip")];
    apns.replyFor(alertToken, { status: 410, reason: "Unregistered" });
    await register(
      phone,
      `;pn-provider=apns;pn-prid=${alertToken}:remote&${voipToken}:voip;pn-param=${TEAM_ID}.${APP_ID}.remote&voip`,
    );
    expect(devicesOf(phone).map((device) => [device.token, device.alertToken])).toEqual([[voipToken, alertToken]]);
    // Pushed about 10 s after the REGISTER (expires 130, refreshBeforeSeconds 120), at the alert token.
    await pusher.waitFor(new RegExp(`alert token dropped aor=${phone.aor} .*dead`), 30000);
    expect(apns.requestsFor(alertToken).map((push) => `${push.headers["apns-push-type"]} ${push.status}`)).toEqual([
      "background 410",
    ]);
    expect(apns.requestsFor(voipToken)).toEqual([]);
    expect(devicesOf(phone).map((device) => [device.token, device.alertToken])).toEqual([[voipToken, undefined]]);
    expect(pusher.output()).not.toMatch(new RegExp(`device removed aor=${phone.aor} `));
  }, 60000);
});
