// Wake on any node (issue 14, "Wake on any node"): the call is held on the node the caller reached, the woken phone
// registers on another one, and the call still reaches it — through the node it registered on, over its own
// connection (behind NAT, on TCP). No affinity: every test registers on one node and calls on another. Late forks,
// CANCEL and the call-ended push work across nodes too, and a REGISTER on a node with no call waiting anywhere
// sends nothing. Nodes on 127.0.1.x, phones and callers on 127.0.0.x (test/support/cluster.ts, topology.ts).
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { Cluster, startCluster } from "../support/cluster";
import { callState } from "../support/kamailio-checks";
import { runSipp } from "../support/sipp";
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
/** Team id of the RFC 8599 (Linphone) bindings of APP_ID. */
const TEAM_ID = "ABCDE12345";

let cluster: Cluster;

beforeAll(async () => {
  cluster = await startCluster({ nodes: 3, config: { timers: TIMERS } });
}, 60000);

afterAll(async () => {
  await cluster?.stop();
});

beforeEach(() => {
  cluster.apns.requests.length = 0;
});

/** Resolves once every node lists the AOR's device with `token` (replicated records: the tests poll). */
async function everyNodeKnows(aor: string, token: string): Promise<void> {
  for (const node of cluster.nodes) {
    await waitUntil(
      () => cluster.devices(node.id, aor).some((device) => device.token === token),
      10000,
      () => `node ${node.id} to list ${aor}'s device\n${cluster.output()}`,
    );
  }
}

/** The plugin's cluster counters (pusher_stats) of node `id`. */
function wakes(id: number): { sent: number; received: number; failures: number } {
  const node = cluster.node(id);
  return {
    sent: kamailioCounter(node, "cluster_wakes_sent"),
    received: kamailioCounter(node, "cluster_wakes_received"),
    failures: kamailioCounter(node, "cluster_dmq_failures"),
  };
}

describe("a phone that wakes on another node than the one that holds its call", () => {
  it.each([
    ["behind NAT (UDP)", { nat: true }],
    ["on TCP (its connection closed while asleep)", { transport: "tcp" as const }],
  ])("%s: registered on node 2, called on node 1, wakes on node 3 and answers through node 3", async (_, options) => {
    const phone = await Phone.create(options);
    const token = cluster.apns.newDevice(APP_ID);
    const params = pushParams(token);
    await registerPhone(cluster.node(2), phone, params); // its NAT mapping / connection is gone right after: asleep
    await everyNodeKnows(phone.aor, token);
    const before = { 1: wakes(1), 3: wakes(3) };

    const callId = sharedCallId(phone);
    const caller = call(cluster.node(1), phone, "call-answered.xml", { callId });
    await waitForPushes(cluster.apns, token, 1, 8000, cluster.node(1));
    // The push's one-time registration token is valid on every node: the woken phone may present it to any.
    const registrationToken = (cluster.apns.requestsFor(token)[0].body as Record<string, unknown>)[
      "registration-token"
    ] as string;
    expect(registrationToken).toMatch(/^[0-9a-f-]{36}$/);
    await waitUntil(
      () => cluster.node(3).rpc("htable.dump", "pusher_reg_tokens").includes(registrationToken),
      5000,
      `node 3 to know the registration token`,
    );
    const answered = await registerAndAnswer(cluster.node(3), await phone.newSocket(), params, callId);
    expect(answered.code, answered.output + cluster.output()).toBe(0);
    const result = await caller;
    expect(result.code, result.output + cluster.output()).toBe(0);

    expect(cluster.node(1).output()).toMatch(new RegExp(`delivering call-id=${callId} aor=${phone.aor}`));
    expect(wakes(3).sent).toBe(before[3].sent + 1);
    expect(wakes(1).received).toBe(before[1].received + 1);
    expect(wakes(3).failures + wakes(1).failures).toBe(before[3].failures + before[1].failures);
    // Delivered and answered: node 1 keeps nothing of the call, and its mark of the AOR is gone on every node.
    await waitUntil(
      () => !callState(cluster.node(1).rpc).includes(callId),
      5000,
      `no item of ${callId} in node 1's pusher_calls`,
    );
    for (const node of cluster.nodes) {
      await waitUntil(
        () => !node.pusher.rpc("htable.dump", "pusher_cluster_calls").includes(phone.aor),
        5000,
        `node ${node.id} to drop the mark of ${phone.aor}`,
      );
      // The token died with its call, on every node.
      await waitUntil(
        () => !node.pusher.rpc("htable.dump", "pusher_reg_tokens").includes(registrationToken),
        5000,
        `node ${node.id} to forget the registration token`,
      );
    }
  });

  it("forks a ringing call to a second phone of the AOR that wakes on a third node, and cancels it when the first answers", async () => {
    // A: behind NAT, wakes on node 2 and rings 1.5 s before it answers. B: wakes on node 3 while A rings: forked by
    // node 1 (tsilo) through node 3, then cancelled.
    const phoneA = await Phone.create({ nat: true });
    const phoneB = await Phone.create({ user: phoneA.user });
    const [tokenA, tokenB] = [cluster.apns.newDevice(APP_ID), cluster.apns.newDevice(APP_ID)];
    const paramsA = pushParams(tokenA, "00000000-0000-0000-0000-0000000000c1");
    const instanceB = `;+sip.instance="<urn:uuid:00000000-0000-0000-0000-0000000000c2>"`;
    const uriParamsB = `;app-id=${APP_ID};pn-tok=${tokenB};pn-type=apple`;
    await registerPhone(cluster.node(2), phoneA, paramsA);
    await registerPhone(cluster.node(3), phoneB, instanceB, { uriParams: uriParamsB });
    await everyNodeKnows(phoneA.aor, tokenA);
    await everyNodeKnows(phoneA.aor, tokenB);

    const callId = sharedCallId(phoneA);
    const caller = call(cluster.node(1), phoneA, "call-answered.xml", { callId });
    await waitForPushes(cluster.apns, tokenA, 1, 8000, cluster.node(1));
    await waitForPushes(cluster.apns, tokenB, 1, 8000, cluster.node(1));
    const wokenA = registerAndAnswer(cluster.node(2), await phoneA.newSocket(), paramsA, callId, {
      scenario: "register-and-answer-late.xml",
    });
    await cluster.node(1).waitFor(new RegExp(`delivering call-id=${callId} aor=${phoneA.aor}`));
    const wokenB = await phoneB.newSocket();
    const ringingB = await listeningPhone(cluster.node(3), wokenB, "ring-until-cancelled.xml");
    await registerPhone(cluster.node(3), wokenB, instanceB, { uriParams: uriParamsB });

    const [result, a, b] = await Promise.all([caller, wokenA, ringingB.run]);
    expect(result.code, result.output + cluster.output()).toBe(0);
    expect(a.code, a.output).toBe(0);
    expect(b.code, b.output + cluster.output()).toBe(0); // no push param in its R-URI; its CANCEL carried Reason: SIP;cause=200
    expect(cluster.node(1).output()).toMatch(new RegExp(`forking call-id=${callId} aor=${phoneA.aor} to it`));
  });

  it("ends a held call the caller cancels on node 1, tells the phone, and a later REGISTER on node 3 sends nothing", async () => {
    // Linphone's two-token binding: the call goes to the PushKit token, the missed-call notice to the alert token.
    const phone = await Phone.create({ transport: "tcp" });
    const [alertToken, voip] = [cluster.apns.newDevice(APP_ID, "alert"), cluster.apns.newDevice(APP_ID, "voip")];
    const uriParams = `;pn-provider=apns;pn-prid=${alertToken}:remote&${voip}:voip;pn-param=${TEAM_ID}.${APP_ID}.remote&voip`;
    await registerPhone(cluster.node(2), phone, "", { uriParams });
    await everyNodeKnows(phone.aor, voip);

    const caller = await call(cluster.node(1), phone, "call-cancelled.xml");
    expect(caller.code, caller.output + cluster.output()).toBe(0);
    await waitForPushes(cluster.apns, alertToken, 1, 5000, cluster.node(1));
    expect((cluster.apns.requestsFor(alertToken)[0].body as Record<string, unknown>).event).toBe("call-cancelled");
    for (const node of cluster.nodes) {
      await waitUntil(
        () => !node.pusher.rpc("htable.dump", "pusher_cluster_calls").includes(phone.aor),
        5000,
        `node ${node.id} to drop the mark of ${phone.aor}`,
      );
    }

    const before = wakes(3);
    await registerPhone(cluster.node(3), await phone.newSocket(), "", { uriParams });
    await new Promise((done) => setTimeout(done, 500)); // Kamailio's log trails the REGISTER's 200
    expect(wakes(3)).toEqual(before);
    for (const node of cluster.nodes)
      expect(node.pusher.output()).not.toMatch(new RegExp(`delivering call-id=\\S+ aor=${phone.aor}`));
  });
  it("ends on node 1 with 480 at once the held call of a pushed phone whose REGISTER fails on node 3 (RFC 8599 §5.6.2)", async () => {
    const phone = await Phone.create({ transport: "tcp" });
    const token = cluster.apns.newDevice(APP_ID);
    await registerPhone(cluster.node(2), phone, pushParams(token)); // its connection closed: pushed at once
    await everyNodeKnows(phone.aor, token);
    const caller = call(cluster.node(1), phone, "call-unavailable.xml");
    await waitForPushes(cluster.apns, token, 1, 8000, cluster.node(1));
    const startedAt = Date.now();
    // q=5 is out of range: node 3's registrar refuses the REGISTER with 400, after the plugin's hooks ran.
    const woken = await phone.newSocket();
    const failed = await runSipp({
      scenario: "register.xml",
      remotePort: cluster.node(3).sipPort,
      remoteHost: cluster.nodes[2].host,
      localIp: woken.address,
      localPort: woken.port,
      transport: woken.transport,
      keys: woken.keys({ contact: woken.contact(`;q=5${pushParams(token)}`) }),
    });
    expect(failed.code).not.toBe(0);
    const result = await caller;
    expect(result.code, result.output + cluster.output()).toBe(0);
    expect(result.endedAtMs - startedAt).toBeLessThan(TIMERS.pushWaitMs / 2); // t2 would end it later
    expect(cluster.node(1).output()).toMatch(
      /REGISTER of a pushed phone failed with \S+ on another node: ending held call-id=/,
    );
  });
});
