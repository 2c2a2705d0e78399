// Stored MESSAGEs (docs/messages.md): on disk in message-database.ts, and how many wait for each AOR in htable
// `pusher_messages` (`waiting:<aor>`), so that a REGISTER of an AOR with nothing waiting costs kamailio/pusher.cfg
// one htable read and no JavaScript, and `pusher devices <aor>` can say how many wait. The counts are rebuilt from
// the table once per Kamailio run; every store, delivery and expiry keeps them in step.
// In a cluster (docs/cluster.md) the messages are in the shared database and pusher_messages is replicated over DMQ
// (dmqreplicate): htable replicates each write as the item's new value, not as an increment, so two nodes that
// change one AOR's count at the same moment can lose one change (the last write wins), and two nodes' expiry sweeps
// may both uncount one row. Every sweep therefore sets the counts that differ from the database's
// (reconcileWaitingCounts): a count is never left wrong for more than a sweep, and it never hides a message longer.

import {
  createMessageSchema,
  deleteMessage,
  expiredMessages,
  insertMessage,
  messageExists,
  StoredMessage,
  waitingCountOf,
  waitingCounts,
} from "./message-database";
import { clusterNodeId } from "./cluster";
import { logError, logInfo } from "./log";
import { STATE_TABLE, STATS_TABLE, getNumber, remove, withLock } from "./shared-state";

/** `waiting:<aor>`: messages stored for the AOR (initval 0: a missing AOR reads 0). */
export const MESSAGES_TABLE = "pusher_messages";
const LOADED_KEY = "messages_loaded";
// Expired messages removed per sweep step: the timer process never holds the database long.
const EXPIRY_BATCH = 100;
const EXPIRY_BATCHES_PER_SWEEP = 10;

function waitingKey(aor: string): string {
  return "waiting:" + aor;
}

export function waitingCount(aor: string): number {
  return getNumber(MESSAGES_TABLE, waitingKey(aor));
}

function changeWaiting(aor: string, delta: number): void {
  const key = waitingKey(aor);
  withLock(MESSAGES_TABLE, key, function () {
    const count = getNumber(MESSAGES_TABLE, key) + delta;
    if (count > 0) KSR.htable.sht_seti(MESSAGES_TABLE, key, count);
    else remove(MESSAGES_TABLE, key);
  });
}

/**
 * Creates the table and counts what waits, once per Kamailio run (the first process that needs it; the others wait
 * on the lock). Messages whose retention ended while Kamailio was down are expired first, and counted.
 */
export function ensureMessagesLoaded(): void {
  if (getNumber(STATE_TABLE, LOADED_KEY) > 0) return;
  withLock(STATE_TABLE, LOADED_KEY, function () {
    if (getNumber(STATE_TABLE, LOADED_KEY) > 0) return;
    KSR.htable.sht_seti(STATE_TABLE, LOADED_KEY, 1);
    const nowS = Date.now() / 1000;
    // Expired first: their rows are not counted below, so their removal must not uncount anything.
    const counts = createMessageSchema() && expireMessages(nowS) >= 0 ? waitingCounts(nowS) : null;
    if (!counts) {
      logError(
        "cannot read stored messages from the database (connection pusher, knob PUSHER_DB_CONNECTION): MESSAGEs to sleeping phones are answered 500",
      );
      return;
    }
    let total = 0;
    let aors = 0;
    for (const aor in counts) {
      if (!Object.prototype.hasOwnProperty.call(counts, aor)) continue;
      setWaiting(aor, counts[aor]);
      total += counts[aor];
      aors++;
    }
    logInfo("stored messages loaded from the database: " + total + " messages for " + aors + " AORs");
  });
}

/**
 * Sets the AOR's count unless it holds that value already: in a cluster every write is a DMQ broadcast, and a node
 * that (re)starts usually has the counts from htable's sync by the time it loads them.
 */
function setWaiting(aor: string, count: number): void {
  const key = waitingKey(aor);
  withLock(MESSAGES_TABLE, key, function () {
    if (getNumber(MESSAGES_TABLE, key) !== count) KSR.htable.sht_seti(MESSAGES_TABLE, key, count);
  });
}

/**
 * A cluster node's sweep: every AOR with messages in the database gets the database's count where this node's
 * differs (a change lost between two nodes). It never writes 0: a count too high only costs the AOR's next
 * REGISTER one query (deliverMessages clears it), and a 0 written from a count read a moment ago could hide a
 * message another node just stored.
 */
export function reconcileWaitingCounts(nowS: number): void {
  if (clusterNodeId() <= 0 || getNumber(STATE_TABLE, LOADED_KEY) <= 0) return;
  const counts = waitingCounts(nowS);
  if (!counts) return;
  for (const aor in counts) {
    if (Object.prototype.hasOwnProperty.call(counts, aor)) setWaiting(aor, counts[aor]);
  }
}

/**
 * deliverMessages found nothing to send although the AOR's count said some wait (a change lost between two nodes):
 * the count goes once the database confirms none waits, so the AOR's REGISTERs take the cfg fast path again.
 */
export function clearWaitingIfNone(aor: string, nowS: number): void {
  const key = waitingKey(aor);
  // Under the lock keepMessage counts under: a message stored meanwhile is either in the COUNT or counted after.
  withLock(MESSAGES_TABLE, key, function () {
    if (waitingCountOf(aor, nowS) === 0) remove(MESSAGES_TABLE, key);
  });
}

/** Stores one message: on disk first, then counted. False (logged) when the database refused it. */
export function keepMessage(message: StoredMessage): boolean {
  if (!insertMessage(message)) return false;
  changeWaiting(message.aor, 1);
  KSR.htable.sht_inc(STATS_TABLE, "messages_stored");
  return true;
}

/**
 * Deletes a message and uncounts it, once: a delivery and the expiry sweep may meet on one row (db_sqlite reports
 * no affected rows, so the row is looked up first, under a lock of its id). False when it was gone already.
 */
function removeMessage(aor: string, id: string): boolean {
  const removed = withLock(MESSAGES_TABLE, "row:" + id, function () {
    return messageExists(id) && deleteMessage(id);
  });
  if (removed) changeWaiting(aor, -1);
  return removed;
}

/** Removes a message the phone took (2xx); false when it was gone already. */
export function removeDeliveredMessage(aor: string, id: string): boolean {
  if (!removeMessage(aor, id)) return false;
  KSR.htable.sht_inc(STATS_TABLE, "messages_delivered");
  return true;
}

/** Drops the messages whose retention (messages.retentionDays) ended: counted, logged. Returns how many. */
export function expireMessages(nowS: number): number {
  let expired = 0;
  for (let batch = 0; batch < EXPIRY_BATCHES_PER_SWEEP; batch++) {
    const found = expiredMessages(nowS, EXPIRY_BATCH);
    for (let i = 0; i < found.length; i++) {
      if (!removeMessage(found[i].aor, found[i].id)) continue;
      KSR.htable.sht_inc(STATS_TABLE, "messages_expired");
      logInfo(
        "message expired aor=" + found[i].aor + " id=" + found[i].id + ": not delivered within messages.retentionDays",
      );
      expired++;
    }
    if (found.length < EXPIRY_BATCH) break;
  }
  return expired;
}
