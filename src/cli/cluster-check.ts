// `pusher check` for one node of a cluster (docs/cluster.md): the shared PostgreSQL answers a TCP connection, and,
// when this node's Kamailio runs, its DMQ lists every peer of cluster.peers as active. Offline checks (the keys) are
// the config validator's.
import { existsSync } from "node:fs";
import { connect } from "node:net";
import type { PusherConfig } from "../config";
import { callKamailio } from "./kamailio-rpc";

const CONNECT_TIMEOUT_MS = 5000;

export interface ClusterFinding {
  level: "ok" | "warn" | "fail";
  text: string;
}

/** host and port of a `postgres://[user[:password]@]host[:port]/db` URL (5432 when none). */
export function databaseAddress(url: string): { host: string; port: number } {
  const parsed = new URL(url);
  return { host: parsed.hostname, port: parsed.port ? Number(parsed.port) : 5432 };
}

function reachable(host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port });
    const timer = setTimeout(
      () => finish(new Error(`no answer within ${CONNECT_TIMEOUT_MS / 1000} s`)),
      CONNECT_TIMEOUT_MS,
    );
    const finish = (error?: Error) => {
      clearTimeout(timer);
      socket.destroy();
      if (error) reject(error);
      else resolve();
    };
    socket.once("connect", () => finish());
    socket.once("error", (error) => finish(error));
  });
}

/** `kamcmd dmq.list_nodes`: `host:port` → status of every node this node's DMQ knows, itself included. */
export function parseDmqNodes(text: string): Map<string, string> {
  const nodes = new Map<string, string>();
  let host = "";
  let port = "";
  for (const line of text.split("\n")) {
    const match = /^\s*(host|port|status):\s*(\S*)/.exec(line);
    if (!match) continue;
    if (match[1] === "host") host = match[2];
    else if (match[1] === "port") port = match[2];
    else nodes.set(`${host}:${port}`, match[2]);
  }
  return nodes;
}

/** Nothing for a single node. */
export async function checkCluster(config: PusherConfig, ctlSocket: string): Promise<ClusterFinding[]> {
  const cluster = config.cluster;
  if (cluster.nodeId < 1) return [];
  const findings: ClusterFinding[] = [
    { level: "ok", text: `node ${cluster.nodeId} of ${cluster.nodes}, DMQ on udp:${cluster.dmqListen}` },
  ];
  if (cluster.database) {
    const { host, port } = databaseAddress(cluster.database);
    try {
      await reachable(host, port);
      findings.push({ level: "ok", text: `PostgreSQL ${host}:${port} reachable` });
    } catch (error) {
      findings.push({ level: "fail", text: `PostgreSQL ${host}:${port} unreachable: ${(error as Error).message}` });
    }
  }
  if (!existsSync(ctlSocket)) {
    findings.push({ level: "ok", text: "Kamailio not running here: DMQ members not checked" });
    return findings;
  }
  try {
    const nodes = parseDmqNodes(await callKamailio(ctlSocket, ["dmq.list_nodes"]));
    const missing = cluster.peers.filter((peer) => nodes.get(peer) !== "active");
    if (missing.length)
      findings.push({
        level: "warn",
        text: `DMQ peers not active: ${missing.map((peer) => `${peer} (${nodes.get(peer) ?? "unknown"})`).join(", ")}`,
      });
    else findings.push({ level: "ok", text: `DMQ sees every peer active (${cluster.peers.join(", ")})` });
  } catch (error) {
    findings.push({ level: "warn", text: `DMQ members not checked: ${(error as Error).message}` });
  }
  return findings;
}
