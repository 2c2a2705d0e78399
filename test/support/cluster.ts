// A cluster of the real product for the multi-node tests (issue 14): one PostgreSQL for the device records
// (postgres.ts) and N nodes, each `pusher start` (Kamailio with kamailio/kamailio.cfg WITH_CLUSTER, plus its own
// helper) on its own loopback address 127.0.1.x with its own SIP port (udp and tcp) and DMQ port (udp) there. Every
// helper pushes to the same mock APNs and mock FCM, so a test sees each push whichever node sent it. Phones and
// callers sit on 127.0.0.x (topology.ts) and talk to whichever node a test picks: wake-fixture.ts's registerPhone,
// call, registerAndAnswer and listeningPhone take a node's PusherProcess as they take a single node's.
//
// Nodes of one file sit on their own addresses (127.0.1.b+1 … b+N, b from the process id), so two cluster files
// running side by side never share a node address: Kamailio tells the nodes apart by address alone
// (dmq_is_from_node, registrar's path_check_local).
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { APP_ID } from "./app-id";
import { freePort } from "./free-port";
import { MockApns } from "./mock-apns";
import { MockFcm } from "./mock-fcm";
import { startPostgres, type PostgresServer } from "./postgres";
import { PusherProcess, ROOT, startPusher, TEST_CA_DIR } from "./pusher-process";
import { waitUntil } from "./wait-until";
import { parseDmqNodes } from "../../src/cli/cluster-check";

/** The Firebase app of the cluster's config (its service account's project is ANDROID_PROJECT). */
export const ANDROID_APP = "com.example.android";
export const ANDROID_PROJECT = "cluster-project";

export interface ClusterNode {
  /** cluster.nodeId: 1 … N. */
  id: number;
  /** The node's loopback address: SIP (udp, tcp) and DMQ (udp) listen there. */
  host: string;
  dmqPort: number;
  /** The running `pusher start` (replaced by restart()). */
  pusher: PusherProcess;
}

export interface Cluster {
  postgres: PostgresServer;
  apns: MockApns;
  fcm: MockFcm;
  /** nodes[0] is node 1. */
  nodes: ClusterNode[];
  /** The running `pusher start` of node `id` (1 … N). */
  node(id: number): PusherProcess;
  /** Resolves once every running node's DMQ lists every running node as active. */
  waitForMembers(timeoutMs?: number): Promise<void>;
  /** `pusher devices --json [aor]` against node `id`: the records its Kamailio would push. */
  devices(id: number, aor?: string): { aor: string; token: string; instance: string; appId: string }[];
  /** Kills node `id`'s Kamailio processes with SIGKILL, as a crash would; its `pusher start` exits. */
  crash(id: number): Promise<void>;
  /** Starts node `id` again (after crash or stop) with its config, state and ports, and waits until DMQ sees it. */
  restart(id: number): Promise<PusherProcess>;
  /** The last lines of every node's output, for a failure message. */
  output(): string;
  stop(): Promise<void>;
}

export interface ClusterOptions {
  /** How many nodes; default 3. */
  nodes?: number;
  /** pusher.json keys every node gets besides the cluster's own (timers, calls, sip…); apps and userAgents replace
   * the defaults (APP_ID on the mock APNs, ANDROID_APP on the mock FCM, the MyMobileApp rule). */
  config?: Record<string, unknown>;
}

/** The first of `count` free-of-others node addresses: 127.0.1.(base+1) … (base+count). */
function firstNodeHost(count: number): number {
  const slots = Math.floor(254 / count);
  return (process.pid % slots) * count;
}

/** `kamcmd dmq.list_nodes` of a node: `host:port` → status, as `pusher check` reads it. */
export function dmqNodes(pusher: PusherProcess): Map<string, string> {
  return parseDmqNodes(pusher.rpc("dmq.list_nodes"));
}

/** Node `pusher`'s usrloc bindings of `aor` (kamcmd ul.lookup), "" while it has none. */
export function bindingsOn(pusher: PusherProcess, aor: string): string {
  try {
    return pusher.rpc("ul.lookup", "location", aor);
  } catch {
    return ""; // ul.lookup answers an error for an AOR it does not hold
  }
}

/** Node `pusher`'s htable item `key` of `table` (kamcmd htable.get), "" while it has none. */
export function htableItemOn(pusher: PusherProcess, table: string, key: string): string {
  try {
    return pusher.rpc("htable.get", table, key);
  } catch {
    return ""; // htable.get answers an error for a missing item
  }
}

/** Resolves once every node's pusher_devices item of `aor` holds `token` (replicated records: the tests poll). */
export async function everyNodeHolds(cluster: Cluster, aor: string, token: string): Promise<void> {
  for (const node of cluster.nodes) {
    await waitUntil(
      () => htableItemOn(node.pusher, "pusher_devices", aor).includes(token),
      10000,
      () => `node ${node.id} to hold ${aor}'s device\n${cluster.output()}`,
      50,
    );
  }
}

export async function startCluster(options: ClusterOptions = {}): Promise<Cluster> {
  const count = options.nodes ?? 3;
  const work = mkdtempSync(join(tmpdir(), "pusher-cluster-"));
  const postgres = await startPostgres();
  const apns = await MockApns.start({ caDir: TEST_CA_DIR });
  const fcm = await MockFcm.start({ caDir: TEST_CA_DIR });
  const base = firstNodeHost(count);
  const addresses: { host: string; dmqPort: number }[] = [];
  for (let i = 1; i <= count; i++) {
    const host = `127.0.1.${base + i}`;
    addresses.push({ host, dmqPort: await freePort(host) });
  }
  const serviceAccount = fcm.createServiceAccount(work, ANDROID_PROJECT);
  const configOf = (id: number): Record<string, unknown> => ({
    userAgents: [{ name: "MyMobileApp", regex: "^MyMobileApp" }],
    apps: {
      [APP_ID]: { apple: apns.appleConfig({ certificateFile: join(TEST_CA_DIR, "apple-app.pem") }) },
      [ANDROID_APP]: { firebase: { serviceAccountFile: serviceAccount, host: fcm.host } },
    },
    ...options.config,
    cluster: {
      nodeId: id,
      nodes: count,
      dmqListen: `${addresses[id - 1].host}:${addresses[id - 1].dmqPort}`,
      peers: addresses.filter((_, index) => index !== id - 1).map((address) => `${address.host}:${address.dmqPort}`),
      database: postgres.url,
    },
  });

  const nodes: ClusterNode[] = [];
  // Nodes whose Kamailio was killed (crash) and not restarted yet.
  const crashed = new Set<number>();
  const cluster: Cluster = {
    postgres,
    apns,
    fcm,
    nodes,
    node(id) {
      return nodes[id - 1].pusher;
    },
    async waitForMembers(timeoutMs = 20000) {
      const running = nodes.filter((node) => !crashed.has(node.id));
      const expected = running.map((node) => `${node.host}:${node.dmqPort}`).sort();
      await waitUntil(
        () =>
          running.every((node) => {
            try {
              const known = dmqNodes(node.pusher);
              return expected.every((address) => known.get(address) === "active");
            } catch {
              return false;
            }
          }),
        timeoutMs,
        () =>
          `every node's DMQ to list ${expected.join(", ")} as active; now:\n${running.map((node) => `node ${node.id}: ${safeList(node.pusher)}`).join("\n")}\n${cluster.output()}`,
        100,
      );
    },
    devices(id, aor) {
      const pusher = nodes[id - 1].pusher;
      const args = [
        join(ROOT, "dist", "cli.js"),
        "--config",
        pusher.configPath,
        "devices",
        "--json",
        "--show-tokens",
        ...(aor ? [aor] : []),
      ];
      return JSON.parse(execFileSync(process.execPath, args, { encoding: "utf8", timeout: 10_000 }));
    },
    async crash(id) {
      await nodes[id - 1].pusher.crashKamailio();
      crashed.add(id);
    },
    async restart(id) {
      const node = nodes[id - 1];
      if (!crashed.has(id)) await node.pusher.stop();
      node.pusher = await node.pusher.restart();
      crashed.delete(id);
      await cluster.waitForMembers();
      return node.pusher;
    },
    output() {
      return nodes
        .map((node) => `----- node ${node.id} (${node.host}) -----\n${node.pusher.output().slice(-3000)}`)
        .join("\n");
    },
    async stop() {
      await Promise.all(nodes.map((node) => node.pusher.stop()));
      await Promise.all([apns.close(), fcm.close()]);
      postgres.stop();
      rmSync(work, { recursive: true, force: true });
    },
  };
  try {
    // Node 1 first: its plugin creates the device table, which PostgreSQL does not let several sessions create at
    // once. The others then start side by side.
    const start = async (id: number) => {
      nodes[id - 1] = {
        id,
        ...addresses[id - 1],
        pusher: await startPusher(configOf(id), { host: addresses[id - 1].host }),
      };
    };
    await start(1);
    await Promise.all(addresses.slice(1).map((_, index) => start(index + 2)));
    await cluster.waitForMembers();
  } catch (error) {
    await Promise.all(nodes.filter(Boolean).map((node) => node.pusher.stop()));
    await Promise.all([apns.close(), fcm.close()]);
    postgres.stop();
    rmSync(work, { recursive: true, force: true });
    throw error;
  }
  return cluster;
}

function safeList(pusher: PusherProcess): string {
  try {
    return JSON.stringify([...dmqNodes(pusher)]);
  } catch (error) {
    return (error as Error).message;
  }
}
