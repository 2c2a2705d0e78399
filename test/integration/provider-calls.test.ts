// End to end with the new providers: real Kamailio (`pusher start`), real sipp phones and callers, the real
// helper, a mock FCM + OAuth, a mock APNs in token mode and a mock Web Push service, all on 127.0.0.1 over
// HTTP/2 + TLS. Devices use Kazoo-dialect contacts (pn-type=firebase for FCM, pn-type=apple for the token-auth
// APNs app) and RFC 8599's for Web Push (pn-provider=webpush, pn-prid = the subscription's endpoint). Phones are
// those of the test topology (test/support/topology.ts): a named domain, their own addresses, NAT, TCP.
import { generateKeyPairSync } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { decodeJwt } from "../../src/helper/jwt";
import { MockApns } from "../support/mock-apns";
import { MockFcm } from "../support/mock-fcm";
import { MockWebPush } from "../support/mock-webpush";
import { PusherProcess, startPusher, TEST_CA_DIR } from "../support/pusher-process";
import { featureCapsIn } from "../support/sipp";
import { Phone, SECOND_DOMAIN } from "../support/topology";
import { call, registerAndAnswer, registerPhone, sharedCallId } from "../support/wake-fixture";
import { waitUntil } from "../support/wait-until";
import { vapidPublicKey } from "../../src/helper/webpush-sender";

const ANDROID_APP = "com.example.android";
const IOS_APP = "com.example.tokenapp.prod";
/** The bundle id of IOS_APP (Kazoo's app id names the environment with `.prod`). */
const IOS_BUNDLE = "com.example.tokenapp";
const WEB_APP = "web.example.com";
const KEY_ID = "E2EKEY0001";
const TEAM_ID = "E2ETEAM001";
const USER_AGENT = "MyMobileApp 2.0";
const TIMERS = { inviteFirstMs: 1000, pushWaitMs: 4000, afterWakeMs: 5000 };

let work: string;
let fcm: MockFcm;
let apns: MockApns;
let webPush: MockWebPush;
let vapidKey: string;
let pusher: PusherProcess;
let counter = 0;

const fcmParams = (token: string) => `;app-id=${ANDROID_APP};pn-tok=${token};pn-type=firebase`;
const appleParams = (token: string) => `;app-id=${IOS_APP};pn-tok=${token};pn-type=apple`;

/** Push params after the Contact URI (Kazoo), or inside it (RFC 8599 Web Push: an endpoint URL is no header-param token). */
interface ContactParams {
  params?: string;
  uriParams?: string;
}
const kazoo = (params: string): ContactParams => ({ params });
const webPushParams = (endpoint: string): ContactParams => ({ uriParams: `;pn-provider=webpush;pn-prid=${endpoint}` });

/** Registers `phone` (asleep right after: its TCP connection closes, its NAT mapping is gone, or nothing listens). */
async function asleepPhone(phone: Phone, contact: ContactParams, scenario = "register.xml"): Promise<string> {
  const run = await registerPhone(pusher, phone, contact.params ?? "", {
    uriParams: contact.uriParams,
    userAgent: USER_AGENT,
    scenario,
  });
  return run.output;
}

/** What a test waits for, with the end of pusher start's output should it never come. */
const withOutput = (what: string) => () => `${what}; pusher output:\n${pusher.output().slice(-3000)}`;

/** The woken phone registers from a new socket and answers the call of `callId`. */
async function wakeAndAnswer(phone: Phone, contact: ContactParams, callId: string): Promise<void> {
  const answered = await registerAndAnswer(pusher, await phone.newSocket(), contact.params ?? "", callId, {
    uriParams: contact.uriParams,
    userAgent: USER_AGENT,
  });
  expect(answered.code, answered.output).toBe(0);
}

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), "provider-calls-"));
  const apple = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
  const keyFile = join(work, `AuthKey_${KEY_ID}.p8`);
  writeFileSync(keyFile, apple.privateKey.export({ type: "pkcs8", format: "pem" }));
  fcm = await MockFcm.start({ caDir: TEST_CA_DIR });
  webPush = await MockWebPush.start({ caDir: TEST_CA_DIR });
  const vapid = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
  const vapidKeyFile = join(work, "vapid.pem");
  writeFileSync(vapidKeyFile, vapid.privateKey.export({ type: "pkcs8", format: "pem" }));
  vapidKey = vapidPublicKey(vapid.privateKey);
  apns = await MockApns.start({
    caDir: TEST_CA_DIR,
    auth: "token",
    signingKeys: [{ keyId: KEY_ID, teamId: TEAM_ID, publicKey: apple.publicKey }],
  });
  pusher = await startPusher({
    timers: TIMERS,
    userAgents: [{ name: "MyMobileApp", regex: "^MyMobileApp" }],
    apps: {
      [ANDROID_APP]: {
        firebase: { serviceAccountFile: fcm.createServiceAccount(work, "e2e-project"), host: fcm.host },
      },
      [IOS_APP]: { apple: apns.appleConfig({ keyFile, keyId: KEY_ID, teamId: TEAM_ID }) },
      [WEB_APP]: {
        webpush: {
          vapidKeyFile,
          subject: "mailto:ops@example.com",
          publicKey: vapidKey,
          endpointHosts: [new URL(webPush.origin).host],
        },
      },
    },
  });
}, 30000);

afterAll(async () => {
  await pusher?.stop();
  await Promise.all([fcm?.close(), apns?.close(), webPush?.close()]);
  if (work) rmSync(work, { recursive: true, force: true });
});

describe("calls to phones woken through FCM, token-auth APNs and Web Push", () => {
  it("wakes an Android phone (on TCP, its connection closed) with an FCM HTTP v1 data message and hands it the call", async () => {
    const phone = await Phone.create({ transport: "tcp" });
    const token = `fcm${++counter}:APA91b-e2e-token`;
    await asleepPhone(phone, kazoo(fcmParams(token)));
    const callId = sharedCallId(phone);
    const caller = call(pusher, phone, "call-answered.xml", { callId });
    await waitUntil(() => fcm.requestsFor(token).length > 0, 8000, withOutput(`an FCM message for ${token}`));

    const [message] = fcm.requestsFor(token);
    expect(message.project).toBe("e2e-project");
    expect(message.headers.authorization).toMatch(/^Bearer ya29\./);
    expect(message.body.message.android.priority).toBe("HIGH");
    const ttlSeconds = Number(/^(\d+)s$/.exec(message.body.message.android.ttl)![1]);
    expect(ttlSeconds).toBeGreaterThanOrEqual(1);
    expect(ttlSeconds).toBeLessThanOrEqual(TIMERS.pushWaitMs / 1000);
    expect(message.body.message.data).toMatchObject({
      "caller-id-number": "15551234567",
      "caller-id-name": "Caller Name",
      "call-id": callId,
    });

    await wakeAndAnswer(phone, kazoo(fcmParams(token)), callId);
    const result = await caller;
    expect(result.code, result.output).toBe(0);
  });

  it("wakes an iPhone behind NAT with a token-auth VoIP push (bearer JWT, topic without .prod) and hands it the call", async () => {
    const phone = await Phone.create({ nat: true });
    const token = apns.newDevice(IOS_BUNDLE, "voip");
    await asleepPhone(phone, kazoo(appleParams(token)));
    const callId = sharedCallId(phone);
    const caller = call(pusher, phone, "call-answered.xml", { callId });
    await waitUntil(() => apns.requestsFor(token).length > 0, 8000, withOutput(`an APNs push for ${token}`));

    const [push] = apns.requestsFor(token);
    expect(push.status).toBe(200);
    expect(push.environment).toBe("production");
    expect(push.headers["apns-topic"]).toBe(`${IOS_BUNDLE}.voip`);
    expect(push.headers["apns-push-type"]).toBe("voip");
    expect(decodeJwt(push.providerToken!).header).toEqual({ alg: "ES256", kid: KEY_ID });

    await wakeAndAnswer(phone, kazoo(appleParams(token)), callId);
    const result = await caller;
    expect(result.code, result.output).toBe(0);
  });

  it("wakes a web app registered with RFC 8599 Web Push params: +sip.vapid in the 200, a VAPID-signed push without payload", async () => {
    const phone = await Phone.create({ domain: SECOND_DOMAIN });
    const subscription = webPush.subscribe();
    const registered = await asleepPhone(phone, webPushParams(subscription.endpoint), "register-feature-caps.xml"); // nothing listens at its port
    expect(featureCapsIn(registered)).toEqual([`*;+sip.pns="webpush";+sip.vapid="${vapidKey}"`]);
    const callId = sharedCallId(phone);
    const caller = call(pusher, phone, "call-answered.xml", { callId });
    await waitUntil(
      () => webPush.requestsFor(subscription).length > 0,
      8000,
      withOutput(`a Web Push message for ${subscription.endpoint}`),
    );

    const [message] = webPush.requestsFor(subscription);
    expect(message.status).toBe(201);
    expect(message.payload).toBeNull(); // RFC 8599 gives no encryption keys: the push only wakes the app
    expect(message.headers.urgency).toBe("high");
    expect(message.vapid).toMatchObject({ aud: webPush.origin, sub: "mailto:ops@example.com", publicKey: vapidKey });

    await wakeAndAnswer(phone, webPushParams(subscription.endpoint), callId); // the R-URI it gets carries no pn- param
    const result = await caller;
    expect(result.code, result.output).toBe(0);
  });

  it("tells an Android phone (FCM) a cancelled call ended, and sends nothing more to a Web Push subscription known without keys", async () => {
    // One AOR, both asleep: the Android phone's TCP connection closed, nothing listens at the web app's port.
    const android = await Phone.create({ transport: "tcp" });
    const web = await Phone.create({ user: android.user });
    const token = `fcm${++counter}:APA91b-cancelled`;
    const subscription = webPush.subscribe();
    await asleepPhone(android, kazoo(fcmParams(token)));
    await asleepPhone(web, webPushParams(subscription.endpoint));
    const callId = sharedCallId(android);
    const caller = await call(pusher, android, "call-cancelled.xml", { callId });
    expect(caller.code, caller.output).toBe(0);
    await waitUntil(
      () => fcm.requestsFor(token).length >= 2,
      5000,
      withOutput(`the call-ended FCM message for ${token}`),
    );

    const [ringing, ended] = fcm.requestsFor(token);
    expect(ringing.body.message.data.event).toBeUndefined();
    expect(ended.body.message.data).toMatchObject({ event: "call-cancelled", "call-id": callId });
    expect(ended.status).toBe(200);
    // RFC 8599 gives the subscription no keys: its one message woke it for the call, an empty one would read as a call.
    await new Promise((done) => setTimeout(done, 300));
    expect(webPush.requestsFor(subscription).map((message) => message.payload)).toEqual([null]);
  });

  it("refuses a Web Push subscription on a host not in the app's endpointHosts: the REGISTER gets 200, no record, one warning naming the key", async () => {
    const phone = await Phone.create();
    await asleepPhone(phone, webPushParams("https://10.0.0.5:8443/admin"));
    expect(pusher.rpc("htable.dump", "pusher_devices")).not.toContain(phone.aor);
    const warning = await pusher.waitFor(new RegExp(`push params refused aor=${phone.aor} [^\\n]*`), 3000);
    expect(warning).toContain(
      `the Web Push endpoint's host "10.0.0.5:8443" is not in apps.${WEB_APP}.webpush.endpointHosts`,
    );
  });

  it("answers the caller at once and forgets the device when FCM says UNREGISTERED", async () => {
    const phone = await Phone.create({ transport: "tcp" });
    const token = `fcm${++counter}:APA91b-unregistered`;
    fcm.replyFor(token, {
      status: 404,
      errorStatus: "NOT_FOUND",
      errorCode: "UNREGISTERED",
      message: "Requested entity was not found.",
    });
    await asleepPhone(phone, kazoo(fcmParams(token)));
    expect(pusher.rpc("htable.dump", "pusher_devices")).toContain(phone.aor);
    const caller = await call(pusher, phone, "call-unavailable.xml");
    expect(caller.code, caller.output).toBe(0);
    expect(caller.endedAtMs - caller.startedAtMs).toBeLessThan(TIMERS.pushWaitMs / 2);
    expect(pusher.rpc("htable.dump", "pusher_devices")).not.toContain(phone.aor);
  });
});
