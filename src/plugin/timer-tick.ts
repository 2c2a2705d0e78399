// The plugin's timers (kamailio/pusher.cfg, rtimer, every second, each in its own process). Route
// PUSHER_INTERNAL_LOAD_TIMER runs onLoadTimerTick: the load of the device records at start (device-store.ts
// loadDevicesWhenDue: a minute for a million rows, which neither a SIP worker nor the refresh pushes wait for). Route
// PUSHER_INTERNAL_TIMER runs onTimerTick. Each second: the refresh pushes that are due (refresh-pushes.ts), then the
// device records the database has not got yet (device-store.ts retryDeviceDatabase: nothing to do while it answers); every
// MESSAGE_EXPIRY_INTERVAL_S: the stored messages whose retention ended, and in a cluster the waiting counts other
// nodes' changes left wrong (message-store.ts); every minute, in a cluster,
// this node's marks of AORs it holds no call for any more (hold-call.ts).

import { dropStaleMarks } from "./hold-call";
import { loadDevicesWhenDue, retryDeviceDatabase } from "./device-store";
import { ensureMessagesLoaded, expireMessages, reconcileWaitingCounts } from "./message-store";
import { fireDueRefreshes, rearmRefreshes } from "./refresh-pushes";
import { STATE_TABLE, getNumber } from "./shared-state";

// Expiry counts in days: a sweep every few seconds is plenty, and its SELECT never runs on a SIP worker.
const MESSAGE_EXPIRY_INTERVAL_S = 5;
// A cluster node's stale marks (hold-call.ts dropStaleMarks) only cost a KDMQ request per REGISTER of their AORs.
const STALE_MARKS_INTERVAL_S = 60;

// The timer is one process: its own JS heap holds when it last swept.
let nextExpiryAtS = 0;
let nextMarksSweepAtS = 0;

export function onTimerTick(): void {
  fireDueRefreshes();
  retryDeviceDatabase();
  const nowS = Date.now() / 1000;
  if (nowS >= nextMarksSweepAtS) {
    // The first sweep a minute after start: by then htable's DMQ sync has brought the marks back.
    if (nextMarksSweepAtS > 0) dropStaleMarks();
    nextMarksSweepAtS = nowS + STALE_MARKS_INTERVAL_S;
  }
  if (nowS < nextExpiryAtS) return;
  nextExpiryAtS = nowS + MESSAGE_EXPIRY_INTERVAL_S;
  ensureMessagesLoaded();
  expireMessages(nowS);
  reconcileWaitingCounts(nowS);
}

/**
 * The bindings usrloc kept across the restart get their refresh pushes armed once the records are loaded: rearming
 * reads the AORs in memory (refresh-pushes.ts rearmRefreshes). Not on a cluster node: its usrloc holds every node's
 * bindings (dmq_usrloc), whose refresh pushes the nodes that took them arm, and it would push them a second time.
 */
export function onLoadTimerTick(): void {
  if (loadDevicesWhenDue() && getNumber(STATE_TABLE, "cluster_nodes") <= 1) rearmRefreshes();
}
