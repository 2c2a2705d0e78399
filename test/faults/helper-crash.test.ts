// The helper dies while 100 calls are held: every caller still gets one final answer by t2 (+1 s), `pusher start`
// restarts the helper, the new helper reconnects by itself and the next call is pushed, and no transaction is
// left behind in Kamailio.
import { afterAll, beforeAll, expect, it } from "vitest";
import { DOMAIN } from "../support/topology";
import { APP_ID, WakeFixture, registerManyPhones, startWakeFixture, waitForPushes } from "../support/wake-fixture";
import { SipClient, invite } from "./support/sip-client";
import { callItems, currentTransactions, helperPid, waitUntil } from "./support/processes";

const CALLS = 100;
const T2_MS = 4000;

let fixture: WakeFixture;
let client: SipClient;

function tokenOf(index: number): string {
  return `c1${index.toString(16).padStart(6, "0")}aabbccddeeff00112233`;
}

beforeAll(async () => {
  // push-first: a registered phone is pushed and its call held, so no binding needs removing.
  fixture = await startWakeFixture({ calls: { strategy: "push-first" }, timers: { pushWaitMs: T2_MS } });
  client = await SipClient.open(fixture.pusher.sipPort);
  const phones = Array.from({ length: CALLS + 1 }, (_, i) => ({ user: `helpercrash_${i}`, token: tokenOf(i) }));
  // PushKit tokens APNs issued: the call after the restart must be accepted, not dropped as an unknown token.
  for (const phone of phones) fixture.apns.addDevice(phone.token, { bundle: APP_ID, kind: "voip" });
  const run = await registerManyPhones(fixture.pusher.sipPort, fixture.pusher.dir, phones);
  expect(run.code, run.output.slice(-2000)).toBe(0);
}, 60000);

afterAll(async () => {
  client?.close();
  await fixture?.stop();
});

it("answers all 100 held callers by t2 + 1 s when the helper is killed, and the restarted helper pushes the next call", async () => {
  const { apns, pusher } = fixture;
  // Every push stalls at APNs: the helper dies with 100 requests in flight.
  for (let i = 0; i < CALLS; i++) apns.replyFor(tokenOf(i), { stall: true });
  const calls = [];
  for (let i = 0; i < CALLS; i++) calls.push(client.send(invite(client, `helpercrash_${i}`, DOMAIN)));
  await waitUntil(() => apns.stalledCount === CALLS, 5000, `${CALLS} pushes in flight at APNs`);
  const killedPid = helperPid(pusher);
  process.kill(killedPid, "SIGKILL");

  const finals = await Promise.all(calls.map((call) => call.final));
  const lateness = calls.map((call) => (call.finals()[0]?.atMs ?? Infinity) - call.sentAtMs);
  expect(finals.filter((answer) => answer?.status === 480)).toHaveLength(CALLS);
  expect(calls.filter((call) => call.finals().length === 1)).toHaveLength(CALLS);
  expect(Math.max(...lateness)).toBeLessThanOrEqual(T2_MS + 1000);
  console.log(
    `[faults] helper killed: ${CALLS}/${CALLS} callers got 480, last ${Math.max(...lateness)} ms after its INVITE (t2 ${T2_MS} ms)`,
  );

  // pusher start restarts the helper after 1 s; the new one connects without help.
  await pusher.waitFor(/helper exited \(SIGKILL\)/);
  await waitUntil(
    () => (pusher.output().match(/pusher: helper connected/g) ?? []).length === 2,
    10000,
    "the restarted helper's hello",
  );
  expect(helperPid(pusher)).not.toBe(killedPid);
  const next = client.send(invite(client, `helpercrash_${CALLS}`, DOMAIN));
  await waitForPushes(apns, tokenOf(CALLS), 1, 5000, pusher);
  expect(apns.requestsFor(tokenOf(CALLS))).toHaveLength(1);
  expect(apns.requestsFor(tokenOf(CALLS))[0].status).toBe(200);
  expect((await next.final)?.status).toBe(480); // nobody wakes: t2

  // Every transaction ends: the killed helper's 100 and the last call (wait timer 5 s after the ACK).
  await waitUntil(() => currentTransactions(pusher.rpc) === 0, 15000, "tm.stats current to return to 0");
  expect(currentTransactions(pusher.rpc)).toBe(0);
  expect(callItems(pusher.rpc)).toEqual([]);
}, 90000);
