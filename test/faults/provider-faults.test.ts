// Push providers misbehave: APNs never answers, answers 500/503/429 to everything, or sends GOAWAY with pushes
// in flight. Calls still end on time, another provider's app is served meanwhile, retries stay bounded (nothing
// keeps being sent after the calls ended), and pushes cut off by GOAWAY are sent again once, on a new connection.
import { afterAll, beforeAll, expect, it } from "vitest";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { MockApns } from "../support/mock-apns";
import { MockFcm } from "../support/mock-fcm";
import { PusherProcess, TEST_CA_DIR, startPusher } from "../support/pusher-process";
import { DOMAIN } from "../support/topology";
import { APP_ID, pushParams } from "../support/wake-fixture";
import { SentRequest, SipClient, invite, register } from "./support/sip-client";
import { callItems, waitUntil } from "./support/processes";

const T2_MS = 4000;
const ANDROID_APP = "com.app.android";
const MAX_ATTEMPTS = 6; // src/helper/retry-policy.ts: attempts per push, the first included

let apns: MockApns;
let fcm: MockFcm;
let pusher: PusherProcess;
/** The caller; each phone registers from a client of its own (own address). */
let client: SipClient;
const phones: SipClient[] = [];
let users = 0;

beforeAll(async () => {
  apns = await MockApns.start({ caDir: TEST_CA_DIR });
  fcm = await MockFcm.start({ caDir: TEST_CA_DIR });
  const work = mkdtempSync(join(tmpdir(), "pusher-faults-fcm-"));
  pusher = await startPusher({
    userAgents: [{ name: "MyMobileApp", regex: "^MyMobileApp" }],
    apps: {
      [APP_ID]: { apple: apns.appleConfig({ certificateFile: join(TEST_CA_DIR, "apple-app.pem") }) },
      [ANDROID_APP]: {
        firebase: { serviceAccountFile: fcm.createServiceAccount(work, "faults-project"), host: fcm.host },
      },
    },
    // push-first: a registered phone is pushed and its call held until t2 unless it registers again.
    calls: { strategy: "push-first" },
    timers: { pushWaitMs: T2_MS },
  });
  client = await SipClient.open(pusher.sipPort);
}, 30000);

afterAll(async () => {
  for (const sender of [client, ...phones]) sender?.close();
  await pusher?.stop();
  await Promise.all([apns?.close(), fcm?.close()]);
});

/** Registers a new phone (on its own address) with `params` and returns its user name. */
async function phone(params: string): Promise<string> {
  users++;
  const user = `provider_${users}`;
  const device = await SipClient.open(pusher.sipPort);
  phones.push(device);
  expect((await device.send(register(device, user, DOMAIN, params)).final)?.status).toBe(200);
  return user;
}

/** A PushKit token APNs issued for APP_ID: scripted replies aside, APNs accepts its pushes. */
function issued(token: string): string {
  return apns.addDevice(token, { bundle: APP_ID, kind: "voip" });
}

function call(user: string): SentRequest {
  return client.send(invite(client, user, DOMAIN));
}

function finalStatuses(calls: SentRequest[]): number[][] {
  return calls.map((call) => call.finals().map((answer) => answer.status));
}

it("ends a call at t2 while APNs stalls, and serves an FCM app's call meanwhile", async () => {
  const appleToken = issued("5a11ed00aabbccddeeff0011223344556677");
  const fcmToken = "fcmfault:APA91b-stall-neighbour";
  apns.replyFor(appleToken, { stall: true });
  const appleUser = await phone(pushParams(appleToken));
  const androidUser = await phone(`;app-id=${ANDROID_APP};pn-tok=${fcmToken};pn-type=firebase`);

  const stalledCall = call(appleUser);
  await waitUntil(() => apns.stalledCount === 1, 3000, "the APNs request to stall");
  const fcmCall = call(androidUser);
  await waitUntil(() => fcm.requestsFor(fcmToken).length === 1, 3000, "the FCM push");
  const fcmPushMs = fcm.requestsFor(fcmToken)[0].receivedAtMs - fcmCall.sentAtMs;

  const [stalledFinal, fcmFinal] = await Promise.all([stalledCall.final, fcmCall.final]);
  expect(finalStatuses([stalledCall, fcmCall])).toEqual([[480], [480]]);
  const stalledMs = stalledFinal!.atMs - stalledCall.sentAtMs;
  expect(stalledMs).toBeGreaterThanOrEqual(T2_MS - 500);
  expect(stalledMs).toBeLessThanOrEqual(T2_MS + 1000);
  // Served meanwhile: the FCM push went out while the APNs request still hung.
  expect(fcm.requestsFor(fcmToken)[0].receivedAtMs).toBeLessThan(stalledFinal!.atMs);
  expect(fcmFinal!.atMs).toBeGreaterThan(fcm.requestsFor(fcmToken)[0].receivedAtMs);
  // One APNs request: its timeout is the ring window, so nothing is left to retry in.
  expect(apns.requestsFor(appleToken)).toHaveLength(1);
  console.log(
    `[faults] APNs stall: call ended ${stalledMs} ms after its INVITE (t2 ${T2_MS}); FCM push ${fcmPushMs} ms after its INVITE`,
  );
});

it("retries a 500/503/429 storm a bounded number of times and sends nothing once the calls ended", async () => {
  const storm = [
    { status: 500, reason: "InternalServerError" },
    { status: 503, reason: "ServiceUnavailable" },
    { status: 429, reason: "TooManyRequests" },
  ];
  const tokens: string[] = [];
  const callees: string[] = [];
  for (let i = 0; i < 30; i++) {
    const token = issued(`57041${i.toString(16).padStart(3, "0")}aabbccddeeff00112233`);
    apns.replyFor(token, storm[i % 3]);
    tokens.push(token);
    callees.push(await phone(pushParams(token)));
  }
  // Five more whose 429 carries a Retry-After beyond the ring window: not worth a second try.
  const patient: string[] = [];
  for (let i = 0; i < 5; i++) {
    const token = issued(`4290${i.toString(16).padStart(3, "0")}aabbccddeeff00112233`);
    apns.replyFor(token, { status: 429, reason: "TooManyRequests", retryAfter: "3600" });
    patient.push(token);
    callees.push(await phone(pushParams(token)));
  }
  const before = apns.requests.length;
  const calls = callees.map((callee) => call(callee));
  await Promise.all(calls.map((call) => call.final));
  expect(finalStatuses(calls)).toEqual(Array(calls.length).fill([480]));
  const lateness = calls.map((call) => call.finals()[0].atMs - call.sentAtMs);
  expect(Math.max(...lateness)).toBeLessThanOrEqual(T2_MS + 1000);

  const attempts = tokens.map((token) => apns.requestsFor(token).length);
  expect(Math.min(...attempts)).toBeGreaterThanOrEqual(2);
  expect(Math.max(...attempts)).toBeLessThanOrEqual(MAX_ATTEMPTS);
  expect(patient.map((token) => apns.requestsFor(token).length)).toEqual([1, 1, 1, 1, 1]);
  // No request after its call's ring window; and none at all once every call ended.
  for (let i = 0; i < tokens.length; i++) {
    for (const request of apns.requestsFor(tokens[i]))
      expect(request.receivedAtMs).toBeLessThanOrEqual(calls[i].sentAtMs + T2_MS + 200);
  }
  const afterCalls = apns.requests.length;
  await new Promise((done) => setTimeout(done, 3000));
  expect(apns.requests.length).toBe(afterCalls);
  expect(callItems(pusher.rpc)).toEqual([]);
  // The helper reported each push once, as failed, with its attempt count.
  const failed =
    pusher
      .output()
      .match(
        /push call-id=.* token=57041.*outcome=failed code=PUSHER_ERR_APNS_(UNAVAILABLE|THROTTLED).* attempts=\d+/g,
      ) ?? [];
  expect(failed).toHaveLength(tokens.length);
  console.log(
    `[faults] APNs storm: ${calls.length} calls, ${afterCalls - before} requests (max ${Math.max(...attempts)} per push, Retry-After 3600: 1), ` +
      `all 480 within ${Math.max(...lateness)} ms, 0 requests after`,
  );
});

it("sends pushes cut off by GOAWAY again once, on a new connection", async () => {
  const tokens: string[] = [];
  const callees: string[] = [];
  for (let i = 0; i < 10; i++) {
    const token = issued(`90a3a${i.toString(16).padStart(3, "0")}aabbccddeeff00112233`);
    apns.replyFor(token, { stall: true }, { status: 200 });
    tokens.push(token);
    callees.push(await phone(pushParams(token)));
  }
  // A first push opens the connection: GOAWAY's last-stream-id then names a stream below the stalled ones.
  // (Node replaces a last-stream-id of 0 or less with the last stream it processed, refusing nothing.)
  const warmToken = issued("90a3aff0aabbccddeeff00112233");
  const warmCall = call(await phone(pushParams(warmToken)));
  await waitUntil(() => apns.requestsFor(warmToken).length === 1, 3000, "the first push");
  expect(apns.requestsFor(warmToken).map((request) => request.status)).toEqual([200]);
  const stalledBefore = apns.stalledCount;
  const calls = callees.map((callee) => call(callee));
  await waitUntil(() => apns.stalledCount === stalledBefore + tokens.length, 3000, "10 pushes in flight");
  const connectionsBefore = apns.connectionCount;
  // GOAWAY whose last-stream-id is below the stalled streams: APNs did not process them.
  apns.goAwayRefusingStalled();
  await waitUntil(
    () => tokens.every((token) => apns.requestsFor(token).length === 2),
    3000,
    "every push to be sent again",
  );

  const retried = tokens.map((token) => apns.requestsFor(token));
  expect(retried.map((requests) => requests.map((request) => request.status))).toEqual(
    Array(tokens.length).fill([null, 200]),
  );
  const newConnections = new Set(retried.map((requests) => requests[1].connectionId));
  expect(newConnections.size).toBe(1);
  expect([...newConnections][0]).toBeGreaterThan(Math.max(...retried.map((requests) => requests[0].connectionId)));
  expect(apns.connectionCount).toBe(connectionsBefore + 1);
  await Promise.all([...calls, warmCall].map((call) => call.final));
  expect(finalStatuses([...calls, warmCall])).toEqual(Array(calls.length + 1).fill([480]));
  // Nothing more: sent once, retried once.
  await new Promise((done) => setTimeout(done, 500));
  expect(tokens.map((token) => apns.requestsFor(token).length)).toEqual(Array(tokens.length).fill(2));
  console.log(
    `[faults] GOAWAY: ${tokens.length}/${tokens.length} pushes sent again once on connection ${[...newConnections][0]}`,
  );
});
