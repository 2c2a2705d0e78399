// Issue 12 part 3, end to end (real Kamailio, sipp phones and callers, the real helper, a mock APNs as strict as
// Apple's: it knows which tokens are PushKit and which alert tokens, of which app and environment):
//   - a call-ended notice goes to an alert token only (Linphone's `:remote`), never as an alert push to a PushKit
//     token; a PushKit-only device gets none unless its app sets apple.callEndedVoipPush, then a VoIP push;
//   - a sandbox (`apns.dev`) binding goes to the sandbox host; a BadDeviceToken our host choice can explain
//     never drops the record, one from both hosts does;
//   - DeviceTokenNotForTopic (our topic does not fit the token) never removes a record.
// APNs in token mode, so one key serves every app (bundle) below.
import { execFileSync } from "node:child_process";
import { generateKeyPairSync, randomBytes, randomUUID } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { ListedDevice } from "../../src/cli/devices-command";
import { MockApns, RecordedRequest } from "../support/mock-apns";
import { MockFcm } from "../support/mock-fcm";
import { PusherProcess, ROOT, startPusher, TEST_CA_DIR } from "../support/pusher-process";
import { SipCaller } from "../support/sip-caller";
import { runSipp } from "../support/sipp";
import { Phone, SECOND_DOMAIN } from "../support/topology";
import { call, registerAndAnswer, registerPhone, sharedCallId, waitForPushes } from "../support/wake-fixture";
import { waitUntil } from "../support/wait-until";

/** A Kazoo app (legacy params: app-id, pn-tok, pn-type): its phones register only a PushKit token. */
const KAZOO_APP = "com.example.kazoophone";
/** A Kazoo app that reports a call-ended VoIP push to CallKit and ends it at once (apple.callEndedVoipPush). */
const VOIP_ENDED_APP = "com.example.endsvoip";
/** A Linphone app (RFC 8599 params with Linphone's two-token pn-prid and apns.dev). */
const LINPHONE_BUNDLE = "org.example.linphone";
const LINPHONE_UA = "LinphoneiOS/5.2.0 (iPhone) LinphoneSDK/5.3.0";
const KEY_ID = "CEKEY00001";
const TEAM_ID = "CETEAM0001";
/** An Android app (Kazoo params, pn-type=firebase) on the mock FCM. */
const ANDROID_APP = "com.example.endedandroid";
const TIMERS = { inviteFirstMs: 1000, pushWaitMs: 3000, afterWakeMs: 5000 };

let work: string;
let apns: MockApns;
let fcm: MockFcm;
let pusher: PusherProcess;

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), "call-ended-"));
  const key = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
  const keyFile = join(work, `AuthKey_${KEY_ID}.p8`);
  writeFileSync(keyFile, key.privateKey.export({ type: "pkcs8", format: "pem" }));
  apns = await MockApns.start({
    caDir: TEST_CA_DIR,
    auth: "token",
    signingKeys: [{ keyId: KEY_ID, teamId: TEAM_ID, publicKey: key.publicKey }],
  });
  const credentials = { keyFile, keyId: KEY_ID, teamId: TEAM_ID };
  fcm = await MockFcm.start({ caDir: TEST_CA_DIR });
  pusher = await startPusher({
    timers: TIMERS,
    userAgents: [{ name: "MyMobileApp", regex: "^MyMobileApp" }],
    apps: {
      [KAZOO_APP]: { apple: apns.appleConfig(credentials) },
      [VOIP_ENDED_APP]: { apple: apns.appleConfig({ ...credentials, callEndedVoipPush: true }) },
      [LINPHONE_BUNDLE]: { apple: apns.appleConfig(credentials) },
      [ANDROID_APP]: {
        firebase: { serviceAccountFile: fcm.createServiceAccount(work, "ended-project"), host: fcm.host },
      },
    },
  });
}, 30000);

afterAll(async () => {
  await pusher?.stop();
  await Promise.all([apns?.close(), fcm?.close()]);
  if (work) rmSync(work, { recursive: true, force: true });
});

/** Where this test's part of pusher start's output begins. */
let logStart = 0;

beforeEach(() => {
  apns.requests.length = 0;
  logStart = pusher.output().length;
});

/** What pusher start printed during this test. */
function testLog(): string {
  return pusher.output().slice(logStart);
}

/** Kazoo's params (after the Contact URI) for `token` of `app`, with the device's instance. */
function kazooParams(app: string, token: string): string {
  return `;+sip.instance="<urn:uuid:${randomUUID()}>";app-id=${app};pn-tok=${token};pn-type=apple`;
}

/** A Linphone iPhone: RFC 8599 params inside its Contact URI, as Linphone sends them. */
interface LinphoneBinding {
  /** Header params (the instance). */
  params: string;
  uriParams: string;
  userAgent: string;
}

/** Linphone's two-token binding: `<alert>:remote&<voip>:voip`, pn-param `<team>.<bundle>.remote&voip`. */
function linphoneTwoTokens(alertToken: string, voipToken: string): LinphoneBinding {
  return {
    params: `;+sip.instance="<urn:uuid:${randomUUID()}>"`,
    uriParams: `;pn-provider=apns;pn-prid=${alertToken}:remote&${voipToken}:voip;pn-param=${TEAM_ID}.${LINPHONE_BUNDLE}.remote&voip`,
    userAgent: LINPHONE_UA,
  };
}

/** An RFC 8599 binding of an alert token only (pn-param without `.voip`): calls and notices both come as alerts. */
function linphoneAlertOnly(alertToken: string): LinphoneBinding {
  return {
    params: `;+sip.instance="<urn:uuid:${randomUUID()}>"`,
    uriParams: `;pn-provider=apns;pn-prid=${alertToken};pn-param=${TEAM_ID}.${LINPHONE_BUNDLE}`,
    userAgent: LINPHONE_UA,
  };
}

/** Linphone's one-token VoIP binding, `apns.dev` for a development build. */
function linphoneVoip(token: string, provider: "apns" | "apns.dev"): LinphoneBinding {
  return {
    params: `;+sip.instance="<urn:uuid:${randomUUID()}>"`,
    uriParams: `;pn-provider=${provider};pn-prid=${token};pn-param=${TEAM_ID}.${LINPHONE_BUNDLE}.voip`,
    userAgent: LINPHONE_UA,
  };
}

function registerLinphone(phone: Phone, binding: LinphoneBinding): ReturnType<typeof registerPhone> {
  return registerPhone(pusher, phone, binding.params, { uriParams: binding.uriParams, userAgent: binding.userAgent });
}

/** The AOR's device records as `pusher devices --json --show-tokens` lists them (what a call would push). */
function devicesOf(phone: Phone): ListedDevice[] {
  const out = execFileSync(
    process.execPath,
    [join(ROOT, "dist", "cli.js"), "--config", pusher.configPath, "devices", phone.aor, "--json", "--show-tokens"],
    { encoding: "utf8" },
  );
  return JSON.parse(out) as ListedDevice[];
}

function tokensOf(phone: Phone): string[] {
  return devicesOf(phone).flatMap((device) => [device.token, ...(device.alertToken ? [device.alertToken] : [])]);
}

/** Every token `phone`'s AOR had, still there, and no device of it removed. */
function expectTokensKept(phone: Phone, tokens: string[]): void {
  expect(tokensOf(phone).sort()).toEqual([...tokens].sort());
  expect(testLog()).not.toMatch(new RegExp(`device removed aor=${phone.aor}`));
}

/** Waits until Kamailio handled APNs' DeviceTokenNotForTopic for a push of `callId` to `phone` (our request's fault). */
async function notForTopicHandled(callId: string, phone: Phone): Promise<void> {
  await pusher.waitFor(
    new RegExp(`push failed call-id=${callId} aor=${phone.aor} code=PUSHER_ERR_APNS_TOKEN_NOT_FOR_TOPIC`),
    5000,
  );
  await new Promise((done) => setTimeout(done, 300)); // Kamailio's log trails its htable
}

function body(request: RecordedRequest): Record<string, unknown> {
  return request.body as Record<string, unknown>;
}

/** No push of this test was refused (DeviceTokenNotForTopic above all), by the mock or in the helper's log. */
function expectNoTopicRefusal(): void {
  expect(
    apns.requests
      .filter((request) => request.status !== 200)
      .map((request) => `${request.status} ${request.headers["apns-topic"]}`),
  ).toEqual([]);
  expect(testLog()).not.toMatch(/DeviceTokenNotForTopic|TOKEN_NOT_FOR_TOPIC|device removed/);
}

/**
 * Waits until the plugin has requested the call-ended pushes of `callId` (all of a call's devices at once: one
 * log line each), then until APNs has answered every push of the call, and a little longer for any straggler.
 */
async function callEndedPushesOf(callId: string): Promise<void> {
  await pusher.waitFor(new RegExp(`call-ended push \\(\\S+\\) requested call-id=${callId} `), 5000);
  await new Promise((done) => setTimeout(done, 200));
  const ofCall = () => apns.requests.filter((request) => body(request)["call-id"] === callId);
  await waitUntil(
    () => ofCall().every((request) => request.status !== null),
    5000,
    `APNs answers to the pushes of ${callId}`,
  );
  // The helper's result of each (what could remove a record) has reached Kamailio once the helper logged it, and
  // Kamailio handled it a moment later.
  const outcomes = () =>
    pusher
      .output()
      .split("\n")
      .filter((line) => line.includes(`push call-id=${JSON.stringify(callId)}`)).length;
  await waitUntil(() => outcomes() >= ofCall().length, 5000, `the helper's results for the pushes of ${callId}`);
  await new Promise((done) => setTimeout(done, 200));
}

describe("call-ended pushes to Apple devices", () => {
  it("cancelled: the PushKit-only (Kazoo) device gets no call-ended push and keeps its record; the Linphone device gets the call as VoIP and the notice as an alert at its alert token; an alert-only device gets both as alerts", async () => {
    // All on TCP, their connections closed: pushed at once.
    const kazoo = await Phone.create({ transport: "tcp" });
    const linphone = await Phone.create({ user: kazoo.user, transport: "tcp" });
    const alertOnly = await Phone.create({ user: kazoo.user, transport: "tcp" });
    const kazooToken = apns.newDevice(KAZOO_APP, "voip");
    const [alertToken, voipToken] = [apns.newDevice(LINPHONE_BUNDLE, "alert"), apns.newDevice(LINPHONE_BUNDLE, "voip")];
    const onlyAlertToken = apns.newDevice(LINPHONE_BUNDLE, "alert");
    await registerPhone(pusher, kazoo, kazooParams(KAZOO_APP, kazooToken));
    await registerLinphone(linphone, linphoneTwoTokens(alertToken, voipToken));
    await registerLinphone(alertOnly, linphoneAlertOnly(onlyAlertToken));

    const callId = sharedCallId(kazoo);
    const caller = await call(pusher, kazoo, "call-cancelled.xml", { callId });
    expect(caller.code, caller.output).toBe(0);
    await callEndedPushesOf(callId); // sent after the 487

    const [kazooCall] = apns.requestsFor(kazooToken);
    expect(apns.requestsFor(kazooToken)).toHaveLength(1);
    expect(kazooCall.headers["apns-push-type"]).toBe("voip");
    expect(kazooCall.headers["apns-topic"]).toBe(`${KAZOO_APP}.voip`);
    const [linphoneCall] = apns.requestsFor(voipToken);
    expect(apns.requestsFor(voipToken)).toHaveLength(1);
    expect(linphoneCall.headers["apns-push-type"]).toBe("voip");
    expect(linphoneCall.headers["apns-topic"]).toBe(`${LINPHONE_BUNDLE}.voip`);
    const [notice] = apns.requestsFor(alertToken);
    expect(apns.requestsFor(alertToken)).toHaveLength(1);
    expect(notice.headers["apns-push-type"]).toBe("alert");
    expect(notice.headers["apns-topic"]).toBe(LINPHONE_BUNDLE);
    expect(body(linphoneCall)["call-id"]).toBe(callId);
    expect(body(notice)["call-id"]).toBe(callId);
    expect(body(notice).event).toBe("call-cancelled");
    const [alertCall, alertNotice] = apns.requestsFor(onlyAlertToken);
    expect(apns.requestsFor(onlyAlertToken)).toHaveLength(2);
    expect(
      [alertCall, alertNotice].map((push) => `${push.headers["apns-push-type"]} ${push.headers["apns-topic"]}`),
    ).toEqual([`alert ${LINPHONE_BUNDLE}`, `alert ${LINPHONE_BUNDLE}`]);
    expect(body(alertCall).event).toBeUndefined();
    expect(body(alertNotice).event).toBe("call-cancelled");
    expect(body(alertNotice)["call-id"]).toBe(callId);
    expectNoTopicRefusal();
    expect(tokensOf(kazoo).sort()).toEqual([kazooToken, voipToken, alertToken, onlyAlertToken].sort());
  });

  it("answered elsewhere: the PushKit-only device gets no notice and keeps its record, the Linphone device's alert token is told, the answering phone nothing", async () => {
    // The Kazoo phone asleep on TCP, the Linphone one on a closed UDP port, the one that answers behind NAT.
    const kazoo = await Phone.create({ transport: "tcp" });
    const linphone = await Phone.create({ user: kazoo.user });
    const answering = await Phone.create({ user: kazoo.user, nat: true });
    const kazooToken = apns.newDevice(KAZOO_APP, "voip");
    const [alertToken, voipToken] = [apns.newDevice(LINPHONE_BUNDLE, "alert"), apns.newDevice(LINPHONE_BUNDLE, "voip")];
    // The answering phone has an alert token too, so "it is told nothing" below can fail.
    const [answeringToken, answeringAlert] = [apns.newDevice(KAZOO_APP, "voip"), apns.newDevice(KAZOO_APP, "alert")];
    const answeringParams = kazooParams(KAZOO_APP, `${answeringAlert}:remote&${answeringToken}:voip`);
    await registerPhone(pusher, kazoo, kazooParams(KAZOO_APP, kazooToken));
    await registerLinphone(linphone, linphoneTwoTokens(alertToken, voipToken));
    await registerPhone(pusher, answering, answeringParams);

    const callId = sharedCallId(answering);
    const caller = call(pusher, answering, "call-answered.xml", { callId });
    await waitForPushes(apns, answeringToken, 1, 8000, pusher);
    const answered = await registerAndAnswer(pusher, await answering.newSocket(), answeringParams, callId);
    expect(answered.code, answered.output).toBe(0);
    const result = await caller;
    expect(result.code, result.output).toBe(0);
    await callEndedPushesOf(callId);

    expect(apns.requestsFor(kazooToken)).toHaveLength(1);
    expect(apns.requestsFor(voipToken)).toHaveLength(1);
    expect(apns.requestsFor(answeringToken)).toHaveLength(1);
    expect(apns.requestsFor(answeringAlert)).toHaveLength(0);
    const [notice] = apns.requestsFor(alertToken);
    expect(apns.requestsFor(alertToken)).toHaveLength(1);
    expect(notice.headers["apns-push-type"]).toBe("alert");
    expect(notice.headers["apns-topic"]).toBe(LINPHONE_BUNDLE);
    expect(body(notice)["call-id"]).toBe(callId);
    expect(body(notice).event).toBe("answered-elsewhere");
    expectNoTopicRefusal();
    expect(tokensOf(kazoo)).toContain(kazooToken);
    expect(tokensOf(kazoo)).toHaveLength(5);
  });

  it("with apple.callEndedVoipPush, a PushKit-only device gets the notice as a VoIP push (topic <bundle>.voip, same call-id, `event`), accepted by APNs", async () => {
    const phone = await Phone.create({ transport: "tcp" });
    const token = apns.newDevice(VOIP_ENDED_APP, "voip");
    await registerPhone(pusher, phone, kazooParams(VOIP_ENDED_APP, token));
    const callId = sharedCallId(phone);
    const caller = await call(pusher, phone, "call-cancelled.xml", { callId });
    expect(caller.code, caller.output).toBe(0);
    await callEndedPushesOf(callId);

    const [callPush, notice] = apns.requestsFor(token);
    expect(apns.requestsFor(token)).toHaveLength(2);
    expect(body(callPush).event).toBeUndefined();
    expect(notice.headers["apns-push-type"]).toBe("voip");
    expect(notice.headers["apns-topic"]).toBe(`${VOIP_ENDED_APP}.voip`);
    expect(body(callPush)["call-id"]).toBe(callId);
    expect(body(notice)["call-id"]).toBe(callId);
    expect(body(notice).event).toBe("call-cancelled");
    expect(notice.status).toBe(200);
    expect(tokensOf(phone)).toEqual([token]);
  });
});

describe("APNs environments", () => {
  it("pushes a pn-provider=apns.dev binding to the sandbox host, never to production; the phone wakes and keeps its record", async () => {
    const phone = await Phone.create({ domain: SECOND_DOMAIN, transport: "tcp" });
    const token = apns.newDevice(LINPHONE_BUNDLE, "voip", "sandbox");
    const binding = linphoneVoip(token, "apns.dev");
    await registerLinphone(phone, binding);
    const callId = sharedCallId(phone);
    const caller = call(pusher, phone, "call-answered.xml", { callId });
    await waitForPushes(apns, token, 1, 8000, pusher);

    const answered = await registerAndAnswer(pusher, await phone.newSocket(), binding.params, callId, {
      uriParams: binding.uriParams,
      userAgent: binding.userAgent,
    });
    expect(answered.code, answered.output).toBe(0);
    const result = await caller;
    expect(result.code, result.output).toBe(0);
    expect(apns.requestsFor(token).map((request) => `${request.environment} ${request.status}`)).toEqual([
      "sandbox 200",
    ]);
    expect(tokensOf(phone)).toEqual([token]);
  });

  it("delivers a sandbox token registered without apns.dev through the sandbox after production's BadDeviceToken: the call rings, the record stays", async () => {
    const phone = await Phone.create({ domain: SECOND_DOMAIN, transport: "tcp" });
    const token = apns.newDevice(LINPHONE_BUNDLE, "voip", "sandbox");
    const binding = linphoneVoip(token, "apns");
    await registerLinphone(phone, binding);
    const callId = sharedCallId(phone);
    const caller = call(pusher, phone, "call-answered.xml", { callId });
    await waitForPushes(apns, token, 2, 8000, pusher);
    expect(apns.requestsFor(token).map((request) => `${request.environment} ${request.status}`)).toEqual([
      "production 400",
      "sandbox 200",
    ]);

    const answered = await registerAndAnswer(pusher, await phone.newSocket(), binding.params, callId, {
      uriParams: binding.uriParams,
      userAgent: binding.userAgent,
    });
    expect(answered.code, answered.output).toBe(0);
    const result = await caller;
    expect(result.code, result.output).toBe(0);
    expect(tokensOf(phone)).toEqual([token]);
    expect(testLog()).toMatch(/is a sandbox token registered as production/);
  });

  it("drops a token both hosts refuse with BadDeviceToken, and answers the caller at once", async () => {
    const phone = await Phone.create({ domain: SECOND_DOMAIN, transport: "tcp" });
    const token = randomBytes(32).toString("hex"); // no APNs environment ever issued it
    await registerLinphone(phone, linphoneVoip(token, "apns"));
    expect(tokensOf(phone)).toEqual([token]);
    const caller = await call(pusher, phone, "call-unavailable.xml");
    expect(caller.code, caller.output).toBe(0);
    expect(caller.endedAtMs - caller.startedAtMs).toBeLessThan(TIMERS.pushWaitMs / 2);
    expect(apns.requestsFor(token).map((request) => `${request.environment} ${request.status}`)).toEqual([
      "production 400",
      "sandbox 400",
    ]);
    expect(devicesOf(phone)).toEqual([]);
    expect(testLog()).toMatch(new RegExp(`device removed aor=${phone.aor} .*token is dead`));
  });
});

describe("a push refused as not for its topic", () => {
  it("keeps the record (DeviceTokenNotForTopic is a configuration error, logged as one), so the next call pushes the phone again", async () => {
    // The phone's app id says KAZOO_APP, but the token is another app's: our topic does not fit it.
    const phone = await Phone.create({ transport: "tcp" });
    const token = apns.newDevice("com.example.otherapp", "voip");
    await registerPhone(pusher, phone, kazooParams(KAZOO_APP, token));
    for (let calls = 1; calls <= 2; calls++) {
      const caller = await call(pusher, phone, "call-unavailable.xml");
      expect(caller.code, caller.output).toBe(0);
      expect(caller.endedAtMs - caller.startedAtMs).toBeLessThan(TIMERS.pushWaitMs / 2); // every push failed: no wait
      expect(apns.requestsFor(token).map((request) => request.status)).toEqual(Array(calls).fill(400));
      expect(tokensOf(phone)).toEqual([token]);
    }
    expect(testLog()).toMatch(
      new RegExp(`configuration error: token \\S+ of app ${KAZOO_APP} is not for topic ${KAZOO_APP}\\.voip`),
    );
    expect(testLog()).not.toMatch(new RegExp(`device removed aor=${phone.aor}`));
  });
});

describe("a dead token reported by a call-ended push", () => {
  it("drops only the alert token APNs answers 410 Unregistered for the Linphone device's call-ended notice: the device keeps its VoIP token, and the next call rings it", async () => {
    const phone = await Phone.create({ transport: "tcp" });
    const [alertToken, voipToken] = [apns.newDevice(LINPHONE_BUNDLE, "alert"), apns.newDevice(LINPHONE_BUNDLE, "voip")];
    apns.replyFor(alertToken, { status: 410, reason: "Unregistered" });
    await registerLinphone(phone, linphoneTwoTokens(alertToken, voipToken));
    expect(tokensOf(phone).sort()).toEqual([alertToken, voipToken].sort());
    const callId = sharedCallId(phone);
    const caller = await call(pusher, phone, "call-cancelled.xml", { callId });
    expect(caller.code, caller.output).toBe(0);
    await pusher.waitFor(new RegExp(`alert token dropped aor=${phone.aor} .*dead`), 10000);
    expect(apns.requestsFor(voipToken).map((push) => `${push.headers["apns-push-type"]} ${push.status}`)).toEqual([
      "voip 200",
    ]);
    expect(apns.requestsFor(alertToken).map((push) => `${body(push).event} ${push.status}`)).toEqual([
      "call-cancelled 410",
    ]);
    const [device] = devicesOf(phone);
    expect(devicesOf(phone)).toHaveLength(1);
    expect(device.token).toBe(voipToken);
    expect(device.alertToken).toBeUndefined();
    // Its index entry went with it (pusher_tokens); the VoIP token's stays.
    const index = pusher.rpc("htable.dump", "pusher_tokens");
    expect(index).not.toContain(`name: apple:${alertToken}`);
    expect(index).toContain(`name: apple:${voipToken}`);
    expect(testLog()).not.toMatch(new RegExp(`device removed aor=${phone.aor} `));
    // The phone still gets calls at its VoIP token.
    const next = await call(pusher, phone, "call-cancelled.xml");
    expect(next.code, next.output).toBe(0);
    await waitForPushes(apns, voipToken, 2, 5000, pusher);
    expect(apns.requestsFor(alertToken)).toHaveLength(1);
  });

  it("removes the Android device whose call-ended push FCM answers UNREGISTERED (the call push before it was delivered)", async () => {
    const phone = await Phone.create({ transport: "tcp" });
    const token = `fcm-${randomBytes(8).toString("hex")}:APA91b-call-ended`;
    fcm.replyFor(
      token,
      { status: 200 },
      { status: 404, errorStatus: "NOT_FOUND", errorCode: "UNREGISTERED", message: "Requested entity was not found." },
    );
    await registerPhone(
      pusher,
      phone,
      `;+sip.instance="<urn:uuid:${randomUUID()}>";app-id=${ANDROID_APP};pn-tok=${token};pn-type=firebase`,
    );
    expect(tokensOf(phone)).toEqual([token]);
    const caller = await call(pusher, phone, "call-cancelled.xml");
    expect(caller.code, caller.output).toBe(0);
    await waitUntil(
      () => devicesOf(phone).length === 0,
      10000,
      () => `the record removed; pusher output:\n${testLog().slice(-4000)}`,
      250,
    );
    expect(fcm.requestsFor(token).map((push) => `${push.body.message.data.event ?? "call"} ${push.status}`)).toEqual([
      "call 200",
      "call-cancelled 404",
    ]);
  });

  it("keeps the device when APNs refuses its call-ended alert push as not for its topic (our request, not the token)", async () => {
    const phone = await Phone.create({ transport: "tcp" });
    // The alert token is another app's: the notice's topic (LINPHONE_BUNDLE) does not fit it.
    const [alertToken, voipToken] = [
      apns.newDevice("com.example.otherapp", "alert"),
      apns.newDevice(LINPHONE_BUNDLE, "voip"),
    ];
    await registerLinphone(phone, linphoneTwoTokens(alertToken, voipToken));
    const callId = sharedCallId(phone);
    const caller = await call(pusher, phone, "call-cancelled.xml", { callId });
    expect(caller.code, caller.output).toBe(0);
    await callEndedPushesOf(callId);
    await notForTopicHandled(callId, phone);
    expect(apns.requestsFor(alertToken).map((push) => `${body(push).event} ${push.status}`)).toEqual([
      "call-cancelled 400",
    ]);
    expectTokensKept(phone, [alertToken, voipToken]);
  });
});

describe("a call that ends unanswered", () => {
  it("tells the pushed phones it is over, as a cancel does: t2 passes, the caller gets 480, the Linphone device gets call-cancelled at its alert token, the PushKit-only one nothing", async () => {
    const linphone = await Phone.create({ transport: "tcp" });
    const kazoo = await Phone.create({ user: linphone.user, transport: "tcp" });
    const [alertToken, voipToken] = [apns.newDevice(LINPHONE_BUNDLE, "alert"), apns.newDevice(LINPHONE_BUNDLE, "voip")];
    const kazooToken = apns.newDevice(KAZOO_APP, "voip");
    await registerLinphone(linphone, linphoneTwoTokens(alertToken, voipToken));
    await registerPhone(pusher, kazoo, kazooParams(KAZOO_APP, kazooToken));
    const callId = sharedCallId(linphone);
    const caller = await call(pusher, linphone, "call-unavailable.xml", { callId });
    expect(caller.code, caller.output).toBe(0);
    expect(caller.endedAtMs - caller.startedAtMs).toBeGreaterThanOrEqual(TIMERS.pushWaitMs - 200);
    await callEndedPushesOf(callId);

    expect(apns.requestsFor(voipToken)).toHaveLength(1);
    expect(apns.requestsFor(kazooToken)).toHaveLength(1);
    const [notice] = apns.requestsFor(alertToken);
    expect(apns.requestsFor(alertToken)).toHaveLength(1);
    expect(notice.headers["apns-push-type"]).toBe("alert");
    expect(notice.headers["apns-topic"]).toBe(LINPHONE_BUNDLE);
    expect(body(notice)["call-id"]).toBe(callId);
    expect(body(notice).event).toBe("call-cancelled");
    expect(notice.receivedAtMs - caller.startedAtMs).toBeGreaterThanOrEqual(TIMERS.pushWaitMs - 200);
    expectNoTopicRefusal();
    expect(tokensOf(linphone)).toHaveLength(3);
  });

  it("tells the pushed phones without a branch when the woken phone rings past t3 without answering: the Linphone device gets call-cancelled, the ringing phone tm's CANCEL", async () => {
    const kazoo = await Phone.create({ transport: "tcp" });
    const linphone = await Phone.create({ user: kazoo.user, transport: "tcp" });
    const kazooToken = apns.newDevice(KAZOO_APP, "voip");
    const [alertToken, voipToken] = [apns.newDevice(LINPHONE_BUNDLE, "alert"), apns.newDevice(LINPHONE_BUNDLE, "voip")];
    const kazooContact = kazooParams(KAZOO_APP, kazooToken);
    await registerPhone(pusher, kazoo, kazooContact);
    await registerLinphone(linphone, linphoneTwoTokens(alertToken, voipToken));
    const callId = sharedCallId(kazoo);
    const caller = await SipCaller.open(pusher.sipPort);
    try {
      caller.call(kazoo.user, kazoo.domain, callId);
      await waitForPushes(apns, kazooToken, 1, 8000, pusher);
      const ringing = registerAndAnswer(pusher, await kazoo.newSocket(), kazooContact, callId, {
        scenario: "register-and-ring.xml",
      });
      await caller.inviteAnswer(180);
      const ringingAtMs = Date.now();
      await caller.waitFor((answer) => answer.method === "INVITE" && answer.status >= 300, TIMERS.afterWakeMs + 5000);
      expect(Date.now() - ringingAtMs).toBeGreaterThanOrEqual(TIMERS.afterWakeMs - 1000);
      const phoneRun = await ringing;
      expect(phoneRun.code, phoneRun.output).toBe(0);
      await callEndedPushesOf(callId);
    } finally {
      caller.close();
    }

    expect(apns.requestsFor(kazooToken)).toHaveLength(1);
    expect(apns.requestsFor(voipToken)).toHaveLength(1);
    const [notice] = apns.requestsFor(alertToken);
    expect(apns.requestsFor(alertToken)).toHaveLength(1);
    expect(notice.headers["apns-push-type"]).toBe("alert");
    expect(body(notice)["call-id"]).toBe(callId);
    expect(body(notice).event).toBe("call-cancelled");
    expectNoTopicRefusal();
  });
});

describe("a dead token reported for a call push after its call ended", () => {
  /** Where in pusher start's output `pattern` first matches, -1 when it does not. */
  /** Where `pattern` first shows in Kamailio's log, once it does (the log trails the htable the tests poll). */
  async function logIndex(pattern: RegExp): Promise<number> {
    await pusher.waitFor(pattern, 5000);
    return pusher.output().search(pattern);
  }

  it("removes the PushKit-only device whose call push APNs answers 410 Unregistered only after the caller cancelled", async () => {
    // No call-ended push goes to a PushKit-only device: only the call push's own result can remove it.
    const phone = await Phone.create({ transport: "tcp" });
    const token = apns.newDevice(KAZOO_APP, "voip");
    apns.replyFor(token, { status: 410, reason: "Unregistered", afterMs: 1500 });
    await registerPhone(pusher, phone, kazooParams(KAZOO_APP, token));
    const callId = sharedCallId(phone);
    const caller = await call(pusher, phone, "call-cancelled.xml", { callId });
    expect(caller.code, caller.output).toBe(0);
    expect(apns.requestsFor(token).map((push) => push.status)).toEqual([null]); // APNs has not answered yet
    expect(tokensOf(phone)).toEqual([token]);
    await waitUntil(
      () => devicesOf(phone).length === 0,
      10000,
      () => `the record removed; pusher output:\n${testLog().slice(-4000)}`,
      250,
    );
    expect(apns.requestsFor(token).map((push) => `${body(push).event} ${push.status}`)).toEqual(["undefined 410"]);
    await pusher.waitFor(new RegExp(`device removed aor=${phone.aor} .*token is dead`), 3000);
    expect(await logIndex(new RegExp(`caller cancelled call-id=${callId} `))).toBeLessThan(
      await logIndex(new RegExp(`device removed aor=${phone.aor} `)),
    );
  });

  it("removes the Android device whose call push FCM answers UNREGISTERED only after another phone of the AOR answered", async () => {
    const answering = await Phone.create({ nat: true });
    const android = await Phone.create({ user: answering.user, transport: "tcp" });
    const answeringToken = apns.newDevice(KAZOO_APP, "voip");
    const answeringParams = kazooParams(KAZOO_APP, answeringToken);
    const token = `fcm-${randomBytes(8).toString("hex")}:APA91b-late-answer`;
    // The call push's answer comes late; the answered-elsewhere notice after it is delivered.
    fcm.replyFor(
      token,
      {
        status: 404,
        errorStatus: "NOT_FOUND",
        errorCode: "UNREGISTERED",
        message: "Requested entity was not found.",
        afterMs: 2000,
      },
      { status: 200 },
    );
    await registerPhone(pusher, answering, answeringParams);
    await registerPhone(
      pusher,
      android,
      `;+sip.instance="<urn:uuid:${randomUUID()}>";app-id=${ANDROID_APP};pn-tok=${token};pn-type=firebase`,
    );
    expect(tokensOf(answering).sort()).toEqual([answeringToken, token].sort());

    const callId = sharedCallId(answering);
    const caller = call(pusher, answering, "call-answered.xml", { callId });
    await waitForPushes(apns, answeringToken, 1, 8000, pusher);
    const answered = await registerAndAnswer(pusher, await answering.newSocket(), answeringParams, callId);
    expect(answered.code, answered.output).toBe(0);
    await pusher.waitFor(new RegExp(`call-ended push \\(answered-elsewhere\\) requested call-id=${callId} `), 5000);
    await waitUntil(
      () => !tokensOf(answering).includes(token),
      10000,
      () => `the Android record removed; pusher output:\n${testLog().slice(-4000)}`,
      250,
    );
    expect(fcm.requestsFor(token).map((push) => `${push.body.message.data.event ?? "call"} ${push.status}`)).toEqual([
      "call 404",
      "answered-elsewhere 200",
    ]);
    expect(
      await logIndex(new RegExp(`call-ended push \\(answered-elsewhere\\) requested call-id=${callId} `)),
    ).toBeLessThan(
      await logIndex(
        new RegExp(`device removed aor=${android.aor} instance=\\S+: the provider says its token is dead`),
      ),
    );
    expect(tokensOf(answering)).toEqual([answeringToken]);
    const result = await caller;
    expect(result.code, result.output).toBe(0);
  });

  it("keeps the devices when the late answer is our request's fault (DeviceTokenNotForTopic) or a 410 older than the phone's last REGISTER", async () => {
    const notForTopic = await Phone.create({ transport: "tcp" });
    const registeredAgain = await Phone.create({ user: notForTopic.user, transport: "tcp" });
    const [topicToken, oldToken] = [apns.newDevice(KAZOO_APP, "voip"), apns.newDevice(KAZOO_APP, "voip")];
    apns.replyFor(topicToken, { status: 400, reason: "DeviceTokenNotForTopic", afterMs: 1500 });
    // Apple found the token invalid an hour ago; the phone has registered it since.
    apns.replyFor(oldToken, { status: 410, reason: "Unregistered", timestamp: Date.now() - 3600_000, afterMs: 1500 });
    await registerPhone(pusher, notForTopic, kazooParams(KAZOO_APP, topicToken));
    await registerPhone(pusher, registeredAgain, kazooParams(KAZOO_APP, oldToken));
    const callId = sharedCallId(notForTopic);
    const caller = await call(pusher, notForTopic, "call-cancelled.xml", { callId });
    expect(caller.code, caller.output).toBe(0);
    expect(apns.requests.filter((push) => body(push)["call-id"] === callId && push.status !== null)).toEqual([]);
    // The kept 410 is logged once the plugin has weighed it (after the call ended: found through its pushes).
    await pusher.waitFor(
      new RegExp(
        `device kept aor=${registeredAgain.aor} instance=\\S+: APNs found its token invalid at .*registered again after that`,
      ),
      8000,
    );
    await notForTopicHandled(callId, notForTopic);
    expectTokensKept(notForTopic, [topicToken, oldToken]);
  });
});

describe("a pushed phone whose REGISTER fails", () => {
  it("ends the held call with 480 at once and tells the other pushed phones it is over (call-cancelled at the Linphone device's alert token); the failing phone gets nothing more", async () => {
    // The failing phone has an alert token too, so "it gets nothing more" below can fail.
    const failing = await Phone.create({ transport: "tcp" });
    const linphone = await Phone.create({ user: failing.user, transport: "tcp" });
    const [failingVoip, failingAlert] = [apns.newDevice(KAZOO_APP, "voip"), apns.newDevice(KAZOO_APP, "alert")];
    const failingParams = kazooParams(KAZOO_APP, `${failingAlert}:remote&${failingVoip}:voip`);
    const [alertToken, voipToken] = [apns.newDevice(LINPHONE_BUNDLE, "alert"), apns.newDevice(LINPHONE_BUNDLE, "voip")];
    await registerPhone(pusher, failing, failingParams);
    await registerLinphone(linphone, linphoneTwoTokens(alertToken, voipToken));
    const callId = sharedCallId(failing);
    const caller = call(pusher, failing, "call-unavailable.xml", { callId });
    await waitForPushes(apns, failingVoip, 1, 8000, pusher);
    await waitForPushes(apns, voipToken, 1, 8000, pusher);

    // q=5 is out of range: the registrar refuses the REGISTER with 400 (RFC 8599 §5.6.2: the call ends at once).
    const woken = await failing.newSocket();
    const startedAt = Date.now();
    const refused = await runSipp({
      scenario: "register.xml",
      remotePort: pusher.sipPort,
      localIp: woken.address,
      localPort: woken.port,
      transport: woken.transport,
      keys: woken.keys({ contact: woken.contact(`;q=5${failingParams}`) }),
    });
    expect(refused.code).not.toBe(0);
    const result = await caller;
    expect(result.code, result.output).toBe(0);
    expect(result.endedAtMs - startedAt).toBeLessThan(TIMERS.pushWaitMs / 2);
    await callEndedPushesOf(callId);

    const [notice] = apns.requestsFor(alertToken);
    expect(apns.requestsFor(alertToken)).toHaveLength(1);
    expect(notice.headers["apns-push-type"]).toBe("alert");
    expect(notice.headers["apns-topic"]).toBe(LINPHONE_BUNDLE);
    expect(body(notice)["call-id"]).toBe(callId);
    expect(body(notice).event).toBe("call-cancelled");
    expect(apns.requestsFor(voipToken)).toHaveLength(1);
    expect(apns.requestsFor(failingVoip)).toHaveLength(1);
    expect(apns.requestsFor(failingAlert)).toHaveLength(0);
    expectNoTopicRefusal();
  });
});
