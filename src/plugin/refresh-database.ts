// Which binding lifetimes got their refresh push (refresh-pushes.ts), on disk: a restart loses htable, and a binding
// usrloc kept across it must not be pushed a second time in one lifetime. One row per binding (`<aor>|<Contact URI>`)
// with the expiry it was pushed for, written by the timer process (never on the SIP path), about once per binding
// lifetime; rows of lifetimes that ended are deleted at start. Same connection and SQL dialect as
// message-database.ts (sqlite and PostgreSQL).

import { DB_CONNECTION, prepareConnection, query, run, sqlString } from "./device-database";
import { logError } from "./log";

const TABLE = "pusher_refresh_pushes";
const RESULT = "pusher_refresh_result";

export function createRefreshSchema(): boolean {
  prepareConnection();
  return run("CREATE TABLE IF NOT EXISTS " + TABLE + " (binding VARCHAR(1024) PRIMARY KEY, expires BIGINT NOT NULL)");
}

/** Records that the lifetime of `binding` ending at `expiresAtS` got its push. */
export function recordRefreshPush(binding: string, expiresAtS: number): void {
  prepareConnection();
  const ok = run(
    "INSERT INTO " +
      TABLE +
      " (binding, expires) VALUES (" +
      sqlString(binding) +
      ", " +
      Math.floor(expiresAtS) +
      ")" +
      " ON CONFLICT (binding) DO UPDATE SET expires = excluded.expires",
  );
  if (!ok)
    logError(
      "refresh push of " +
        binding +
        " not recorded in the database (connection " +
        DB_CONNECTION +
        "): a restart may push it again",
    );
}

/** The lifetimes pushed that have not ended (binding → expiry), after deleting the others; null on a database error. */
export function pushedLifetimes(nowS: number): { [binding: string]: number } | null {
  if (!createRefreshSchema()) return null;
  run("DELETE FROM " + TABLE + " WHERE expires <= " + Math.floor(nowS));
  const found: { [binding: string]: number } = {};
  const rc = query("SELECT binding, expires FROM " + TABLE, RESULT);
  if (rc >= 0) {
    const rows = KSR.sqlops.sql_num_rows(RESULT);
    for (let row = 0; row < rows; row++)
      found[String(KSR.sqlops.sql_result_get(RESULT, row, 0))] = Number(KSR.sqlops.sql_result_get(RESULT, row, 1));
  }
  KSR.sqlops.sql_result_free(RESULT);
  return rc >= 0 ? found : null;
}
