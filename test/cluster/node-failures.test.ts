// One node of three dies (kill -9) while it holds a call, and comes back (issue 14, "Node failures"; docs/cluster.md,
// "Failures"): no device record is lost, the other two nodes keep serving (a phone registered on the dead node is
// pushed and reached through the node it wakes on), the call the dead node held dies with it (its caller gets no
// final answer), and the restarted node rejoins: it lists every record, those registered while it was down
// included, learns by DMQ sync what lives in memory only (the calls another node holds, the bindings) and serves
// again. The tests run in order on one cluster: each starts where the one before left it.
// Nodes on 127.0.1.x, phones and callers on 127.0.0.x (test/support/cluster.ts, topology.ts); they poll, never time.
//
// What the restarted node must learn by sync was replicated to it before it died: a change made while it is down
// also reaches it as tm's retransmission of the KDMQ request (for fr_timer, 30 s), so it would prove nothing.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { bindingsOn, Cluster, startCluster } from "../support/cluster";
import { SipCaller } from "../support/sip-caller";
import type { SippRun } from "../support/sipp";
import { Phone } from "../support/topology";
import {
  APP_ID,
  call,
  kamailioCounter,
  listeningPhone,
  pushParams,
  registerAndAnswer,
  registerPhone,
  sharedCallId,
  waitForPushes,
} from "../support/wake-fixture";
import { waitUntil } from "../support/wait-until";

const TIMERS = { inviteFirstMs: 1000, pushWaitMs: 8000, afterWakeMs: 6000 };
// The phone whose call node 2 holds across node 1's death and restart has a long t2 (its User-Agent rule's).
const PATIENT_USER_AGENT = "PatientApp iOS 1.0";

let cluster: Cluster;

beforeAll(async () => {
  cluster = await startCluster({
    nodes: 3,
    config: {
      timers: TIMERS,
      userAgents: [
        { name: "MyMobileApp", regex: "^MyMobileApp" },
        { name: "PatientApp", regex: "^PatientApp", timers: { ...TIMERS, pushWaitMs: 60000 } },
      ],
    },
  });
}, 60000);

afterAll(async () => {
  deadCall.caller?.close();
  await cluster?.stop();
});

beforeEach(() => {
  cluster.apns.requests.length = 0;
});

interface PushPhone {
  phone: Phone;
  token: string;
  params: string;
  userAgent?: string;
}

let phones = 0;

/**
 * A phone of APP_ID with its own +sip.instance, as push apps register: a REGISTER from its new socket after a
 * wake-up changes its one device record. (Without one, each socket is a new device and the old one is removed:
 * two changes of one htable item in a row, each its own KDMQ request, which another node's DMQ processes may apply
 * in either order; a node restarted within fr_timer gets both again, as retransmissions, after its sync.)
 */
async function pushPhone(userAgent?: string): Promise<PushPhone> {
  const token = cluster.apns.newDevice(APP_ID);
  phones += 1;
  const instance = `00000000-0000-0000-0000-${String(phones).padStart(12, "0")}`;
  return { phone: await Phone.create(), token, params: pushParams(token, instance), userAgent };
}

function register(id: number, phone: PushPhone, socket = phone.phone) {
  return registerPhone(cluster.node(id), socket, phone.params, { userAgent: phone.userAgent });
}

function wakeAndAnswer(id: number, phone: PushPhone, socket: Phone, callId: string) {
  return registerAndAnswer(cluster.node(id), socket, phone.params, callId, { userAgent: phone.userAgent });
}

/** Resolves once node `id` lists the device with `token` of `aor`. */
async function nodeKnows(id: number, aor: string, token: string): Promise<void> {
  await waitUntil(
    () => cluster.devices(id, aor).some((device) => device.token === token),
    10000,
    () => `node ${id} to list ${aor}'s device\n${cluster.output()}`,
    100,
  );
}

/** The plugin's cluster counters (pusher_stats) of node `id`. */
function wakes(id: number): { sent: number; failures: number } {
  const node = cluster.node(id);
  return { sent: kamailioCounter(node, "cluster_wakes_sent"), failures: kamailioCounter(node, "cluster_dmq_failures") };
}

/** Whether node `id`'s replicated table pusher_cluster_calls has node `holder`'s mark of `aor` (a call held there). */
function knowsCallOn(id: number, holder: number, aor: string): boolean {
  return cluster.node(id).rpc("htable.dump", "pusher_cluster_calls").includes(`${holder}:${aor}`);
}

/** Node `id`'s usrloc bindings of `aor`, "" while it has none. */
function bindings(id: number, aor: string): string {
  return bindingsOn(cluster.node(id), aor);
}

// Registered before node 1 dies. Their sipp exits after the REGISTER's 200: asleep, but F, whose listening side
// answers on its Contact's port later.
let phoneA: PushPhone; // on node 1; called on node 2 while node 1 is down, wakes on node 3
let phoneX: PushPhone; // on node 2; its call is held on node 1 when node 1 dies
let phoneE: PushPhone; // on node 3; its call is held on node 2 across node 1's death and restart, it wakes on node 1
let phoneF: PushPhone; // on node 3, awake: called on node 1 after the restart
/** The call node 2 holds for E across node 1's restart: its Call-ID and its caller's run. */
let callE: { callId: string; caller: Promise<SippRun> };
/** The records every node listed before node 1 died. */
let before: ReturnType<Cluster["devices"]>;
/** The call node 1 held when it died: its caller, and when its push went out. */
const deadCall: { caller?: SipCaller; pushedAtMs: number } = { pushedAtMs: 0 };
// Registered on node 3 while node 1 is down, asleep.
let phoneD: PushPhone;

describe("node 1 of three killed with a call held on it, then restarted", () => {
  it("loses no device record: nodes 2 and 3 list every one, those registered on node 1 included, and the database has them", async () => {
    phoneA = await pushPhone();
    phoneX = await pushPhone();
    phoneE = await pushPhone(PATIENT_USER_AGENT);
    phoneF = await pushPhone();
    await register(1, phoneA);
    await register(2, phoneX);
    await register(3, phoneE);
    await register(3, phoneF);
    for (const { phone, token } of [phoneA, phoneX, phoneE, phoneF])
      for (const id of [1, 2, 3]) await nodeKnows(id, phone.aor, token);
    before = cluster.devices(1);
    expect(before.map((device) => device.aor).sort()).toEqual(
      [phoneA, phoneX, phoneE, phoneF].map(({ phone }) => phone.aor).sort(),
    );

    // Node 2 holds a call for E; node 1 knows it, and has F's binding.
    const callId = sharedCallId(phoneE.phone);
    callE = {
      callId,
      caller: call(cluster.node(2), phoneE.phone, "call-answered.xml", { callId, timeoutSeconds: 90 }),
    };
    await waitForPushes(cluster.apns, phoneE.token, 1, 8000, cluster.node(2));
    await waitUntil(
      () => knowsCallOn(1, 2, phoneE.phone.aor),
      5000,
      () => `node 1 to know node 2's call for ${phoneE.phone.aor}\n${cluster.output()}`,
      100,
    );
    await waitUntil(
      () => bindings(1, phoneF.phone.aor).includes(phoneF.phone.contactUser),
      10000,
      () => `node 1 to hold ${phoneF.phone.aor}'s binding`,
      100,
    );

    // X is called on node 1: it sleeps, so node 1 pushes it and holds the call; node 3 learns of the call (its mark).
    deadCall.caller = await SipCaller.open(cluster.node(1).sipPort, "udp", cluster.node(1).sipHost);
    deadCall.caller.call(phoneX.phone.user, phoneX.phone.domain, sharedCallId(phoneX.phone));
    await waitForPushes(cluster.apns, phoneX.token, 1, 8000, cluster.node(1));
    deadCall.pushedAtMs = Date.now();
    await deadCall.caller.waitFor((answer) => answer.method === "INVITE" && answer.status < 200, 5000);
    await waitUntil(
      () => knowsCallOn(3, 1, phoneX.phone.aor),
      5000,
      () => `node 3 to know node 1's call for ${phoneX.phone.aor}\n${cluster.output()}`,
      100,
    );

    await cluster.crash(1);
    expect(deadCall.caller.inviteFinals(), "node 1 answered the call before it died").toEqual([]);
    for (const id of [2, 3]) expect(cluster.devices(id), `node ${id}'s records after node 1 died`).toEqual(before);
    const rows = cluster.postgres.query("SELECT aor FROM pusher_devices ORDER BY aor").trim().split("\n");
    expect(rows).toEqual(expect.arrayContaining(before.map((device) => device.aor)));
  });

  it("answers on node 3 the REGISTER of the phone whose call died with node 1 (one useless KDMQ request to node 1)", async () => {
    const { sent, failures } = wakes(3);
    await register(3, phoneX, await phoneX.phone.newSocket());
    // The request goes to node 1, which is gone: it is sent (DMQ still lists node 1) or refused, never both.
    await waitUntil(
      () => wakes(3).sent + wakes(3).failures === sent + failures + 1,
      5000,
      () => `node 3 to tell node 1 once: ${JSON.stringify(wakes(3))}\n${cluster.output()}`,
      100,
    );
    expect(deadCall.caller!.inviteFinals()).toEqual([]);
  });

  it("keeps serving on nodes 2 and 3: a call on node 2 to a phone registered asleep on node 1 is pushed and delivered when it wakes on node 3", async () => {
    const callId = sharedCallId(phoneA.phone);
    // Node 2 first tries the phone through node 1 (its binding's Path): nothing answers there, so it pushes.
    const caller = call(cluster.node(2), phoneA.phone, "call-answered.xml", { callId });
    await waitForPushes(cluster.apns, phoneA.token, 1, 8000, cluster.node(2));
    const answered = await wakeAndAnswer(3, phoneA, await phoneA.phone.newSocket(), callId);
    expect(answered.code, answered.output + cluster.output()).toBe(0);
    const result = await caller;
    expect(result.code, result.output + cluster.output()).toBe(0);
    expect(cluster.node(2).output()).toMatch(new RegExp(`delivering call-id=${callId} aor=${phoneA.phone.aor}`));
  });

  it("never gives the caller of the call that died with node 1 a final answer (docs/cluster.md: its transaction died with it)", async () => {
    // A living node 1 would have answered it by pushWaitMs after the push: 480, or once told of the phone's REGISTER
    // on node 3, the outcome of the INVITE it relays there (within afterWakeMs of it, sooner). Nothing came.
    const quietUntilMs = deadCall.pushedAtMs + TIMERS.pushWaitMs + 1000;
    await waitUntil(
      () => Date.now() > quietUntilMs,
      TIMERS.pushWaitMs + 2000,
      "the time a living node 1 would have taken to answer",
      200,
    );
    expect(deadCall.caller!.inviteFinals(), "final answers to the caller of the call that died with node 1").toEqual(
      [],
    );
  });

  it("restarts node 1, which lists every record, one registered on node 3 while it was down included, and knows by DMQ sync the call node 2 holds: the phone wakes on node 1 and gets it", async () => {
    phoneD = await pushPhone();
    await register(3, phoneD);
    await cluster.restart(1);
    // Every record, from the other nodes (DMQ sync) and from the database.
    await waitUntil(
      () => JSON.stringify(cluster.devices(1)) === JSON.stringify(cluster.devices(2)),
      10000,
      () =>
        `node 1 to list node 2's records:\n${JSON.stringify(cluster.devices(1))}\n${JSON.stringify(cluster.devices(2))}`,
      100,
    );
    const aors = cluster.devices(1).map((device) => device.aor);
    expect(aors).toEqual(expect.arrayContaining([...before.map((device) => device.aor), phoneD.phone.aor]));
    expect(cluster.devices(1, phoneD.phone.aor).map((device) => device.token)).toEqual([phoneD.token]);
    // Node 2's call for E lives in memory only (its mark, replicated to node 1 before it died): the sync alone brings it.
    await waitUntil(
      () => knowsCallOn(1, 2, phoneE.phone.aor),
      10000,
      () =>
        `node 1 to know node 2's call for ${phoneE.phone.aor} (DMQ sync of pusher_cluster_calls)\n${cluster.output()}`,
      100,
    );
    const answered = await wakeAndAnswer(1, phoneE, await phoneE.phone.newSocket(), callE.callId);
    expect(answered.code, answered.output + cluster.output()).toBe(0);
    const result = await callE.caller;
    expect(result.code, result.output + cluster.output()).toBe(0);
    expect(cluster.node(2).output()).toMatch(new RegExp(`delivering call-id=${callE.callId} aor=${phoneE.phone.aor}`));
    // The restarted node 1 knows nothing of the call that died with it either.
    expect(deadCall.caller!.inviteFinals(), "final answers to the caller of the call that died with node 1").toEqual(
      [],
    );
  });

  it("serves again on node 1: a call there to a phone registered asleep on node 3 while node 1 was down is delivered after its push", async () => {
    const callId = sharedCallId(phoneD.phone);
    const caller = call(cluster.node(1), phoneD.phone, "call-answered.xml", { callId });
    await waitForPushes(cluster.apns, phoneD.token, 1, 8000, cluster.node(1));
    const answered = await wakeAndAnswer(2, phoneD, await phoneD.phone.newSocket(), callId);
    expect(answered.code, answered.output + cluster.output()).toBe(0);
    const result = await caller;
    expect(result.code, result.output + cluster.output()).toBe(0);
    expect(cluster.node(1).output()).toMatch(new RegExp(`delivering call-id=${callId} aor=${phoneD.phone.aor}`));
  });

  it("reaches from node 1, without a push, an awake phone registered on node 3 before node 1 died (its binding came back by dmq_usrloc sync)", async () => {
    await waitUntil(
      () => bindings(1, phoneF.phone.aor).includes(phoneF.phone.contactUser),
      10000,
      () => `node 1 to hold ${phoneF.phone.aor}'s binding (dmq_usrloc sync)\n${cluster.output()}`,
      100,
    );
    const ringing = await listeningPhone(cluster.node(3), phoneF.phone, "answer.xml");
    const result = await call(cluster.node(1), phoneF.phone, "call-answered.xml");
    expect(result.code, result.output + cluster.output()).toBe(0);
    const phoneRun = await ringing.run;
    expect(phoneRun.code, phoneRun.output).toBe(0);
    expect(cluster.apns.requestsFor(phoneF.token)).toHaveLength(0);
  });
});
