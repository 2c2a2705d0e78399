// The single-node wake scenarios beyond invite-first, with the REGISTERs and the INVITE or MESSAGE on different
// nodes (issue 14): a MESSAGE stored on node 1 reaches the phone that registers on node 3 and every node's count
// follows (test/integration/messages.test.ts on one node); the parallel and push-first strategies and Kazoo's
// X-KAZOO-PUSHER-* headers with the call on node 1 and the phones registering on nodes 2 and 3
// (strategies-and-kazoo.test.ts); the one-time registration token of a push node 1 sent, accepted once on node 2
// and refused on node 3 (auth-and-token.test.ts). sip.auth is on, as in a deployment: every phone's first REGISTER
// answers a digest challenge, a woken phone presents its push's registration token instead (PUSHER_TOKEN_SKIPS_AUTH),
// and each user is added on every node (SIP users are each node's own). Strategies come from User-Agent rules, so
// one cluster serves every scenario. Nodes on 127.0.1.x, phones and callers on 127.0.0.x
// (test/support/cluster.ts, topology.ts); the tests poll, they never time.
import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/cli/config-file";
import { runtimePaths } from "../../src/cli/kamailio-runtime";
import { addUser, parseSipUser } from "../../src/cli/users-database";
import { Cluster, everyNodeHolds, htableItemOn, startCluster } from "../support/cluster";
import { ROOT } from "../support/pusher-process";
import { runSipp, SippRun } from "../support/sipp";
import { nextAddress, Phone } from "../support/topology";
import {
  APP_ID,
  call,
  callKeys,
  kamailioCounter,
  listeningPhone,
  pushParams,
  registerAndAnswer,
  registerPhone,
  rfc8599AppleParams,
  sharedCallId,
  waitForPushes,
} from "../support/wake-fixture";
import { waitUntil } from "../support/wait-until";

const TIMERS = { inviteFirstMs: 1000, pushWaitMs: 6000, afterWakeMs: 6000 };
const PASSWORD = "phone-secret";
const PARALLEL_APP = "ParallelApp 1.0";
const PUSH_FIRST_APP = "PushFirstApp 1.0";
// Kazoo's FreeSWITCH on its own address, the one source trusted with X-KAZOO-PUSHER-* headers.
const freeswitch = nextAddress();

let cluster: Cluster;

beforeAll(async () => {
  cluster = await startCluster({
    nodes: 3,
    config: {
      timers: TIMERS,
      sip: { auth: true },
      kamailio: { defines: { PUSHER_TOKEN_SKIPS_AUTH: 1 } },
      kazoo: { trustedSources: [`${freeswitch}/32`] },
      userAgents: [
        { name: "ParallelApp", regex: "^ParallelApp", strategy: "parallel" },
        { name: "PushFirstApp", regex: "^PushFirstApp", strategy: "push-first" },
        { name: "MyMobileApp", regex: "^MyMobileApp" },
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

const run = promisify(execFile);

/** `pusher <args>` against node `id`. */
async function cli(id: number, ...args: string[]): Promise<string> {
  const { stdout } = await run(
    process.execPath,
    [join(ROOT, "dist", "cli.js"), "--config", cluster.node(id).configPath, ...args],
    { encoding: "utf8", timeout: 10_000 },
  );
  return stdout;
}

/**
 * A new phone whose SIP user exists on every node (sip.auth: each node has its own users), added as
 * `pusher users add` does, in this process (a CLI per node and user would cost seconds).
 */
async function userOnEveryNode(options: Parameters<typeof Phone.create>[0] = {}): Promise<Phone> {
  const phone = await Phone.create(options);
  for (const node of cluster.nodes) {
    const configPath = node.pusher.configPath;
    addUser(runtimePaths(configPath, loadConfig(configPath).config).usersDatabase, parseSipUser(phone.aor), PASSWORD);
  }
  return phone;
}

function credentials(phone: Phone): { user: string; password: string } {
  return { user: phone.user, password: PASSWORD };
}

/** `pusher devices <aor>`'s "messages waiting" count on node `id`. */
async function messagesWaiting(id: number, phone: Phone): Promise<number> {
  const out = await cli(id, "devices", phone.aor);
  const match = /^messages waiting: (\d+)$/m.exec(out);
  if (!match) throw new Error(`no "messages waiting" line in:\n${out}`);
  return Number(match[1]);
}

/** Resolves once every node counts `count` messages waiting for the phone's AOR, and `pusher devices` says so. */
async function everyNodeCounts(phone: Phone, count: number): Promise<void> {
  for (const node of cluster.nodes) {
    await waitUntil(
      () =>
        Number(
          /value:\s*(\d+)/.exec(htableItemOn(node.pusher, "pusher_messages", `waiting:${phone.aor}`))?.[1] ?? 0,
        ) === count,
      10000,
      () => `node ${node.id} to count ${count} messages for ${phone.aor}\n${cluster.output()}`,
    );
  }
  const shown = await Promise.all(cluster.nodes.map((node) => messagesWaiting(node.id, phone)));
  expect(shown).toEqual(cluster.nodes.map(() => count));
}

/** The one-time registration token in the first push to `token`. */
function registrationTokenOf(token: string): string {
  const body = cluster.apns.requestsFor(token)[0].body as Record<string, unknown>;
  expect(body["registration-token"]).toMatch(/^[0-9a-f-]{36}$/);
  return body["registration-token"] as string;
}

/** Resolves once node `id` holds the registration token (replicated from the node that issued it). */
async function nodeKnowsToken(id: number, registrationToken: string): Promise<void> {
  await waitUntil(
    () => cluster.node(id).rpc("htable.dump", "pusher_reg_tokens").includes(registrationToken),
    5000,
    `node ${id} to know the registration token`,
  );
}

describe("a MESSAGE stored on one node", () => {
  it("reaches the phone that registers on another node, and the count drops to 0 on every node", async () => {
    const phone = await userOnEveryNode();
    const alertToken = cluster.apns.newDevice(APP_ID, "alert");
    const uriParams = rfc8599AppleParams(alertToken);
    // Registered on node 2 from a short-lived socket: asleep.
    await registerPhone(cluster.node(2), phone, "", {
      scenario: "register-auth.xml",
      auth: credentials(phone),
      uriParams,
    });
    await everyNodeHolds(cluster, phone.aor, alertToken);

    const callId = sharedCallId(phone);
    const sent = await call(cluster.node(1), phone, "send-message-stored.xml", { callId });
    expect(sent.code, sent.output + cluster.output()).toBe(0);
    await waitForPushes(cluster.apns, alertToken, 1, 8000, cluster.node(1));
    expect((cluster.apns.requestsFor(alertToken)[0].body as Record<string, unknown>).event).toBe("message");
    await everyNodeCounts(phone, 1);

    const delivered = kamailioCounter(cluster.node(3), "messages_delivered");
    const received = await registerAndAnswer(cluster.node(3), await phone.newSocket(), "", callId, {
      scenario: "register-auth-and-receive-message.xml",
      auth: credentials(phone),
      uriParams,
    });
    expect(received.code, received.output + cluster.output()).toBe(0);
    await waitUntil(
      () => kamailioCounter(cluster.node(3), "messages_delivered") === delivered + 1,
      5000,
      () => `node 3 to count the delivery\n${cluster.output()}`,
    );
    await everyNodeCounts(phone, 0);
    expect(cluster.postgres.query(`SELECT COUNT(*) FROM pusher_messages WHERE aor = '${phone.aor}'`).trim()).toBe("0");
  });

  it("gets a count two nodes lost from the database within a sweep, and a count left over is cleared by the AOR's next REGISTER", async () => {
    // Two nodes changing one AOR's count at once can lose a change (htable replicates values, not increments):
    // here a row is written behind the nodes' backs, as if its count had been lost.
    const phone = await userOnEveryNode();
    const nowS = Math.floor(Date.now() / 1000);
    const id = sharedCallId(phone);
    cluster.postgres.query(
      "INSERT INTO pusher_messages (id, aor, stored_us, expires, call_id, from_header, to_header, content_type, body_hex) " +
        `VALUES ('${id}', '${phone.aor}', ${nowS * 1_000_000}, ${nowS + 3600}, '${id}', '<sip:sender@example.com>', ` +
        `'<sip:${phone.aor}>', 'text/plain', '6869')`,
    );
    await everyNodeCounts(phone, 1);
    // Gone behind their backs too (as a delivery whose count was lost): the count stays, never guessed down to 0
    // by a sweep, until the AOR's REGISTER finds nothing to deliver.
    cluster.postgres.query(`DELETE FROM pusher_messages WHERE aor = '${phone.aor}'`);
    await registerPhone(cluster.node(2), phone, "", { scenario: "register-auth.xml", auth: credentials(phone) });
    await everyNodeCounts(phone, 0);
  });
});

describe("the parallel strategy", () => {
  it("rings the phone registered on node 2 while the one asleep is pushed, forks to it when it wakes on node 3, and cancels the first when it answers", async () => {
    const ringing = await userOnEveryNode();
    const sleeping = await Phone.create({ user: ringing.user });
    const [ringingToken, sleepingToken] = [cluster.apns.newDevice(APP_ID), cluster.apns.newDevice(APP_ID)];
    const ringingParams = pushParams(ringingToken, "00000000-0000-0000-0000-0000000000d1");
    const sleepingParams = pushParams(sleepingToken, "00000000-0000-0000-0000-0000000000d2");
    const auth = credentials(ringing);
    await registerPhone(cluster.node(2), ringing, ringingParams, {
      scenario: "register-auth.xml",
      auth,
      userAgent: PARALLEL_APP,
    });
    await registerPhone(cluster.node(3), sleeping, sleepingParams, {
      scenario: "register-auth.xml",
      auth,
      userAgent: PARALLEL_APP,
    });
    await everyNodeHolds(cluster, ringing.aor, ringingToken);
    await everyNodeHolds(cluster, ringing.aor, sleepingToken);

    const rings = await listeningPhone(cluster.node(2), ringing, "ring-until-cancelled.xml");
    const callId = sharedCallId(ringing);
    const caller = call(cluster.node(1), ringing, "call-answered.xml", { callId });
    // Pushed at once although registered: parallel does not wait for t1.
    await waitForPushes(cluster.apns, sleepingToken, 1, 8000, cluster.node(1));
    const registrationToken = registrationTokenOf(sleepingToken);
    await nodeKnowsToken(3, registrationToken);
    // It wakes on a new socket (its first binding's INVITE retransmissions go to the old one) and registers on node 3.
    const woken = await sleeping.newSocket();
    const answering = await listeningPhone(cluster.node(3), woken, "answer.xml");
    await registerPhone(cluster.node(3), woken, sleepingParams, {
      scenario: "register-token.xml",
      keys: { token: registrationToken },
      userAgent: PARALLEL_APP,
    });

    const [result, answered, cancelled] = await Promise.all([caller, answering.run, rings.run]);
    expect(result.code, result.output + cluster.output()).toBe(0);
    expect(answered.code, answered.output + cluster.output()).toBe(0);
    expect(cancelled.code, cancelled.output + cluster.output()).toBe(0); // its CANCEL carried Reason: SIP;cause=200
    expect(cluster.node(1).output()).toMatch(new RegExp(`forking call-id=${callId} aor=${ringing.aor} to it`));
    expect(cluster.apns.requestsFor(sleepingToken)).toHaveLength(1);
  });
});

describe("the push-first strategy", () => {
  it("pushes the phone registered on node 2 (TCP) at once and forwards the call only after it registers on node 3", async () => {
    const phone = await userOnEveryNode({ transport: "tcp" });
    const token = cluster.apns.newDevice(APP_ID);
    await registerPhone(cluster.node(2), phone, pushParams(token), {
      scenario: "register-auth.xml",
      auth: credentials(phone),
      userAgent: PUSH_FIRST_APP,
    });
    await everyNodeHolds(cluster, phone.aor, token);

    const callId = sharedCallId(phone);
    const caller = call(cluster.node(1), phone, "call-answered.xml", { callId });
    await waitForPushes(cluster.apns, token, 1, 8000, cluster.node(1));
    await new Promise((done) => setTimeout(done, 500));
    expect(cluster.node(1).output()).not.toMatch(new RegExp(`delivering call-id=\\S+ aor=${phone.aor}`));
    const registrationToken = registrationTokenOf(token);
    await nodeKnowsToken(3, registrationToken);
    // The token as Kazoo's Contact param (the header form is the registration token test's).
    const answered = await registerAndAnswer(
      cluster.node(3),
      await phone.newSocket(),
      `${pushParams(token)};x-token-reg=${registrationToken}`,
      callId,
      { userAgent: PUSH_FIRST_APP },
    );
    expect(answered.code, answered.output + cluster.output()).toBe(0);
    const result = await caller;
    expect(result.code, result.output + cluster.output()).toBe(0);
    expect(cluster.node(1).output()).toMatch(new RegExp(`delivering call-id=${callId} aor=${phone.aor}`));
  });
});

describe("Kazoo drop-in mode", () => {
  /** FreeSWITCH calls `phone`'s AOR on node 1 with the X-KAZOO-PUSHER-* headers of `token`. */
  function kazooCall(scenario: string, phone: Phone, token: string, pushTimeoutMs: number): Promise<SippRun> {
    return runSipp({
      scenario,
      remotePort: cluster.node(1).sipPort,
      remoteHost: cluster.node(1).sipHost,
      localIp: freeswitch,
      keys: { ...callKeys(phone), token, app: APP_ID, account_ref: "acct-42", push_timeout: String(pushTimeoutMs) },
    });
  }

  it("pushes the token X-KAZOO-PUSHER-* headers name from node 1, and the app that wakes on node 2 gets the call without them", async () => {
    const phone = await Phone.create(); // no SIP user: its token is its only credential
    const token = cluster.apns.newDevice(APP_ID);
    const caller = kazooCall("call-kazoo.xml", phone, token, 5000);
    await waitForPushes(cluster.apns, token, 1, 8000, cluster.node(1));
    const [push] = cluster.apns.requestsFor(token);
    expect((push.body as Record<string, unknown>)["account-ref"]).toBe("acct-42");
    expect(push.headers["apns-topic"]).toBe(`${APP_ID}.voip`);
    const registrationToken = registrationTokenOf(token);
    await nodeKnowsToken(2, registrationToken);
    // The woken app listens on its port and registers with no push params; answer.xml fails on an X-KAZOO header.
    const answering = await listeningPhone(cluster.node(2), phone, "answer.xml");
    await registerPhone(cluster.node(2), phone, "", {
      scenario: "register-token.xml",
      keys: { token: registrationToken },
    });
    const result = await caller;
    expect(result.code, result.output + cluster.output()).toBe(0);
    const answered = await answering.run;
    expect(answered.code, answered.output + cluster.output()).toBe(0);
    expect(cluster.node(1).output()).toMatch(new RegExp(`delivering call-id=\\S+ aor=${phone.aor}`));
  });

  it("obeys X-KAZOO-PUSHER-Push-Timeout on node 1, and the call's mark is gone from every node after", async () => {
    const phone = await Phone.create();
    const token = cluster.apns.newDevice(APP_ID);
    const caller = await kazooCall("call-kazoo-unavailable.xml", phone, token, 1500);
    expect(caller.code, caller.output + cluster.output()).toBe(0);
    expect(cluster.apns.requestsFor(token)).toHaveLength(1);
    expect(caller.endedAtMs - caller.startedAtMs).toBeGreaterThanOrEqual(1300);
    expect(caller.endedAtMs - caller.startedAtMs).toBeLessThan(5000);
    for (const node of cluster.nodes) {
      await waitUntil(
        () => !node.pusher.rpc("htable.dump", "pusher_cluster_calls").includes(phone.aor),
        5000,
        `node ${node.id} to drop the mark of ${phone.aor}`,
      );
    }
  });
});

describe("the one-time registration token of a push node 1 sent", () => {
  it("is refused on node 3 for another AOR, accepted once on node 2, and refused when replayed on node 3", async () => {
    const phone = await userOnEveryNode();
    const other = await userOnEveryNode();
    const token = cluster.apns.newDevice(APP_ID);
    await registerPhone(cluster.node(2), phone, pushParams(token), {
      scenario: "register-auth.xml",
      auth: credentials(phone),
    });
    await everyNodeHolds(cluster, phone.aor, token);
    const callId = sharedCallId(phone);
    const caller = call(cluster.node(1), phone, "call-answered.xml", { callId });
    await waitForPushes(cluster.apns, token, 1, 8000, cluster.node(1));
    const registrationToken = registrationTokenOf(token);
    await nodeKnowsToken(3, registrationToken);

    const tokenKeys = { token: registrationToken };
    // Another AOR: challenged like any REGISTER; the token stays valid for its own.
    await registerPhone(cluster.node(3), other, "", { scenario: "register-token-refused.xml", keys: tokenKeys });
    await cluster.node(3).waitFor(new RegExp(`registration token \\S+ refused for aor=${other.aor}`), 5000);

    const woken = await phone.newSocket();
    const answering = await listeningPhone(cluster.node(2), woken, "answer.xml");
    await registerPhone(cluster.node(2), woken, pushParams(token), { scenario: "register-token.xml", keys: tokenKeys });
    await cluster.node(2).waitFor(new RegExp(`registration token accepted for aor=${phone.aor}`), 5000);
    const result = await caller;
    expect(result.code, result.output + cluster.output()).toBe(0); // the held call reached the woken phone
    const answered = await answering.run;
    expect(answered.code, answered.output + cluster.output()).toBe(0);

    // Replayed on node 3: challenged, as a token used once is gone from every node.
    await registerPhone(cluster.node(3), woken, pushParams(token), {
      scenario: "register-token-refused.xml",
      keys: tokenKeys,
    });
    await cluster.node(3).waitFor(new RegExp(`registration token \\S+ refused for aor=${phone.aor}`), 5000);
  });
});
