// The slow failures of a cluster (issue 14, "Node failures"; docs/cluster.md, "Failures" and "Database"), on three
// real nodes and a real PostgreSQL (test/support/cluster.ts): the device database stopped under a running cluster
// (every REGISTER is still answered, the records replicate, and the rows are written when it is back), every
// node killed at once (the records come back from the database, and calls are pushed again), and a node restarted
// with 20 000 records (it takes the other nodes' copy, and does not send each record it loads back to them). The tests
// run in order on one cluster. Nodes on 127.0.1.x, phones and callers on 127.0.0.x; the tests poll, never time.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { DeviceRecord } from "../../src/device-record";
import { Cluster, startCluster } from "../support/cluster";
import { seedPostgresDeviceRows } from "../support/seed-devices";
import { DOMAIN, Phone } from "../support/topology";
import {
  APP_ID,
  call,
  kamailioCounter,
  pushParams,
  registerAndAnswer,
  registerPhone,
  sharedCallId,
  waitForPushes,
} from "../support/wake-fixture";
import { waitUntil as pollUntil } from "../support/wait-until";

// Every 100 ms: the checks spawn psql, kamcmd or the CLI.
const waitUntil = (check: () => boolean, timeoutMs: number, what: string | (() => string)) =>
  pollUntil(check, timeoutMs, what, 100);

const TIMERS = { inviteFirstMs: 1000, pushWaitMs: 8000, afterWakeMs: 6000 };
// npm test runs this file too (vitest.config.ts leaves out *.long.test.ts only), where a test has 60 s unless it says.
/** How soon a REGISTER is answered while the database is down (sipp's run, its own start included). */
const ANSWER_MS = 5000;

let cluster: Cluster;

beforeAll(async () => {
  cluster = await startCluster({ nodes: 3, config: { timers: TIMERS } });
}, 60000);

afterAll(async () => {
  await cluster?.stop();
});

interface PushPhone {
  phone: Phone;
  token: string;
  params: string;
}

let phones = 0;

/** A sleeping phone of APP_ID with its own +sip.instance (a wake-up REGISTER changes its one device record). */
async function pushPhone(options: { user?: string } = {}): Promise<PushPhone> {
  const token = cluster.apns.newDevice(APP_ID);
  phones += 1;
  const instance = `00000000-0000-0000-0000-${String(phones).padStart(12, "0")}`;
  return { phone: await Phone.create(options), token, params: pushParams(token, instance) };
}

/** Resolves once each of `ids` lists the device with `token` of `aor`. */
async function nodesKnow(ids: number[], aor: string, token: string): Promise<void> {
  for (const id of ids) {
    await waitUntil(
      () => cluster.devices(id, aor).some((device) => device.token === token),
      10000,
      () => `node ${id} to list ${aor}'s device\n${cluster.output()}`,
    );
  }
}

/** The device table's row of `aor` (its devices' JSON), "" when it has none. */
function rowOf(aor: string): string {
  return cluster.postgres.query(`SELECT devices FROM pusher_devices WHERE aor = '${aor}'`).trim();
}

/**
 * A REGISTER of `phone` on node `id`, answered 200 within ANSWER_MS: a node whose database is down must not make it
 * wait for it (a refused connection fails at once; docs/cluster.md bounds a hanging one).
 */
async function registerPromptly(id: number, phone: PushPhone): Promise<void> {
  const run = await registerPhone(cluster.node(id), phone.phone, phone.params);
  expect(run.endedAtMs - run.startedAtMs, `node ${id}'s answer to the REGISTER of ${phone.phone.aor}`).toBeLessThan(
    ANSWER_MS,
  );
}

/** Node `id`'s gauge pusher_devices_unsaved: AORs it changed while the database did not answer. */
function unsaved(id: number): number {
  return kamailioCounter(cluster.node(id), "devices_unsaved");
}

describe("PostgreSQL stopped while the cluster runs", () => {
  it("answers REGISTERs on every node, replicates their records, and writes every row when PostgreSQL is back", async () => {
    cluster.postgres.down();
    // One phone per node, and one AOR with a device registered on node 1 and another on node 2.
    const single = [await pushPhone(), await pushPhone(), await pushPhone()];
    for (const [index, phone] of single.entries()) await registerPromptly(index + 1, phone);
    const first = await pushPhone();
    const second = await pushPhone({ user: first.phone.user });
    await registerPromptly(1, first);
    await nodesKnow([2], first.phone.aor, first.token);
    await registerPromptly(2, second);

    for (const { phone, token } of [...single, first, second]) await nodesKnow([1, 2, 3], phone.aor, token);
    for (const id of [1, 2, 3]) expect(unsaved(id), `node ${id}'s unsaved AORs`).toBeGreaterThan(0);

    cluster.postgres.up();
    await waitUntil(
      () =>
        single.every(({ phone, token }) => rowOf(phone.aor).includes(token)) &&
        [first, second].every(({ token }) => rowOf(first.phone.aor).includes(token)),
      15000,
      () =>
        `every row written:\n${cluster.postgres.query("SELECT aor, devices FROM pusher_devices ORDER BY aor")}\n${cluster.output()}`,
    );
    for (const id of [1, 2, 3])
      await waitUntil(
        () => unsaved(id) === 0,
        10000,
        () => `node ${id} to have written everything: ${unsaved(id)} AORs unsaved`,
      );
  }, 120000);
});

describe("every node killed at once", () => {
  it("brings every record back from the database on the first node started, then on the others, and pushes a sleeping phone's call again", async () => {
    const sleeper = await pushPhone();
    await registerPhone(cluster.node(2), sleeper.phone, sleeper.params);
    await nodesKnow([1, 2, 3], sleeper.phone.aor, sleeper.token);
    const before = cluster.devices(1);
    for (const id of [2, 3])
      await waitUntil(
        () => JSON.stringify(cluster.devices(id)) === JSON.stringify(before),
        10000,
        () => `node ${id} to list what node 1 lists`,
      );
    expect(before, "the devices registered while the database was down, and the sleeper").toHaveLength(6);

    await Promise.all([1, 2, 3].map((id) => cluster.crash(id)));
    // Node 1 alone: no other node to sync from, so everything it lists came from the database.
    await cluster.restart(1);
    await waitUntil(
      () => JSON.stringify(cluster.devices(1)) === JSON.stringify(before),
      10000,
      () => `node 1 to list every record again:\n${JSON.stringify(cluster.devices(1))}\n${JSON.stringify(before)}`,
    );
    await Promise.all([cluster.restart(2), cluster.restart(3)]);
    for (const id of [2, 3])
      await waitUntil(
        () => JSON.stringify(cluster.devices(id)) === JSON.stringify(before),
        10000,
        () => `node ${id} to list every record again`,
      );

    // Called on node 2 (bindings are gone or name dead sockets: the phone sleeps): pushed, and delivered when it
    // wakes on node 3.
    cluster.apns.requests.length = 0;
    const callId = sharedCallId(sleeper.phone);
    const caller = call(cluster.node(2), sleeper.phone, "call-answered.xml", { callId });
    await waitForPushes(cluster.apns, sleeper.token, 1, 8000, cluster.node(2));
    const answered = await registerAndAnswer(cluster.node(3), await sleeper.phone.newSocket(), sleeper.params, callId);
    expect(answered.code, answered.output + cluster.output()).toBe(0);
    const result = await caller;
    expect(result.code, result.output + cluster.output()).toBe(0);
  }, 120000);
});

describe("a node restarted in a cluster with many records", () => {
  // 20 000 rows. htable replicates every item a load writes (a KDMQ request to each other node: 7 024 requests here
  // when the load ran at once, racing the copy); the restarted node waits for the other nodes' full copy (htable
  // dmq_init_sync) and loads only what memory lacks (docs/cluster.md, "Failures").
  const SEEDED = 20000;

  /** Local transactions node `id`'s tm created (every KDMQ request it sent: replication, DMQ's own, the plugin's). */
  function requestsSent(id: number): number {
    const line = cluster.node(id).rpc("stats.get_statistics", "UAC_transactions");
    return Number(/UAC_transactions\s*=\s*(\d+)/.exec(line)?.[1] ?? NaN);
  }

  /** Items (AORs) in node `id`'s htable pusher_devices (`pusher devices` cannot dump 20 000 over kamcmd). */
  function aorsOn(id: number): number {
    const stats = cluster.node(id).rpc("htable.stats");
    return Number(/name:\s*pusher_devices\s+slots:\s*\d+\s+all:\s*(\d+)/.exec(stats)?.[1] ?? NaN);
  }

  it("takes the other nodes' copy of the records and sends them almost nothing", async () => {
    // The seeded rows copy a record the plugin wrote for a real REGISTER.
    const model = await pushPhone();
    await registerPhone(cluster.node(1), model.phone, model.params);
    await waitUntil(() => rowOf(model.phone.aor) !== "", 10000, "the model phone's row");
    const template = Object.values(JSON.parse(rowOf(model.phone.aor)) as Record<string, DeviceRecord>)[0];
    await seedPostgresDeviceRows(cluster.postgres, { prefix: "seeded", count: SEEDED, domain: DOMAIN, template });
    const loaded = /device records loaded from the database: (\d+) devices/;

    // Every node loads the rows: node 1 alone, from the database, then the others.
    await Promise.all([1, 2, 3].map((id) => cluster.crash(id)));
    await cluster.restart(1);
    await cluster.node(1).waitFor(loaded, 30000);
    await Promise.all([cluster.restart(2), cluster.restart(3)]);
    for (const id of [2, 3]) await cluster.node(id).waitFor(loaded, 30000);
    const everyAor = aorsOn(1);
    expect(everyAor).toBeGreaterThan(SEEDED);

    await cluster.crash(3);
    await cluster.restart(3);
    await cluster.node(3).waitFor(loaded, 30000);
    expect(aorsOn(3), "the restarted node's AORs").toBe(everyAor);
    // The notifications and sync requests of DMQ, htable and dmq_usrloc: a few dozen at most.
    expect(requestsSent(3), "KDMQ requests the restarted node sent").toBeLessThan(200);
  }, 180000);
});
