// Three nodes share what one REGISTER stores (issue 14, "Shared device records" and "Locations reach every node"):
// its push device (the records in PostgreSQL, replicated to every node's htable) and its binding (dmq_usrloc),
// which names the node the phone is connected to in its Path. A call another node takes reaches an awake phone
// through that node, on the phone's own connection: behind NAT over UDP, and over TCP; a call the phone's own node
// takes goes to it directly (the node skips its own Path). Nodes on 127.0.1.x, phones
// and callers on 127.0.0.x (test/support/cluster.ts, topology.ts); the tests poll, they never time.
import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bindingsOn, Cluster, startCluster } from "../support/cluster";
import { ROOT } from "../support/pusher-process";
import { Phone } from "../support/topology";
import { call, pushParams, registerAndAnswer, registerPhone, sharedCallId, voipToken } from "../support/wake-fixture";
import { waitUntil } from "../support/wait-until";

let cluster: Cluster;

beforeAll(async () => {
  cluster = await startCluster({ nodes: 3 });
}, 60000);

afterAll(async () => {
  await cluster?.stop();
});

/** Node `id`'s usrloc bindings of `aor`, "" while it has none. */
function bindings(id: number, aor: string): string {
  return bindingsOn(cluster.node(id), aor);
}

const literally = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/**
 * The Path of a binding saved on node `id`: the node's SIP socket for a phone on UDP, its DMQ address for one on TCP
 * (kamailio.cfg route PATH_TO_THIS_NODE); with the address the phone sent from (any port of it) when the node must
 * reach it there: behind NAT, or on its connection. A phone on UDP not behind NAT is reached at its Contact.
 */
function pathOf(id: number, phone: Phone): RegExp {
  const node = cluster.nodes[id - 1];
  const hop =
    phone.transport === "udp"
      ? `sip:${node.host}:${node.pusher.sipPort};transport=udp`
      : `sip:${node.host}:${node.dmqPort}`;
  if (phone.transport === "udp" && !phone.nat) return new RegExp(`Path: ${literally(`<${hop};lr>`)}`);
  const transport = phone.transport === "udp" ? "" : literally(`%3Btransport%3D${phone.transport}`);
  return new RegExp(`Path: ${literally(`<${hop};lr;received=sip:${phone.address}:`)}\\d+${transport}>`);
}

/** A core counter of node `id` (kamcmd stats.get_statistics), e.g. rcv_requests_invite. */
function coreCounter(id: number, name: string): number {
  return Number(
    new RegExp(`core:${name} = (\\d+)`).exec(cluster.node(id).rpc("stats.get_statistics", name))?.[1] ?? -1,
  );
}

describe("a cluster of three nodes", () => {
  it("lists a device registered on node 2 in `pusher devices` on nodes 1 and 3, and has its binding on node 1 with node 2's Path", async () => {
    const phone = await Phone.create();
    const token = voipToken(cluster.apns);
    await registerPhone(cluster.node(2), phone, pushParams(token));

    for (const id of [1, 3]) {
      await waitUntil(
        () => cluster.devices(id, phone.aor).some((device) => device.token === token),
        10000,
        () => `node ${id} to list ${phone.aor}'s device\n${cluster.output()}`,
      );
    }
    expect(cluster.devices(1, phone.aor)).toEqual(cluster.devices(2, phone.aor));
    // The record is in the database the nodes share, which node 2 logged into with the password of its pgpass file:
    // no Kamailio's command line (what `ps` shows everyone) has it.
    expect(cluster.postgres.query(`SELECT count(*) FROM pusher_devices WHERE aor = '${phone.aor}'`).trim()).toBe("1");
    const password = decodeURIComponent(new URL(cluster.postgres.url).password);
    const kamailios = execFileSync("ps", ["-eo", "args"], { encoding: "utf8" })
      .split("\n")
      .filter((line) => line.startsWith("kamailio") && line.includes(cluster.node(2).dir));
    expect(kamailios.length).toBeGreaterThan(0);
    for (const line of kamailios) expect(line).not.toContain(password);
    await waitUntil(
      () => bindings(1, phone.aor).includes(phone.contactUser),
      10000,
      () => `node 1 to hold ${phone.aor}'s binding`,
    );
    const binding = bindings(1, phone.aor);
    expect(binding).toContain(`Address: sip:${phone.contactUser}@${phone.advertisedAddress};transport=udp`);
    expect(binding).toMatch(pathOf(2, phone));
    // Node 2 keeps it too, with the socket the REGISTER came in on; node 1 has none of node 2's sockets.
    expect(bindings(2, phone.aor)).toContain(`Socket: udp:${cluster.node(2).sipHost}:${cluster.node(2).sipPort}`);
    expect(binding).toContain("Socket: [not set]");
  });

  it.each([
    ["behind NAT, over UDP", { nat: true, transport: "udp" as const }],
    ["over TCP", { nat: false, transport: "tcp" as const }],
  ])(
    "relays a call node 1 takes to an awake phone on node 2 %s through node 2, ACK and BYE included",
    async (_label, shape) => {
      const phone = await Phone.create(shape);
      const callId = sharedCallId(phone);
      const before = {
        invite: coreCounter(2, "rcv_requests_invite"),
        ack: coreCounter(2, "rcv_requests_ack"),
        bye: coreCounter(2, "rcv_requests_bye"),
      };
      // The phone registers on node 2 from its own socket and answers there; the call goes to node 1 once node 1
      // holds the binding.
      const answered = registerAndAnswer(cluster.node(2), phone, pushParams(voipToken(cluster.apns)), callId);
      await waitUntil(
        () => bindings(1, phone.aor).includes(phone.contactUser),
        10000,
        () => `node 1 to hold ${phone.aor}'s binding\n${cluster.output()}`,
      );
      const caller = await call(cluster.node(1), phone, "call-answered.xml", { callId });
      const phoneRun = await answered;

      expect(caller.code, caller.output + cluster.output()).toBe(0);
      // register-and-answer.xml ends with the caller's BYE answered: the INVITE, the ACK and the BYE reached it.
      expect(phoneRun.code, phoneRun.output).toBe(0);
      // Each went through node 2 (the phone's node), by the Path of the phone's binding on node 1, which also has
      // the NAT branch flag (FLB_NATB, 1 << 6) of a NATed phone's binding.
      expect(bindings(1, phone.aor)).toMatch(pathOf(2, phone));
      if (shape.nat) expect(bindings(1, phone.aor)).toMatch(/CFlags: 64\b/);
      expect(coreCounter(2, "rcv_requests_invite")).toBeGreaterThan(before.invite);
      expect(coreCounter(2, "rcv_requests_ack")).toBeGreaterThan(before.ack);
      expect(coreCounter(2, "rcv_requests_bye")).toBeGreaterThan(before.bye);
    },
  );

  it("delivers a call node 2 takes to its own phone behind NAT directly, skipping the node's own Path", async () => {
    const phone = await Phone.create({ nat: true });
    const callId = sharedCallId(phone);
    const before = coreCounter(2, "rcv_requests_invite");
    const answered = registerAndAnswer(cluster.node(2), phone, pushParams(voipToken(cluster.apns)), callId);
    await waitUntil(
      () => bindings(2, phone.aor).includes(phone.contactUser),
      10000,
      `node 2 to hold ${phone.aor}'s binding`,
    );
    const caller = await call(cluster.node(2), phone, "call-answered.xml", { callId });
    expect(caller.code, caller.output + cluster.output()).toBe(0);
    expect((await answered).code).toBe(0);
    // One INVITE, the caller's: node 2 did not route it to itself through its Path (registrar path_check_local).
    expect(coreCounter(2, "rcv_requests_invite")).toBe(before + 1);
  });

  it("passes `pusher check` on any node: the shared database is reachable and DMQ sees every peer active", () => {
    for (const node of cluster.nodes) {
      // The node's own config without its apps: the mock providers are not what this checks.
      const config = JSON.parse(readFileSync(node.pusher.configPath, "utf8"));
      const configPath = join(dirname(node.pusher.configPath), "check.json");
      writeFileSync(configPath, JSON.stringify({ ...config, apps: {} }));
      const out = execFileSync(process.execPath, [join(ROOT, "dist", "cli.js"), "--config", configPath, "check"], {
        encoding: "utf8",
        timeout: 60_000,
      });
      expect(out).toMatch(
        new RegExp(
          `^ok   cluster: node ${node.id} of 3, DMQ on udp:${node.host}:${node.dmqPort}; PostgreSQL 127\\.0\\.0\\.1:${cluster.postgres.port} reachable; DMQ sees every peer active`,
          "m",
        ),
      );
    }
  });

  it("counts on each node, in `pusher metrics`, the cross-node wakes and DMQ failures (none yet)", () => {
    const out = execFileSync(
      process.execPath,
      [join(ROOT, "dist", "cli.js"), "--config", cluster.node(3).configPath, "metrics"],
      { encoding: "utf8", timeout: 30_000 },
    );
    expect(out).toMatch(/^pusher_cluster_wakes_sent_total 0$/m);
    expect(out).toMatch(/^pusher_cluster_wakes_received_total 0$/m);
    expect(out).toMatch(/^pusher_cluster_dmq_failures_total 0$/m);
  });
});
