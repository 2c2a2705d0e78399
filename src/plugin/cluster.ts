// Several Kamailio nodes (docs/cluster.md). Device records are replicated by htable over DMQ (the tables
// pusher.cfg defines with dmqreplicate=1); a held call stays on the node whose tm holds its transaction. So
// that a phone waking on another node gets its call, each node marks, in the replicated table
// pusher_cluster_calls, the AORs it holds or rings calls for: `<nodeId>:<aor>` → its DMQ address. Only the owning
// node writes its own keys, so nodes never race on one item. A REGISTER on node B for an AOR marked by node A
// (cfg checks the marks: route PUSHER_INTERNAL_CLUSTER_CALLS) sends A one KDMQ request (peer "pusher") with the
// phone's binding; A continues its suspended transaction and relays the INVITE to the phone through B (Route: B's
// Path), so a phone on TCP/TLS or behind NAT is reached over its own connection.

import { ClusterMessage, parseClusterMessage } from "../protocol";
import { logError, logInfo } from "./log";
import { STATE_TABLE, STATS_TABLE, getNumber, getString, remove } from "./shared-state";
import { pvString, setVar } from "./sip-message";
import { bindingAt } from "./usrloc-bindings";

export const CLUSTER_CALLS_TABLE = "pusher_cluster_calls";
/** The DMQ peer name of the plugin's own KDMQ requests (their R-URI user: `sip:pusher@<node>`). */
export const CLUSTER_PEER = "pusher";

/** This node's id (1…PUSHER_CLUSTER_NODES), 0 on a single node: route PUSHER_HTABLE_INIT writes it. */
export function clusterNodeId(): number {
  return getNumber(STATE_TABLE, "cluster_node_id");
}

function markKey(nodeId: number, aor: string): string {
  return nodeId + ":" + aor;
}

/**
 * Keeps this node's mark of `aor` in step with its calls: set while the node holds or rings a call for it, gone
 * once it has none. Called under the AOR's slot lock (hold-call.ts), after each change to its lists; a mark that
 * is already right is not written again (every write is a DMQ broadcast).
 */
export function markCallsOf(aor: string, hasCalls: boolean): void {
  const nodeId = clusterNodeId();
  if (nodeId <= 0) return;
  const key = markKey(nodeId, aor);
  const marked = getString(CLUSTER_CALLS_TABLE, key) !== null;
  if (hasCalls && !marked)
    KSR.htable.sht_sets(CLUSTER_CALLS_TABLE, key, getString(STATE_TABLE, "cluster_address") || "");
  else if (!hasCalls && marked) remove(CLUSTER_CALLS_TABLE, key);
}

/**
 * The AORs this node has marked. Marks of a node that died with calls held come back to it from the other nodes
 * (htable's DMQ sync) when it restarts; hold-call.ts dropStaleMarks re-marks each from the calls it really has.
 */
export function markedAors(): string[] {
  const nodeId = clusterNodeId();
  const aors: string[] = [];
  if (nodeId <= 0) return aors;
  const prefix = nodeId + ":";
  const iterator = "pusher_cluster_marks";
  if (KSR.htable.sht_iterator_start(iterator, CLUSTER_CALLS_TABLE) < 0) return aors;
  while (KSR.htable.sht_iterator_next(iterator) > 0) {
    const key = String(KSR.pv.get("$shtitkey(" + iterator + ")"));
    if (key.substring(0, prefix.length) === prefix) aors.push(key.substring(prefix.length));
  }
  KSR.htable.sht_iterator_end(iterator);
  return aors;
}

/** The first URI of a Path header value (`<sip:node;lr;received=…>, …`), or "" when there is none. */
export function firstPathUri(path: string): string {
  const match = /^\s*<([^>]+)>/.exec(path);
  return match ? match[1] : "";
}

/**
 * Sends `message` (about a REGISTER of `aor` on this node) to every other node that marked `aor`. A registration goes
 * before save() (route PUSHER_REGISTER_BEFORE_SAVE): the holding node relays the call through this node's Path at
 * once, while this node still writes the record and answers the phone.
 */
export function tellNodesHoldingCalls(aor: string, message: ClusterMessage): void {
  const self = clusterNodeId();
  if (self <= 0) return;
  const nodes = getNumber(STATE_TABLE, "cluster_nodes");
  let body = "";
  for (let nodeId = 1; nodeId <= nodes; nodeId++) {
    if (nodeId === self) continue;
    const address = getString(CLUSTER_CALLS_TABLE, markKey(nodeId, aor));
    if (!address) continue;
    if (message.type === "registered" && !firstPathUri(message.path)) {
      logError(
        "cluster: a call for " +
          aor +
          " waits on node " +
          nodeId +
          ", but this REGISTER has no Path to reach the phone through (kamailio.cfg adds it WITH_CLUSTER: route PATH_TO_THIS_NODE)",
      );
      return;
    }
    if (!body) body = JSON.stringify(message);
    const what = message.type === "registered" ? "registered here" : "failed to register here (" + message.code + ")";
    if (KSR.dmq.send_message(CLUSTER_PEER, address, body, "application/json") > 0) {
      if (message.type === "registered") KSR.htable.sht_inc(STATS_TABLE, "cluster_wakes_sent");
      logInfo("cluster: told node " + nodeId + " (" + address + ") that a phone of " + aor + " " + what);
    } else {
      KSR.htable.sht_inc(STATS_TABLE, "cluster_dmq_failures");
      logError(
        "cluster: cannot tell node " +
          nodeId +
          " (" +
          address +
          ") that a phone of " +
          aor +
          " " +
          what +
          ": DMQ refused the message",
      );
    }
  }
}

/** How long a registration from another node waits for its binding to reach this node's usrloc, at most. */
const BINDING_WAIT_MS = 100;

/**
 * Waits (BINDING_WAIT_MS at most; the KDMQ request is handled by a process of the DMQ address, which serves no phone)
 * until usrloc holds the binding `contact` of `aor`, which dmq_usrloc brings. Duktape has no sleep: it polls in a
 * loop. False when the binding did not come: the fork then goes to the bindings usrloc has.
 */
export function waitForBinding(aor: string, contact: string): boolean {
  const deadline = Date.now() + BINDING_WAIT_MS;
  for (;;) {
    if (bindingAt(aor, contact)) return true;
    if (Date.now() >= deadline) break;
    const pause = Date.now() + 1;
    while (Date.now() < pause) {
      // a millisecond between two reads of usrloc
    }
  }
  logError(
    "cluster: the binding " +
      contact +
      " of " +
      aor +
      " did not reach this node's usrloc within " +
      BINDING_WAIT_MS +
      " ms: forking to the bindings it has",
  );
  return false;
}

/** A KDMQ request of peer "pusher" ($rb), or null (logged) when it is not one this version understands. */
export function readClusterMessage(): ClusterMessage | null {
  const message = parseClusterMessage(pvString("$rb"));
  if (!message) {
    KSR.htable.sht_inc(STATS_TABLE, "cluster_dmq_failures");
    logError("cluster: ignoring a KDMQ message from " + pvString("$si") + ": not a message this version reads");
    return null;
  }
  if (message.type !== "registered") return message;
  KSR.htable.sht_inc(STATS_TABLE, "cluster_wakes_received");
  // The route PUSHER_INTERNAL_DELIVER_REMOTE relays to the phone through its node; the wake latency starts at its REGISTER.
  setVar("pusher_remote_contact", message.contact);
  setVar("pusher_remote_path", message.path);
  setVar("pusher_remote_next_hop", firstPathUri(message.path));
  setVar("pusher_register_at", message.registeredAt);
  return message;
}
