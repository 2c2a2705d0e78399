// The single-node wake scenarios (test/integration/wake-call.test.ts) with the REGISTER and the INVITE on different
// nodes (issue 14, "every scenario of the single-node wake tests runs with REGISTER and INVITE on different nodes"):
// those wake-across-nodes.test.ts and shared-records.test.ts do not run already. Every phone registers on node 2 and
// is called on node 1; a phone that wakes registers on node 3, or again on node 2. One cluster for the file, one AOR
// per test. Timers that a scenario must tell apart come from the phone's User-Agent rule, so the tests poll and
// never time a fast path. Nodes on 127.0.1.x, phones and callers on 127.0.0.x (test/support/cluster.ts, topology.ts).
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { bindingsOn, Cluster, everyNodeHolds, htableItemOn, startCluster } from "../support/cluster";
import { callItems, pluginErrorsIn } from "../support/kamailio-checks";
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

const TIMERS = { inviteFirstMs: 1000, pushWaitMs: 6000, afterWakeMs: 6000 };
// A push that comes long before this phone's t1 did not wait for invite-first.
const SLOW_INVITE_FIRST = { userAgent: "SlowInviteFirstApp iOS 1.0", timers: { ...TIMERS, inviteFirstMs: 20000 } };
// A caller answered long before this phone's t2 was not held until it.
const PATIENT = { userAgent: "PatientApp iOS 1.0", timers: { ...TIMERS, pushWaitMs: 30000 } };
// A short t2, for the call to a phone that never wakes.
const QUICK = { userAgent: "QuickApp iOS 1.0", timers: { ...TIMERS, pushWaitMs: 2500 } };

let cluster: Cluster;

beforeAll(async () => {
  cluster = await startCluster({
    nodes: 3,
    config: {
      timers: TIMERS,
      userAgents: [
        { name: "MyMobileApp", regex: "^MyMobileApp" },
        { name: "SlowInviteFirstApp", regex: "^SlowInviteFirstApp", timers: SLOW_INVITE_FIRST.timers },
        { name: "PatientApp", regex: "^PatientApp", timers: PATIENT.timers },
        { name: "QuickApp", regex: "^QuickApp", timers: QUICK.timers },
      ],
    },
  });
}, 60000);

afterAll(async () => {
  await cluster?.stop();
});

beforeEach(() => {
  cluster.apns.requests.length = 0;
});

/** Resolves once node `id`'s usrloc holds the binding of `phone` (dmq_usrloc is asynchronous). */
async function nodeHoldsBinding(id: number, phone: Phone): Promise<void> {
  await waitUntil(
    () => bindingsOn(cluster.node(id), phone.aor).includes(phone.contactUser),
    10000,
    () => `node ${id} to hold ${phone.aor}'s binding\n${cluster.output()}`,
    100,
  );
}

/** The tokens of the AOR's devices node `id` lists. */
function tokensOn(id: number, aor: string): string[] {
  return cluster.devices(id, aor).map((device) => device.token);
}

/** Resolves once no node keeps a mark of a call held for `aor` (replicated table pusher_cluster_calls). */
async function noNodeMarks(aor: string): Promise<void> {
  for (const node of cluster.nodes) {
    await waitUntil(
      () => !node.pusher.rpc("htable.dump", "pusher_cluster_calls").includes(aor),
      5000,
      () => `node ${node.id} to drop the mark of ${aor}\n${cluster.output()}`,
      50,
    );
  }
}

/** A core counter of node `id` (kamcmd stats.get_statistics), e.g. rcv_requests_cancel. */
function coreCounter(id: number, name: string): number {
  return Number(
    new RegExp(`core:${name} = (\\d+)`).exec(cluster.node(id).rpc("stats.get_statistics", name))?.[1] ?? -1,
  );
}

const literally = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

describe("a phone registered on node 2, called on node 1", () => {
  it("relays the INVITE to an awake phone on TCP through node 2 (its binding's Path) and sends no push", async () => {
    const phone = await Phone.create({ transport: "tcp" });
    const token = cluster.apns.newDevice(APP_ID);
    const callId = sharedCallId(phone);
    const sent = kamailioCounter(cluster.node(2), "cluster_wakes_sent");
    const answering = registerAndAnswer(cluster.node(2), phone, pushParams(token), callId);
    await nodeHoldsBinding(1, phone);
    // Node 2's own address in the Path of the binding node 1 holds: node 1 reaches the phone through node 2.
    expect(bindingsOn(cluster.node(1), phone.aor)).toMatch(
      new RegExp(`Path: <sip:${literally(cluster.nodes[1].host)}:\\d+;lr;received=`),
    );

    const caller = await call(cluster.node(1), phone, "call-answered.xml", { callId });
    expect(caller.code, caller.output + cluster.output()).toBe(0);
    const answered = await answering;
    expect(answered.code, answered.output).toBe(0);
    expect(cluster.apns.requestsFor(token)).toHaveLength(0);
    expect(cluster.node(1).output()).not.toMatch(new RegExp(`push requested call-id=${literally(callId)} `));
    expect(kamailioCounter(cluster.node(2), "cluster_wakes_sent")).toBe(sent);
  });

  it("pushes at once from node 1, without the invite-first wait, a phone with a record but no registration on any node, and delivers the call when it wakes on node 3", async () => {
    const phone = await Phone.create();
    const token = cluster.apns.newDevice(APP_ID);
    const params = pushParams(token);
    await registerPhone(cluster.node(2), phone, params, { userAgent: SLOW_INVITE_FIRST.userAgent });
    await everyNodeHolds(cluster, phone.aor, token);
    await nodeHoldsBinding(1, phone);
    // The binding lapsed where the phone registered; dmq_usrloc takes its removal to the other nodes. The record stays.
    cluster.node(2).rpc("ul.rm", "location", phone.aor);
    for (const id of [1, 3]) {
      await waitUntil(
        () => !bindingsOn(cluster.node(id), phone.aor).includes(phone.contactUser),
        10000,
        () => `node ${id} to drop ${phone.aor}'s binding\n${cluster.output()}`,
        50,
      );
    }

    const callId = sharedCallId(phone);
    const caller = call(cluster.node(1), phone, "call-answered.xml", { callId });
    // Well within the phone's t1 (20 s): node 1 did not try the INVITE first.
    await waitForPushes(cluster.apns, token, 1, 8000, cluster.node(1));
    const answered = await registerAndAnswer(cluster.node(3), await phone.newSocket(), params, callId, {
      userAgent: SLOW_INVITE_FIRST.userAgent,
    });
    expect(answered.code, answered.output + cluster.output()).toBe(0);
    const result = await caller;
    expect(result.code, result.output + cluster.output()).toBe(0);
    expect(result.output).toMatch(/182 <-+\s+1\s/); // held with Kazoo's "182 sending push notification"
    expect(cluster.node(1).output()).toMatch(new RegExp(`delivering call-id=${literally(callId)} aor=${phone.aor}`));
  });

  it("pushes at t1 a phone that answers the INVITE node 1 relays through node 2 with 100 Trying only, and delivers the call when it wakes on node 3", async () => {
    const phone = await Phone.create();
    const token = cluster.apns.newDevice(APP_ID);
    const params = pushParams(token);
    const trying = await listeningPhone(cluster.node(2), phone, "trying-only.xml");
    await registerPhone(cluster.node(2), phone, params);
    await nodeHoldsBinding(1, phone);
    const cancelsBefore = coreCounter(2, "rcv_requests_cancel");

    const callId = sharedCallId(phone);
    const caller = call(cluster.node(1), phone, "call-answered.xml", { callId });
    // Within 8 s: a 100 Trying (the phone's, or node 2's own) did not switch node 1 to fr_inv_timer (minutes).
    await waitForPushes(cluster.apns, token, 1, 8000, cluster.node(1));
    const answered = await registerAndAnswer(cluster.node(3), await phone.newSocket(), params, callId);
    expect(answered.code, answered.output + cluster.output()).toBe(0);
    const result = await caller;
    expect(result.code, result.output + cluster.output()).toBe(0);
    // The phone got the invite-first INVITE through node 2, and node 1's CANCEL of it the same way.
    const phoneRun = await trying.run;
    expect(phoneRun.code, phoneRun.output).toBe(0);
    expect(coreCounter(2, "rcv_requests_cancel")).toBeGreaterThan(cancelsBefore);
  });

  it("hands node 1's call to a phone that wakes on node 2 with the very REGISTER node 2 already applied (cfg answers it without the plugin's JS)", async () => {
    const phone = await Phone.create();
    const token = cluster.apns.newDevice(APP_ID);
    const params = pushParams(token);
    await registerPhone(cluster.node(2), phone, params);
    await everyNodeHolds(cluster, phone.aor, token);
    await nodeHoldsBinding(1, phone);
    for (const id of [1, 2, 3]) cluster.node(id).rpc("ul.rm", "location", phone.aor); // the binding lapsed
    const unchanged = kamailioCounter(cluster.node(2), "registers_unchanged");
    const sent = kamailioCounter(cluster.node(2), "cluster_wakes_sent");
    const callId = sharedCallId(phone);
    const caller = call(cluster.node(1), phone, "call-answered.xml", { callId });
    await waitForPushes(cluster.apns, token, 1, 8000, cluster.node(1));
    await waitUntil(
      () => cluster.node(2).rpc("htable.dump", "pusher_cluster_calls").includes(`1:${phone.aor}`),
      5000,
      () => `node 2 to know node 1's call for ${phone.aor}\n${cluster.output()}`,
      50,
    );

    // The same socket of node 2, Contact, User-Agent and Expires as the REGISTER the plugin applied there.
    const answered = await registerAndAnswer(cluster.node(2), phone, params, callId);
    expect(answered.code, answered.output + cluster.output()).toBe(0);
    const result = await caller;
    expect(result.code, result.output + cluster.output()).toBe(0);
    expect(kamailioCounter(cluster.node(2), "registers_unchanged")).toBe(unchanged + 1);
    expect(kamailioCounter(cluster.node(2), "cluster_wakes_sent")).toBe(sent + 1);
    expect(cluster.node(1).output()).toMatch(new RegExp(`delivering call-id=${literally(callId)} aor=${phone.aor}`));
  });

  it("answers node 1's caller at once when APNs says the token is unregistered, and every node forgets the device", async () => {
    const phone = await Phone.create({ transport: "tcp" });
    const token = cluster.apns.newDevice(APP_ID);
    cluster.apns.replyFor(token, { status: 410, reason: "Unregistered" });
    await registerPhone(cluster.node(2), phone, pushParams(token), { userAgent: PATIENT.userAgent });
    await everyNodeHolds(cluster, phone.aor, token);
    await nodeHoldsBinding(1, phone);

    const caller = await call(cluster.node(1), phone, "call-unavailable.xml");
    expect(caller.code, caller.output + cluster.output()).toBe(0);
    // Not held until the phone's t2 (30 s): the push failed.
    expect(caller.endedAtMs - caller.startedAtMs).toBeLessThan(PATIENT.timers.pushWaitMs / 2);
    expect(cluster.apns.requestsFor(token).map((push) => push.status)).toEqual([410]);
    await cluster.node(1).waitFor(new RegExp(`device removed aor=${phone.aor} .*token is dead`), 5000);
    for (const node of cluster.nodes) {
      await waitUntil(
        () => !htableItemOn(node.pusher, "pusher_devices", phone.aor).includes(token),
        10000,
        () =>
          `node ${node.id} to forget ${phone.aor}'s device: ${htableItemOn(node.pusher, "pusher_devices", phone.aor)}`,
        50,
      );
    }
    // As `pusher devices` shows it on the nodes that did not push.
    for (const id of [2, 3]) expect(tokensOn(id, phone.aor), `node ${id}`).toEqual([]);
    expect(cluster.postgres.query(`SELECT count(*) FROM pusher_devices WHERE aor = '${phone.aor}'`).trim()).toBe("0");
  });

  it("keeps the device on every node when APNs's 410 for node 1's push is older than the phone's REGISTER on node 2", async () => {
    const phone = await Phone.create({ transport: "tcp" });
    const token = cluster.apns.newDevice(APP_ID);
    // Apple's 410 onset is delayed: it can name a time before the phone's last REGISTER of that same token.
    cluster.apns.replyFor(token, { status: 410, reason: "Unregistered", timestamp: Date.now() - 3_600_000 });
    await registerPhone(cluster.node(2), phone, pushParams(token), { userAgent: PATIENT.userAgent });
    await everyNodeHolds(cluster, phone.aor, token);

    const caller = await call(cluster.node(1), phone, "call-unavailable.xml");
    expect(caller.code, caller.output + cluster.output()).toBe(0);
    expect(caller.endedAtMs - caller.startedAtMs).toBeLessThan(PATIENT.timers.pushWaitMs / 2); // the push failed
    await cluster.node(1).waitFor(new RegExp(`device kept aor=${phone.aor} .*registered again after that`), 5000);
    for (const node of cluster.nodes)
      expect(htableItemOn(node.pusher, "pusher_devices", phone.aor), `node ${node.id}`).toContain(token);
  });

  it("keeps the new device on every node when the phone registered a new token on node 3 before APNs answered that node 1's pushed one is dead", async () => {
    const phone = await Phone.create({ transport: "tcp" });
    const [oldToken, newToken] = [cluster.apns.newDevice(APP_ID), cluster.apns.newDevice(APP_ID)];
    // A slow APNs: its 410 for the pushed token comes after the phone's next REGISTER (with a new token).
    cluster.apns.replyFor(oldToken, { status: 410, reason: "Unregistered", afterMs: 3000 });
    const instance = "00000000-0000-0000-0000-0000000000f8";
    await registerPhone(cluster.node(2), phone, pushParams(oldToken, instance));
    await everyNodeHolds(cluster, phone.aor, oldToken);
    const callId = sharedCallId(phone);
    const caller = await call(cluster.node(1), phone, "call-cancelled.xml", { callId });
    expect(caller.code, caller.output + cluster.output()).toBe(0);
    await registerPhone(cluster.node(3), await phone.newSocket(), pushParams(newToken, instance));
    await everyNodeHolds(cluster, phone.aor, newToken);
    expect(cluster.apns.requestsFor(oldToken).map((push) => push.status)).toEqual([null]); // not answered yet
    await cluster.node(1).waitFor(new RegExp(`push failed call-id=${literally(callId)} aor=${phone.aor} `), 8000);
    expect(cluster.apns.requestsFor(oldToken).map((push) => push.status)).toEqual([410]);
    await new Promise((done) => setTimeout(done, 300)); // Kamailio's log and DMQ trail node 1's htable
    for (const node of cluster.nodes) {
      const record = htableItemOn(node.pusher, "pusher_devices", phone.aor);
      expect(record, `node ${node.id}`).toContain(newToken);
      expect(record, `node ${node.id}`).not.toContain(oldToken);
    }
    expect(cluster.node(1).output()).not.toMatch(new RegExp(`device removed aor=${phone.aor} `));
  });

  it("answers 480 on node 1 close to t2 when the phone never wakes, and no node keeps a mark of the call", async () => {
    const phone = await Phone.create({ transport: "tcp" });
    const token = cluster.apns.newDevice(APP_ID);
    await registerPhone(cluster.node(2), phone, pushParams(token), { userAgent: QUICK.userAgent }); // connection closed
    await everyNodeHolds(cluster, phone.aor, token);
    await nodeHoldsBinding(1, phone);

    const caller = await call(cluster.node(1), phone, "call-unavailable.xml");
    expect(caller.code, caller.output + cluster.output()).toBe(0);
    expect(cluster.apns.requestsFor(token)).toHaveLength(1);
    const elapsed = caller.endedAtMs - caller.startedAtMs;
    expect(elapsed).toBeGreaterThanOrEqual(QUICK.timers.pushWaitMs - 200);
    expect(elapsed).toBeLessThan(QUICK.timers.pushWaitMs + 4000);
    await noNodeMarks(phone.aor);
  });
});

describe("every node after the calls of this file", () => {
  it("logged no plugin error and keeps no call in pusher_calls", async () => {
    for (const node of cluster.nodes) {
      await waitUntil(
        () => callItems(node.pusher.rpc).length === 0,
        5000,
        () => `no call left in node ${node.id}'s pusher_calls: ${callItems(node.pusher.rpc).join(", ")}`,
        50,
      );
      expect(pluginErrorsIn(node.pusher.output()), `node ${node.id}`).toEqual([]);
    }
  });
});
