// Device records on disk, through Kamailio's own DB layer: sqlops with the connection `pusher` (knob
// PUSHER_DB_CONNECTION in kamailio/pusher.cfg; db_sqlite on a local file by default, or PostgreSQL). htable keeps
// the records every worker reads, but htable's own dbmode writes only at shutdown, so a crash would lose
// them: every change is written here, synchronously, before the REGISTER is answered. A local sqlite write
// (WAL, synchronous=NORMAL: no fsync per write, see prepareConnection) costs the SIP worker tens of µs; a
// PostgreSQL server puts its round trip in the SIP path, bounded by db_postgres's timeout and retries (pusher.cfg
// PUSHER_DB_TIMEOUT_SECONDS, PUSHER_DB_RETRIES). A database that fails is held (HELD_KEY): the REGISTER is still
// answered, its AOR marked unsaved, and the timer writes it when the database answers (device-store.ts).
// Every statement is one both sqlite (3.24 or later) and PostgreSQL accept: INSERT … ON CONFLICT … DO UPDATE, not
// sqlite's INSERT OR REPLACE; strings quoted by doubling `'` (PostgreSQL's standard_conforming_strings, on by
// default, reads a backslash as itself); sqlite's PRAGMAs only on a sqlite connection.
// One row per AOR, holding the same JSON as the htable item; `expires` (epoch s) is when its last device's
// retention ends. Each process has its own DB connection, hence the per-process `connected` and `connectionReady`.

import { logError } from "./log";
import { STATE_TABLE, getNumber } from "./shared-state";

export const DB_CONNECTION = "pusher";
const TABLE = "pusher_devices";
const RESULT = "pusher_result";
// db_sqlite in Kamailio 5.6 sets no busy timeout: without one, two workers writing at once fail with
// SQLITE_BUSY. sqlite then waits for the other writer's (short) transaction instead.
const BUSY_TIMEOUT_MS = 5000;
const LOAD_PAGE_ROWS = 500;
// pusher_state: 1 while the database is held unavailable (a circuit breaker). Any failed statement sets it; from
// then on no process sends the database anything (a REGISTER keeps its record in memory and marks it unsaved:
// device-store.ts) until the timer's probe gets an answer (device-store.ts retryDeviceDatabase). A database that
// is down or hangs costs one statement's wait (the driver's timeouts), not one per REGISTER.
const HELD_KEY = "db_held";

// Per process: whether this process's sqlops handle reached the database once (then the driver reconnects by
// itself) and whether the connection got its PRAGMAs; whether the timer's recovery is running here.
let connected = false;
let connectionReady = false;
let forced = false;

/** Whether the connection is sqlite: pusher.cfg sets pusher_state db_sqlite from PUSHER_DB_CONNECTION's scheme. */
function isSqlite(): boolean {
  return getNumber(STATE_TABLE, "db_sqlite") === 1;
}

export function sqlString(value: string): string {
  return "'" + (value.indexOf("'") < 0 ? value : value.replace(/'/g, "''")) + "'";
}

/** Whether statements are held back (a statement failed; the timer has not reached the database since). */
export function databaseHeld(): boolean {
  return !forced && getNumber(STATE_TABLE, HELD_KEY) === 1;
}

/** Holds the database back from every process (the timer found it down). */
export function holdDatabase(): void {
  KSR.htable.sht_seti(STATE_TABLE, HELD_KEY, 1);
}

/** A statement failed: held, unless it was the timer's (the timer decides from its probe). */
function hold(): void {
  if (!forced) holdDatabase();
}

/** The timer's probe reached the database (and what was unsaved is written): every process may use it again. */
export function releaseDatabase(): void {
  KSR.htable.sht_seti(STATE_TABLE, HELD_KEY, 0);
}

/**
 * Whether the database answers `SELECT 1`, sent by route PUSHER_INTERNAL_DB_CONNECT (pusher.cfg) through sqlops's
 * cfg function: that one connects a handle that could not connect when Kamailio started (sqlops connect_mode 1);
 * the KEMI KSR.sqlops.sql_query does not (Kamailio 5.6 sqlops_do_query), so a process that started without the
 * database goes through here before its first statement. Ignores the hold: the timer probes with it.
 */
export function probeDatabase(): boolean {
  KSR.route("PUSHER_INTERNAL_DB_CONNECT");
  const reached = KSR.pv.get("$var(pusher_db_connected)") === 1;
  if (reached) connected = true;
  return reached;
}

/** Runs `body` as the timer's recovery: its statements go out while the database is held, and a failure holds nothing. */
export function withDatabaseForced<T>(body: () => T): T {
  forced = true;
  try {
    return body();
  } finally {
    forced = false;
  }
}

/**
 * Sends one statement, its rows into `result`: KSR.sqlops.sql_query's code (0 on success, rows or not; -1 on
 * failure), or -1 without sending anything while the database is held. A failure holds it.
 */
export function query(sql: string, result: string): number {
  if (!prepareConnection()) return -1;
  const rc = KSR.sqlops.sql_query(DB_CONNECTION, sql, result);
  if (rc < 0) hold();
  return rc;
}

/** Runs one statement; false when it failed or was not sent (the database is held). */
export function run(sql: string): boolean {
  const rc = query(sql, RESULT);
  KSR.sqlops.sql_result_free(RESULT);
  return rc >= 0;
}

/** Connects this process (once) and prepares a sqlite connection; false, and the database held, when it cannot. */
export function prepareConnection(): boolean {
  if (databaseHeld()) return false;
  if (!connected && !probeDatabase()) {
    hold();
    return false;
  }
  if (connectionReady) return true;
  connectionReady = true;
  if (!isSqlite()) return true;
  run("PRAGMA busy_timeout=" + BUSY_TIMEOUT_MS);
  // WAL + synchronous=NORMAL: a commit is written to the WAL file (the OS page cache) before sql_query returns,
  // and fsync'd only at checkpoints. That survives a crash of Kamailio (kill -9: the kernel still has the
  // pages); only an OS crash or power loss can lose the last transactions before a checkpoint. With the
  // default (FULL) every REGISTER that changed a record paid an fsync in the SIP worker: about 2/3 of the
  // plugin's REGISTER cost (docs/benchmarks.md). https://www.sqlite.org/pragma.html#pragma_synchronous
  run("PRAGMA synchronous=NORMAL");
  return true;
}

/** Creates the table when missing; a sqlite file is switched to WAL (concurrent readers, no fsync per write). */
export function createSchema(): boolean {
  if (!prepareConnection()) return false;
  if (isSqlite()) run("PRAGMA journal_mode=WAL");
  // BIGINT: PostgreSQL's INTEGER ends in 2038 (sqlite's INTEGER is 64-bit either way).
  return run(
    "CREATE TABLE IF NOT EXISTS " + TABLE + " (aor TEXT PRIMARY KEY, devices TEXT NOT NULL, expires BIGINT NOT NULL)",
  );
}

/** Runs a statement that changes the AOR's row; false when it was not sent (held) or failed (logged). */
function changeRow(aor: string, sql: string): boolean {
  if (databaseHeld()) return false;
  const ok = run(sql);
  if (!ok)
    logError(
      "device record of " +
        aor +
        " not written to the database (connection " +
        DB_CONNECTION +
        "): kept in memory, written when the database answers",
    );
  return ok;
}

/** Writes (or replaces) the row of one AOR; false when the database failed (logged) or is held. */
export function writeAor(aor: string, devicesJson: string, expiresAtS: number): boolean {
  // join, not +: Duktape makes (and hashes) a new string at each + of this long text.
  const sql = [
    "INSERT INTO " + TABLE + " (aor, devices, expires) VALUES (",
    sqlString(aor),
    ", ",
    sqlString(devicesJson),
    ", ",
    String(Math.floor(expiresAtS)),
    ") ON CONFLICT (aor) DO UPDATE SET devices = excluded.devices, expires = excluded.expires",
  ];
  return changeRow(aor, sql.join(""));
}

/** Deletes the row of one AOR; false when the database failed (logged) or is held. */
export function deleteAor(aor: string): boolean {
  return changeRow(aor, "DELETE FROM " + TABLE + " WHERE aor = " + sqlString(aor));
}

/**
 * The devices JSON of one AOR's row still within retention (one SELECT by primary key), or null: no such row, or the
 * database failed or is held.
 */
export function readAorRow(aor: string, nowS: number): string | null {
  // CAST … AS VARCHAR: see readAll.
  const rc = query(
    "SELECT CAST(devices AS VARCHAR) FROM " +
      TABLE +
      " WHERE aor = " +
      sqlString(aor) +
      " AND expires > " +
      Math.floor(nowS),
    RESULT,
  );
  const json = rc >= 0 && KSR.sqlops.sql_num_rows(RESULT) > 0 ? String(KSR.sqlops.sql_result_get(RESULT, 0, 0)) : null;
  KSR.sqlops.sql_result_free(RESULT);
  return json;
}

/**
 * How many rows the table holds (past retention too: count(*) alone reads only an index in sqlite, and the load's
 * progress needs no more), or -1 when the database failed or is held.
 */
export function countRows(): number {
  const rc = query("SELECT count(*) FROM " + TABLE, RESULT);
  const rows = rc >= 0 && KSR.sqlops.sql_num_rows(RESULT) > 0 ? Number(KSR.sqlops.sql_result_get(RESULT, 0, 0)) : -1;
  KSR.sqlops.sql_result_free(RESULT);
  return rows;
}

/**
 * Calls `visit` with every row still within retention, in pages (sqlops holds a result in pkg memory); `beforePage`
 * right before each page is read.
 */
export function readAll(
  nowS: number,
  visit: (aor: string, devicesJson: string) => void,
  beforePage?: () => void,
): boolean {
  let after = "";
  for (;;) {
    if (beforePage) beforePage();
    const rc = query(
      // CAST … AS VARCHAR: db_postgres reads a TEXT column as bytea and unescapes it (PQunescapeBytea in Kamailio's
      // src/modules/db_postgres/km_val.c), halving every backslash of the JSON; VARCHAR comes back as stored.
      // sqlite takes the cast as a no-op.
      "SELECT CAST(aor AS VARCHAR), CAST(devices AS VARCHAR) FROM " +
        TABLE +
        " WHERE expires > " +
        Math.floor(nowS) +
        " AND aor > " +
        sqlString(after) +
        " ORDER BY aor LIMIT " +
        LOAD_PAGE_ROWS,
      RESULT,
    );
    if (rc < 0) {
      KSR.sqlops.sql_result_free(RESULT);
      return false;
    }
    // The page is copied out before `visit` runs: a statement it sends (the timer's load writes merged records)
    // reuses the result container.
    const rows = KSR.sqlops.sql_num_rows(RESULT);
    const page: string[][] = [];
    for (let row = 0; row < rows; row++)
      page.push([String(KSR.sqlops.sql_result_get(RESULT, row, 0)), String(KSR.sqlops.sql_result_get(RESULT, row, 1))]);
    KSR.sqlops.sql_result_free(RESULT);
    for (let i = 0; i < page.length; i++) {
      after = page[i][0];
      visit(page[i][0], page[i][1]);
    }
    if (rows < LOAD_PAGE_ROWS) break;
  }
  run("DELETE FROM " + TABLE + " WHERE expires <= " + Math.floor(nowS));
  return true;
}
