// End to end with the new providers: real Kamailio (`pusher start`), real sipp phones and callers, the real
// helper, a mock FCM + OAuth, a mock APNs in token mode and a mock Web Push service, all on 127.0.0.1 over
// HTTP/2 + TLS. Devices use Kazoo-dialect contacts (pn-type=firebase for FCM, pn-type=apple for the token-auth
// APNs app) and RFC 8599's for Web Push (pn-provider=webpush, pn-prid = the subscription's endpoint).
import { generateKeyPairSync } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { decodeJwt } from "../../src/helper/jwt";
import { freePort } from "../support/free-port";
import { MockApns } from "../support/mock-apns";
import { MockFcm } from "../support/mock-fcm";
import { MockWebPush } from "../support/mock-webpush";
import { PusherProcess, startPusher, TEST_CA_DIR } from "../support/pusher-process";
import { featureCapsIn, phoneKeys, runSipp } from "../support/sipp";
import { waitUntil } from "../support/wait-until";
import { vapidPublicKey } from "../../src/helper/webpush-sender";

const ANDROID_APP = "com.example.android";
const IOS_APP = "com.example.tokenapp.prod";
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

function nextUser(): string {
  counter++;
  return `prov_${process.pid}_${counter}`;
}

const fcmParams = (token: string) => `;app-id=${ANDROID_APP};pn-tok=${token};pn-type=firebase`;
const appleParams = (token: string) => `;app-id=${IOS_APP};pn-tok=${token};pn-type=apple`;
const callKeys = (callee: string) => ({ callee, caller: "15551234567", domain: "127.0.0.1" });
/** RFC 8599 Web Push: the params go in the Contact URI (an endpoint URL is no header-param token). */
const webPushParams = (endpoint: string) => ({ uri: `;pn-provider=webpush;pn-prid=${endpoint}` });

/** Contact params after the URI (a string), or inside it ({uri}). */
type ContactParams = string | { uri: string };

function keysOf(user: string, port: number, params: ContactParams): Record<string, string> {
  if (typeof params === "string") return phoneKeys(user, port, params, USER_AGENT);
  return { ...phoneKeys(user, port, "", USER_AGENT), contact: `<sip:${user}@127.0.0.1:${port};transport=udp${params.uri}>` };
}

/** Registers, then removes the binding: the device record stays, so a call pushes at once. Returns sipp's output. */
async function asleepPhone(user: string, params: ContactParams, scenario = "register.xml"): Promise<string> {
  const port = await freePort();
  const run = await runSipp({ scenario, remotePort: pusher.sipPort, localPort: port, keys: keysOf(user, port, params) });
  expect(run.code, run.output).toBe(0);
  pusher.rpc("ul.rm", "location", `${user}@127.0.0.1`);
  return run.output;
}

/** What a test waits for, with the end of pusher start's output should it never come. */
const withOutput = (what: string) => () => `${what}; pusher output:\n${pusher.output().slice(-3000)}`;

async function wakeAndAnswer(user: string, params: ContactParams): Promise<void> {
  const port = await freePort();
  const phone = await runSipp({ scenario: "register-and-answer.xml", remotePort: pusher.sipPort, localPort: port, keys: keysOf(user, port, params), callId: `${user}-call@127.0.0.1` });
  expect(phone.code, phone.output).toBe(0);
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
  apns = await MockApns.start({ caDir: TEST_CA_DIR, auth: "token", signingKeys: [{ keyId: KEY_ID, teamId: TEAM_ID, publicKey: apple.publicKey }] });
  pusher = await startPusher({
    timers: TIMERS,
    userAgents: [{ name: "MyMobileApp", regex: "^MyMobileApp" }],
    apps: {
      [ANDROID_APP]: { firebase: { serviceAccountFile: fcm.createServiceAccount(work, "e2e-project"), host: fcm.host } },
      [IOS_APP]: { apple: { keyFile, keyId: KEY_ID, teamId: TEAM_ID, host: apns.host } },
      [WEB_APP]: { webpush: { vapidKeyFile, subject: "mailto:ops@example.com", publicKey: vapidKey, endpointHosts: ["127.0.0.1"] } },
    },
  });
}, 30000);

afterAll(async () => {
  await pusher?.stop();
  await Promise.all([fcm?.close(), apns?.close(), webPush?.close()]);
  if (work) rmSync(work, { recursive: true, force: true });
});

describe("calls to phones woken through FCM, token-auth APNs and Web Push", () => {
  it("wakes an Android phone with an FCM HTTP v1 data message and hands it the call", async () => {
    const user = nextUser();
    const token = `fcm${counter}:APA91b-e2e-token`;
    await asleepPhone(user, fcmParams(token));
    const caller = runSipp({ scenario: "call-answered.xml", remotePort: pusher.sipPort, keys: callKeys(user), callId: `${user}-call@127.0.0.1` });
    await waitUntil(() => fcm.requestsFor(token).length > 0, 8000, withOutput(`an FCM message for ${token}`));

    const [message] = fcm.requestsFor(token);
    expect(message.project).toBe("e2e-project");
    expect(message.headers.authorization).toMatch(/^Bearer ya29\./);
    expect(message.body.message.android.priority).toBe("HIGH");
    const ttlSeconds = Number(/^(\d+)s$/.exec(message.body.message.android.ttl)![1]);
    expect(ttlSeconds).toBeGreaterThanOrEqual(1);
    expect(ttlSeconds).toBeLessThanOrEqual(TIMERS.pushWaitMs / 1000);
    expect(message.body.message.data).toMatchObject({ "caller-id-number": "15551234567", "caller-id-name": "Caller Name", "call-id": `${user}-call@127.0.0.1` });

    await wakeAndAnswer(user, fcmParams(token));
    const call = await caller;
    expect(call.code, call.output).toBe(0);
  });

  it("wakes an iPhone with a token-auth VoIP push (bearer JWT, topic without .prod) and hands it the call", async () => {
    const user = nextUser();
    const token = `${counter}`.padStart(8, "0") + "fe".repeat(28);
    await asleepPhone(user, appleParams(token));
    const caller = runSipp({ scenario: "call-answered.xml", remotePort: pusher.sipPort, keys: callKeys(user), callId: `${user}-call@127.0.0.1` });
    await waitUntil(() => apns.requestsFor(token).length > 0, 8000, withOutput(`an APNs push for ${token}`));

    const [push] = apns.requestsFor(token);
    expect(push.status).toBe(200);
    expect(push.headers["apns-topic"]).toBe("com.example.tokenapp.voip");
    expect(push.headers["apns-push-type"]).toBe("voip");
    expect(decodeJwt(push.providerToken!).header).toEqual({ alg: "ES256", kid: KEY_ID });

    await wakeAndAnswer(user, appleParams(token));
    const call = await caller;
    expect(call.code, call.output).toBe(0);
  });

  it("wakes a web app registered with RFC 8599 Web Push params: +sip.vapid in the 200, a VAPID-signed push without payload", async () => {
    const user = nextUser();
    const subscription = webPush.subscribe();
    const registered = await asleepPhone(user, webPushParams(subscription.endpoint), "register-feature-caps.xml");
    expect(featureCapsIn(registered)).toEqual([`*;+sip.pns="webpush";+sip.vapid="${vapidKey}"`]);
    const caller = runSipp({ scenario: "call-answered.xml", remotePort: pusher.sipPort, keys: callKeys(user), callId: `${user}-call@127.0.0.1` });
    await waitUntil(() => webPush.requestsFor(subscription).length > 0, 8000, withOutput(`a Web Push message for ${subscription.endpoint}`));

    const [message] = webPush.requestsFor(subscription);
    expect(message.status).toBe(201);
    expect(message.payload).toBeNull(); // RFC 8599 gives no encryption keys: the push only wakes the app
    expect(message.headers.urgency).toBe("high");
    expect(message.vapid).toMatchObject({ aud: webPush.origin, sub: "mailto:ops@example.com", publicKey: vapidKey });

    await wakeAndAnswer(user, webPushParams(subscription.endpoint));
    const call = await caller;
    expect(call.code, call.output).toBe(0);
  });

  it("answers the caller at once and forgets the device when FCM says UNREGISTERED", async () => {
    const user = nextUser();
    const token = `fcm${counter}:APA91b-unregistered`;
    fcm.replyFor(token, { status: 404, errorStatus: "NOT_FOUND", errorCode: "UNREGISTERED", message: "Requested entity was not found." });
    await asleepPhone(user, fcmParams(token));
    const caller = await runSipp({ scenario: "call-unavailable.xml", remotePort: pusher.sipPort, keys: callKeys(user) });
    expect(caller.code, caller.output).toBe(0);
    expect(caller.endedAtMs - caller.startedAtMs).toBeLessThan(TIMERS.pushWaitMs / 2);
    expect(pusher.rpc("htable.dump", "pusher_devices")).not.toContain(`${user}@127.0.0.1`);
  });
});
