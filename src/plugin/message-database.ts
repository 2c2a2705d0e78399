// Stored MESSAGEs on disk (docs/messages.md): a table `pusher_messages` over the device records' sqlops connection
// `pusher` (device-database.ts: a local sqlite file by default, any Kamailio DB driver otherwise). A message is
// written before the sender gets its 202, so a crash of Kamailio right after loses nothing, and deleted only after
// the phone's 2xx. The body is kept as hex: SIP bodies may hold any byte, SQL text may not.
// Plain SQL every driver takes (CREATE … IF NOT EXISTS, INSERT, SELECT … ORDER BY … LIMIT, DELETE): sqlite and
// PostgreSQL alike.

import { DB_CONNECTION, prepareConnection, query as runQuery, run, sqlString } from "./device-database";
import { logError } from "./log";

const TABLE = "pusher_messages";
const RESULT = "pusher_message_result";

/** One stored MESSAGE. Times in epoch seconds, except storedAtUs (µs: it orders an AOR's messages). */
export interface StoredMessage {
  /** The id the message push names (a UUID). */
  id: string;
  aor: string;
  storedAtUs: number;
  expiresAtS: number;
  callId: string;
  /** The sender's From, name-addr without its tag (tm gives the delivered copy its own). */
  from: string;
  to: string;
  contentType: string;
  bodyHex: string;
}

const COLUMNS = "id, aor, stored_us, expires, call_id, from_header, to_header, content_type, body_hex";

export function createMessageSchema(): boolean {
  prepareConnection();
  return (
    run(
      "CREATE TABLE IF NOT EXISTS " +
        TABLE +
        " (id VARCHAR(64) PRIMARY KEY, aor VARCHAR(512) NOT NULL, stored_us BIGINT NOT NULL, " +
        "expires BIGINT NOT NULL, call_id TEXT NOT NULL, from_header TEXT NOT NULL, to_header TEXT NOT NULL, content_type TEXT NOT NULL, body_hex TEXT NOT NULL)",
    ) &&
    run("CREATE INDEX IF NOT EXISTS " + TABLE + "_aor ON " + TABLE + " (aor, stored_us)") &&
    run("CREATE INDEX IF NOT EXISTS " + TABLE + "_expires ON " + TABLE + " (expires)")
  );
}

export function insertMessage(message: StoredMessage): boolean {
  prepareConnection();
  const values = [
    sqlString(message.id),
    sqlString(message.aor),
    String(Math.floor(message.storedAtUs)),
    String(Math.floor(message.expiresAtS)),
    sqlString(message.callId),
    sqlString(message.from),
    sqlString(message.to),
    sqlString(message.contentType),
    sqlString(message.bodyHex),
  ];
  const ok = run("INSERT INTO " + TABLE + " (" + COLUMNS + ") VALUES (" + values.join(", ") + ")");
  if (!ok) logError("message of " + message.aor + " not written to the database (connection " + DB_CONNECTION + ")");
  return ok;
}

function text(row: number, column: number): string {
  const value = KSR.sqlops.sql_result_get(RESULT, row, column);
  return value === null || value === undefined ? "" : String(value);
}

/** Runs a SELECT and hands each row to `visit`; false when the database refused it. */
function select(query: string, visit: (row: number) => void): boolean {
  const rc = runQuery(query, RESULT);
  if (rc >= 0) {
    const rows = KSR.sqlops.sql_num_rows(RESULT);
    for (let row = 0; row < rows; row++) visit(row);
  }
  KSR.sqlops.sql_result_free(RESULT);
  return rc >= 0;
}

/** The AOR's oldest message still within retention, or null. */
export function oldestMessageOf(aor: string, nowS: number): StoredMessage | null {
  let found: StoredMessage | null = null;
  select(
    "SELECT " +
      COLUMNS +
      " FROM " +
      TABLE +
      " WHERE aor = " +
      sqlString(aor) +
      " AND expires > " +
      Math.floor(nowS) +
      " ORDER BY stored_us, id LIMIT 1",
    function (row: number) {
      found = {
        id: text(row, 0),
        aor: text(row, 1),
        storedAtUs: Number(text(row, 2)),
        expiresAtS: Number(text(row, 3)),
        callId: text(row, 4),
        from: text(row, 5),
        to: text(row, 6),
        contentType: text(row, 7),
        bodyHex: text(row, 8),
      };
    },
  );
  return found;
}

/** Whether a message is stored. */
export function messageExists(id: string): boolean {
  let found = false;
  select("SELECT id FROM " + TABLE + " WHERE id = " + sqlString(id), function () {
    found = true;
  });
  return found;
}

/** Deletes one message; false (logged) when the database refused it. */
export function deleteMessage(id: string): boolean {
  prepareConnection();
  const ok = run("DELETE FROM " + TABLE + " WHERE id = " + sqlString(id));
  if (!ok) logError("message " + id + " not deleted from the database (connection " + DB_CONNECTION + ")");
  return ok;
}

/** The messages past retention, at most `limit`: [id, aor] pairs. */
export function expiredMessages(nowS: number, limit: number): { id: string; aor: string }[] {
  const found: { id: string; aor: string }[] = [];
  select(
    "SELECT id, aor FROM " + TABLE + " WHERE expires <= " + Math.floor(nowS) + " ORDER BY expires LIMIT " + limit,
    function (row: number) {
      found.push({ id: text(row, 0), aor: text(row, 1) });
    },
  );
  return found;
}

/** How many messages within retention wait for each AOR; null when the database refused the query. */
export function waitingCounts(nowS: number): { [aor: string]: number } | null {
  const counts: { [aor: string]: number } = {};
  const ok = select(
    "SELECT aor, COUNT(*) FROM " + TABLE + " WHERE expires > " + Math.floor(nowS) + " GROUP BY aor",
    function (row: number) {
      counts[text(row, 0)] = Number(text(row, 1));
    },
  );
  return ok ? counts : null;
}

/** How many messages within retention wait for `aor`; null when the database refused the query. */
export function waitingCountOf(aor: string, nowS: number): number | null {
  let count = 0;
  const ok = select(
    "SELECT COUNT(*) FROM " + TABLE + " WHERE aor = " + sqlString(aor) + " AND expires > " + Math.floor(nowS),
    function (row: number) {
      count = Number(text(row, 0));
    },
  );
  return ok ? count : null;
}
