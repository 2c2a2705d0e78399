// MESSAGE store-and-wake end to end (docs/messages.md), in the deployment topology: phones on their own loopback
// addresses asleep the way a phone sleeps (nothing answers at its Contact), a sender on another address, the real
// Kamailio with kamailio/kamailio.cfg, the helper and a mock APNs as strict as Apple's. A MESSAGE no phone takes is
// stored (202 Accepted), an alert token gets a message push (a PushKit-only device none), and the phone that
// registers gets the messages oldest first, each removed only after its 2xx; a 480 keeps them. Retention ends on
// the timer; a crash of Kamailio between store and delivery loses nothing. messages.previewInPush is on here (its
// default, off, is test/config.test.ts's).
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ListedDevice } from "../../src/cli/devices-command";
import { MockApns, RecordedRequest } from "../support/mock-apns";
import { MockFcm } from "../support/mock-fcm";
import { PusherProcess, ROOT, TEST_CA_DIR } from "../support/pusher-process";
import { Phone } from "../support/topology";
import {
  APP_ID,
  CALLER,
  WakeFixture,
  call,
  kamailioCounter,
  registerAndAnswer,
  registerPhone,
  rfc8599AppleParams,
  sharedCallId,
  startWakeFixture,
  TEAM_ID,
  waitForPushes,
} from "../support/wake-fixture";
import { waitUntil } from "../support/wait-until";

const TIMERS = { inviteFirstMs: 1000, pushWaitMs: 3000, afterWakeMs: 5000 };
/** An Android app on the mock FCM: its service account's project, and one more of projectIds it has no rights on. */
const ANDROID_APP = "com.example.messages.android";
const FCM_PROJECT = "messages-project";
const FOREIGN_FCM_PROJECT = "messages-other-project";

let fixture: WakeFixture;
let apns: MockApns;
let fcm: MockFcm;
let work: string;
let pusher: PusherProcess;

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), "messages-"));
  fcm = await MockFcm.start({ caDir: TEST_CA_DIR });
  const firebase = {
    serviceAccountFile: fcm.createServiceAccount(work, FCM_PROJECT),
    host: fcm.host,
    projectIds: [FCM_PROJECT, FOREIGN_FCM_PROJECT],
  };
  fixture = await startWakeFixture({
    timers: TIMERS,
    messages: { previewInPush: true },
    apps: { [ANDROID_APP]: { firebase } },
  });
  ({ apns, pusher } = fixture);
}, 30000);

afterAll(async () => {
  // The fixture's pusher until a test restarts it: stop the one running now.
  await pusher?.stop();
  await Promise.all([apns?.close(), fcm?.close()]);
  if (work) rmSync(work, { recursive: true, force: true });
});

/** `pusher devices <aor>`'s "messages waiting" line. */
function messagesWaiting(phone: Phone): number {
  const out = execFileSync(
    process.execPath,
    [join(ROOT, "dist", "cli.js"), "--config", pusher.configPath, "devices", phone.aor],
    { encoding: "utf8" },
  );
  const match = /^messages waiting: (\d+)$/m.exec(out);
  if (!match) throw new Error(`no "messages waiting" line in:\n${out}`);
  return Number(match[1]);
}

/** The AOR's device records as `pusher devices <aor> --json --show-tokens` lists them. */
function devicesOf(phone: Phone): ListedDevice[] {
  const out = execFileSync(
    process.execPath,
    [join(ROOT, "dist", "cli.js"), "--config", pusher.configPath, "devices", phone.aor, "--json", "--show-tokens"],
    { encoding: "utf8" },
  );
  return JSON.parse(out) as ListedDevice[];
}

/** RFC 8599 push params of an FCM token of ANDROID_APP in `project`. */
function fcmParams(token: string, project = FCM_PROJECT): string {
  return `;pn-provider=fcm;pn-prid=${token};pn-param=${project};app-id=${ANDROID_APP}`;
}

/** Linphone's two-token binding (`<alert>:remote&<voip>:voip`): message pushes go to the alert token. */
function linphoneTwoTokenParams(alertToken: string, voipToken: string): string {
  return `;pn-provider=apns;pn-prid=${alertToken}:remote&${voipToken}:voip;pn-param=${TEAM_ID}.${APP_ID}.remote&voip`;
}

/** FCM's answer for a token whose app instance is gone. */
const FCM_UNREGISTERED = {
  status: 404,
  errorStatus: "NOT_FOUND",
  errorCode: "UNREGISTERED",
  message: "Requested entity was not found.",
};

/** A phone asleep with one device (push params inside its Contact URI), sent one MESSAGE that is stored (202). */
async function storeMessageFor(uriParams: string): Promise<{ phone: Phone; callId: string }> {
  const phone = await Phone.create();
  await registerPhone(pusher, phone, "", { uriParams });
  expect(devicesOf(phone)).toHaveLength(1);
  const callId = sharedCallId(phone);
  const sent = await call(pusher, phone, "send-message-stored.xml", { callId });
  expect(sent.code, sent.output).toBe(0);
  return { phone, callId };
}

function sql(statement: string): string {
  return execFileSync("sqlite3", ["-cmd", ".timeout 5000", join(pusher.dir, "state", "devices.sqlite"), statement], {
    encoding: "utf8",
  });
}

function bodyOf(request: RecordedRequest): Record<string, unknown> {
  return request.body as Record<string, unknown>;
}

describe("a MESSAGE to a phone that sleeps", () => {
  it("is stored (202) and pushed to its alert token only, kept when the phone answers 480, and delivered oldest first at its next REGISTER", async () => {
    const phone = await Phone.create();
    const pushKitOnly = await Phone.create({ user: phone.user });
    const alertToken = apns.newDevice(APP_ID, "alert");
    const voipToken = apns.newDevice(APP_ID, "voip");
    // Both register from a short-lived socket: nothing answers at their Contacts afterwards (asleep).
    await registerPhone(pusher, phone, "", { uriParams: rfc8599AppleParams(alertToken) });
    await registerPhone(pusher, pushKitOnly, "", { uriParams: rfc8599AppleParams(voipToken, "voip") });
    const stored = kamailioCounter(pusher, "messages_stored");

    const callId = sharedCallId(phone);
    const sent = await call(pusher, phone, "send-messages-stored.xml", { callId });
    expect(sent.code, sent.output + pusher.output().slice(-3000)).toBe(0);
    await waitForPushes(apns, alertToken, 2, 8000, pusher);
    const pushes = apns.requestsFor(alertToken);
    for (const push of pushes) {
      expect(push.headers["apns-push-type"]).toBe("alert");
      expect(push.headers["apns-topic"]).toBe(APP_ID);
      expect(push.status).toBe(200);
      expect(bodyOf(push)).toMatchObject({
        event: "message",
        "sender-number": CALLER.number,
        "sender-name": CALLER.name,
        "call-id": callId,
      });
      expect(bodyOf(push)["message-id"]).toMatch(/^[0-9a-f-]{36}$/);
    }
    // messages.previewInPush: the start of the text, a 4-byte character intact (never re-encoded as CESU-8).
    expect(bodyOf(pushes[0]).preview).toMatch(/^first message 😀\s*$/);
    expect((bodyOf(pushes[0]).aps as { alert: { body: string } }).alert.body).toBe(bodyOf(pushes[0]).preview);
    expect(bodyOf(pushes[1]).preview).toMatch(/^second message\s*$/);
    expect(bodyOf(pushes[0])["message-id"]).not.toBe(bodyOf(pushes[1])["message-id"]);
    expect(apns.requestsFor(voipToken)).toHaveLength(0);
    expect(kamailioCounter(pusher, "messages_stored") - stored).toBe(2);
    expect(messagesWaiting(phone)).toBe(2);

    // The phone wakes and refuses the first: both stay, the second is not even sent.
    const refused = await registerAndAnswer(pusher, phone, "", callId, {
      scenario: "register-and-refuse-message.xml",
      uriParams: rfc8599AppleParams(alertToken),
    });
    expect(refused.code, refused.output).toBe(0);
    await pusher.waitFor(new RegExp(`message kept aor=${phone.aor} id=\\S+: the phone answered 480`), 5000);
    expect(messagesWaiting(phone)).toBe(2);

    const delivered = kamailioCounter(pusher, "messages_delivered");
    const received = await registerAndAnswer(pusher, phone, "", callId, {
      scenario: "register-and-receive-two-messages.xml",
      uriParams: rfc8599AppleParams(alertToken),
    });
    expect(received.code, received.output + pusher.output().slice(-3000)).toBe(0);
    await waitUntil(
      () => kamailioCounter(pusher, "messages_delivered") - delivered === 2,
      5000,
      () => `two deliveries; output:\n${pusher.output().slice(-3000)}`,
    );
    expect(messagesWaiting(phone)).toBe(0);
    expect(sql(`SELECT COUNT(*) FROM pusher_messages WHERE aor = '${phone.aor}'`).trim()).toBe("0");
  });

  it("is dropped and counted once messages.retentionDays passed, and not delivered", async () => {
    const phone = await Phone.create();
    const alertToken = apns.newDevice(APP_ID, "alert");
    await registerPhone(pusher, phone, "", { uriParams: rfc8599AppleParams(alertToken) });
    const sent = await call(pusher, phone, "send-message-stored.xml");
    expect(sent.code, sent.output).toBe(0);
    expect(messagesWaiting(phone)).toBe(1);
    const expired = kamailioCounter(pusher, "messages_expired");
    // Seven days pass for this row: its expiry moves into the past (the timer sweeps every few seconds).
    sql(`UPDATE pusher_messages SET expires = ${Math.floor(Date.now() / 1000) - 1} WHERE aor = '${phone.aor}'`);
    await pusher.waitFor(
      new RegExp(`message expired aor=${phone.aor} id=\\S+: not delivered within messages.retentionDays`),
      15000,
    );
    expect(kamailioCounter(pusher, "messages_expired") - expired).toBe(1);
    expect(messagesWaiting(phone)).toBe(0);
    expect(sql(`SELECT COUNT(*) FROM pusher_messages WHERE aor = '${phone.aor}'`).trim()).toBe("0");
  });

  it("survives a crash of Kamailio between store and delivery", async () => {
    const phone = await Phone.create();
    const alertToken = apns.newDevice(APP_ID, "alert");
    await registerPhone(pusher, phone, "", { uriParams: rfc8599AppleParams(alertToken) });
    const callId = sharedCallId(phone);
    const sent = await call(pusher, phone, "send-messages-stored.xml", { callId });
    expect(sent.code, sent.output).toBe(0);
    // Killed right after the 202s: the rows were on disk before them.
    await pusher.crashKamailio();
    pusher = await pusher.restart();
    await pusher.waitFor(/stored messages loaded from the database: \d+ messages/);
    expect(messagesWaiting(phone)).toBe(2);
    const received = await registerAndAnswer(pusher, phone, "", callId, {
      scenario: "register-and-receive-two-messages.xml",
      uriParams: rfc8599AppleParams(alertToken),
    });
    expect(received.code, received.output + pusher.output().slice(-3000)).toBe(0);
    await pusher.waitFor(
      new RegExp(`message delivered aor=${phone.aor} id=\\S+[\\s\\S]*message delivered aor=${phone.aor} id=`),
      5000,
    );
    expect(messagesWaiting(phone)).toBe(0);
  }, 60000);
});

describe("a message push answered that the token is dead", () => {
  it("removes the device record, as a call push's answer does: APNs 410 Unregistered, BadDeviceToken at both APNs hosts, FCM UNREGISTERED", async () => {
    const unregistered = apns.newDevice(APP_ID, "alert");
    apns.replyFor(unregistered, { status: 410, reason: "Unregistered" });
    const neverIssued = randomBytes(32).toString("hex"); // no APNs environment knows it
    const fcmToken = `fcm-${randomBytes(8).toString("hex")}:APA91b-message-unregistered`;
    fcm.replyFor(fcmToken, FCM_UNREGISTERED);
    const phones = [
      await storeMessageFor(rfc8599AppleParams(unregistered)),
      await storeMessageFor(rfc8599AppleParams(neverIssued)),
      await storeMessageFor(fcmParams(fcmToken)),
    ];
    await waitUntil(
      () => phones.every(({ phone }) => devicesOf(phone).length === 0),
      10000,
      () => `the three records removed; pusher output:\n${pusher.output().slice(-4000)}`,
      250,
    );
    expect(apns.requestsFor(unregistered).map((push) => `${push.headers["apns-push-type"]} ${push.status}`)).toEqual([
      "alert 410",
    ]);
    expect(apns.requestsFor(neverIssued).map((push) => `${push.environment} ${push.status}`)).toEqual([
      "production 400",
      "sandbox 400",
    ]);
    expect(fcm.requestsFor(fcmToken).map((push) => `${push.body.message.data.event} ${push.status}`)).toEqual([
      "message 404",
    ]);
    for (const { phone } of phones)
      await pusher.waitFor(new RegExp(`device removed aor=${phone.aor} .*token is dead`), 3000);
    // The messages still wait for a phone of the AOR that registers again.
    for (const { phone } of phones) expect(messagesWaiting(phone)).toBe(1);
  });

  it("drops only the dead alert token of Linphone's two-token binding (410 Unregistered, BadDeviceToken at both hosts): the device keeps its VoIP token, in memory and on disk", async () => {
    const unregistered = apns.newDevice(APP_ID, "alert");
    apns.replyFor(unregistered, { status: 410, reason: "Unregistered" });
    const neverIssued = randomBytes(32).toString("hex"); // no APNs environment knows it
    const cases = [
      { alertToken: unregistered, voipToken: apns.newDevice(APP_ID, "voip") },
      { alertToken: neverIssued, voipToken: apns.newDevice(APP_ID, "voip") },
    ];
    const phones: { phone: Phone; callId: string }[] = [];
    for (const { alertToken, voipToken } of cases)
      phones.push(await storeMessageFor(linphoneTwoTokenParams(alertToken, voipToken)));
    for (const { phone } of phones)
      await pusher.waitFor(new RegExp(`alert token dropped aor=${phone.aor} .*dead`), 10000);
    expect(apns.requestsFor(unregistered).map((push) => `${push.headers["apns-push-type"]} ${push.status}`)).toEqual([
      "alert 410",
    ]);
    expect(apns.requestsFor(neverIssued).map((push) => `${push.environment} ${push.status}`)).toEqual([
      "production 400",
      "sandbox 400",
    ]);
    const index = pusher.rpc("htable.dump", "pusher_tokens");
    phones.forEach(({ phone }, i) => {
      const { alertToken, voipToken } = cases[i];
      expect(devicesOf(phone).map((device) => [device.token, device.alertToken])).toEqual([[voipToken, undefined]]);
      // (its instance is its Contact URI, which holds both tokens: no +sip.instance)
      const row = JSON.parse(sql(`SELECT devices FROM pusher_devices WHERE aor = '${phone.aor}'`)) as {
        [instance: string]: ListedDevice;
      };
      expect(Object.values(row).map((record) => [record.token, record.alertToken])).toEqual([[voipToken, undefined]]);
      expect(index).not.toContain(`name: apple:${alertToken}`);
      expect(index).toContain(`name: apple:${voipToken}`);
      expect(pusher.output()).not.toMatch(new RegExp(`device removed aor=${phone.aor} `));
      // Its message waits for the phone's next REGISTER.
      expect(messagesWaiting(phone)).toBe(1);
    });
  });

  it("keeps the device record when the refusal is about our request, not the token: DeviceTokenNotForTopic, a sandbox token registered as production, an FCM project we may not push to, a 410 older than the phone's REGISTER", async () => {
    const otherAppsToken = apns.newDevice("com.example.otherapp", "alert"); // our topic (APP_ID) does not fit it
    const sandboxToken = apns.newDevice(APP_ID, "alert", "sandbox"); // registered without apns.dev
    const reRegistered = apns.newDevice(APP_ID, "alert");
    // Apple's 410 onset is delayed: it can name a time before the phone's last REGISTER of that same token.
    apns.replyFor(reRegistered, { status: 410, reason: "Unregistered", timestamp: Date.now() - 3_600_000 });
    const foreignProjectToken = `fcm-${randomBytes(8).toString("hex")}:APA91b-message-foreign`;
    const notForTopic = await storeMessageFor(rfc8599AppleParams(otherAppsToken));
    const sandbox = await storeMessageFor(rfc8599AppleParams(sandboxToken));
    const olderThanRegister = await storeMessageFor(rfc8599AppleParams(reRegistered));
    const foreignProject = await storeMessageFor(fcmParams(foreignProjectToken, FOREIGN_FCM_PROJECT));
    for (const { phone, callId } of [notForTopic, olderThanRegister, foreignProject])
      await pusher.waitFor(new RegExp(`push failed call-id=${callId} aor=${phone.aor} `), 8000);
    await waitForPushes(apns, sandboxToken, 2, 8000, pusher);
    await pusher.waitFor(
      new RegExp(`device kept aor=${olderThanRegister.phone.aor} .*registered again after that`),
      3000,
    );
    await new Promise((done) => setTimeout(done, 300)); // Kamailio's log trails its htable

    expect(apns.requestsFor(otherAppsToken).map((push) => push.status)).toEqual([400]);
    expect(apns.requestsFor(sandboxToken).map((push) => `${push.environment} ${push.status}`)).toEqual([
      "production 400",
      "sandbox 200",
    ]);
    expect(apns.requestsFor(reRegistered).map((push) => push.status)).toEqual([410]);
    expect(fcm.requestsFor(foreignProjectToken).map((push) => `${push.project} ${push.status}`)).toEqual([
      `${FOREIGN_FCM_PROJECT} 403`,
    ]);
    for (const [{ phone }, token] of [
      [notForTopic, otherAppsToken],
      [sandbox, sandboxToken],
      [olderThanRegister, reRegistered],
      [foreignProject, foreignProjectToken],
    ] as const) {
      expect(devicesOf(phone).map((device) => device.token)).toEqual([token]);
      expect(pusher.output()).not.toMatch(new RegExp(`device removed aor=${phone.aor} `));
    }
  });
});
