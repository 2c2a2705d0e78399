// Device records on disk, through Kamailio's own DB layer: sqlops with the connection `pusher` (knob
// PUSHER_DB_CONNECTION in kamailio/pusher.cfg; db_sqlite on a local file by default). htable keeps the
// records every worker reads, but htable's own dbmode writes only at shutdown, so a crash would lose
// them: every change is written here, synchronously, before the REGISTER is answered. A local sqlite write
// (WAL, synchronous=NORMAL: no fsync per write, see prepareConnection) costs the SIP worker tens of µs; other
// DB drivers work too but put their latency in the SIP path.
// One row per AOR, holding the same JSON as the htable item; `expires` (epoch s) is when its last device's
// retention ends. Each process has its own DB connection, hence the per-process `connectionReady`.

import { logError } from "./log";

export const DB_CONNECTION = "pusher";
const TABLE = "pusher_devices";
const RESULT = "pusher_result";
// db_sqlite in Kamailio 5.6 sets no busy timeout: without one, two workers writing at once fail with
// SQLITE_BUSY. sqlite then waits for the other writer's (short) transaction instead.
const BUSY_TIMEOUT_MS = 5000;
const LOAD_PAGE_ROWS = 500;

let connectionReady = false;

function sqlString(value: string): string {
  return "'" + (value.indexOf("'") < 0 ? value : value.replace(/'/g, "''")) + "'";
}

/** Runs one statement; KSR.sqlops.sql_query gives 0 on success (rows or not) and -1 on failure. */
function run(query: string): boolean {
  const rc = KSR.sqlops.sql_query(DB_CONNECTION, query, RESULT);
  KSR.sqlops.sql_result_free(RESULT);
  return rc >= 0;
}

function prepareConnection(): void {
  if (connectionReady) return;
  connectionReady = true;
  run("PRAGMA busy_timeout=" + BUSY_TIMEOUT_MS);
  // WAL + synchronous=NORMAL: a commit is written to the WAL file (the OS page cache) before sql_query returns,
  // and fsync'd only at checkpoints. That survives a crash of Kamailio (kill -9: the kernel still has the
  // pages); only an OS crash or power loss can lose the last transactions before a checkpoint. With the
  // default (FULL) every REGISTER that changes a record paid an fsync in the SIP worker: about 2/3 of the
  // plugin's REGISTER cost (docs/benchmarks.md). https://www.sqlite.org/pragma.html#pragma_synchronous
  run("PRAGMA synchronous=NORMAL");
}

/** Creates the table when missing and switches the file to WAL (concurrent readers, no fsync per write). */
export function createSchema(): boolean {
  prepareConnection();
  run("PRAGMA journal_mode=WAL");
  return run("CREATE TABLE IF NOT EXISTS " + TABLE + " (aor TEXT PRIMARY KEY, devices TEXT NOT NULL, expires INTEGER NOT NULL)");
}

/** Writes (or replaces) the row of one AOR; false, logged, when the database refused it. */
export function writeAor(aor: string, devicesJson: string, expiresAtS: number): boolean {
  prepareConnection();
  const ok = run("INSERT OR REPLACE INTO " + TABLE + " (aor, devices, expires) VALUES (" + sqlString(aor) + ", " + sqlString(devicesJson) + ", " + Math.floor(expiresAtS) + ")");
  if (!ok) logError("device record of " + aor + " not written to the database (connection " + DB_CONNECTION + "): it is lost at restart");
  return ok;
}

export function deleteAor(aor: string): boolean {
  prepareConnection();
  const ok = run("DELETE FROM " + TABLE + " WHERE aor = " + sqlString(aor));
  if (!ok) logError("device record of " + aor + " not deleted from the database (connection " + DB_CONNECTION + ")");
  return ok;
}

/** Calls `visit` with every row still within retention, in pages (sqlops holds a result in pkg memory). */
export function readAll(nowS: number, visit: (aor: string, devicesJson: string) => void): boolean {
  prepareConnection();
  let after = "";
  for (;;) {
    const rc = KSR.sqlops.sql_query(
      DB_CONNECTION,
      "SELECT aor, devices FROM " + TABLE + " WHERE expires > " + Math.floor(nowS) + " AND aor > " + sqlString(after) + " ORDER BY aor LIMIT " + LOAD_PAGE_ROWS,
      RESULT,
    );
    if (rc < 0) {
      KSR.sqlops.sql_result_free(RESULT);
      return false;
    }
    const rows = KSR.sqlops.sql_num_rows(RESULT);
    for (let row = 0; row < rows; row++) {
      after = String(KSR.sqlops.sql_result_get(RESULT, row, 0));
      visit(after, String(KSR.sqlops.sql_result_get(RESULT, row, 1)));
    }
    KSR.sqlops.sql_result_free(RESULT);
    if (rows < LOAD_PAGE_ROWS) break;
  }
  run("DELETE FROM " + TABLE + " WHERE expires <= " + Math.floor(nowS));
  return true;
}
