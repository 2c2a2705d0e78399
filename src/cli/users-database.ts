// SIP users for digest authentication of REGISTERs in the reference cfg: Kamailio's auth_db reads them from
// the standard `subscriber` table of a sqlite file in the state dir. Only HA1 = MD5(user:realm:password) is
// stored (auth_db's calculate_ha1 stays 0), never the password. Written with Debian's `sqlite3` command:
// Node 20 has no sqlite of its own and the CLI has no native dependencies.

import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { chmodSync, existsSync, mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { CliError } from "./config-file";

const SCHEMA =
  "CREATE TABLE IF NOT EXISTS subscriber (id INTEGER PRIMARY KEY AUTOINCREMENT, username TEXT NOT NULL, " +
  "domain TEXT NOT NULL DEFAULT '', password TEXT NOT NULL DEFAULT '', ha1 TEXT NOT NULL DEFAULT '', " +
  "ha1b TEXT NOT NULL DEFAULT '', UNIQUE (username, domain));" +
  // auth_db checks the table version like every Kamailio DB module (subscriber is version 7 in 5.6).
  "CREATE TABLE IF NOT EXISTS version (table_name TEXT NOT NULL PRIMARY KEY, table_version INTEGER NOT NULL DEFAULT 0);" +
  "INSERT OR IGNORE INTO version (table_name, table_version) VALUES ('subscriber', 7);";

export interface SipUser {
  username: string;
  domain: string;
}

function sqlite(file: string, sql: string): string {
  try {
    return execFileSync("sqlite3", ["-batch", "-bail", file, sql], { encoding: "utf8" });
  } catch (error) {
    const missing = (error as NodeJS.ErrnoException).code === "ENOENT";
    throw new CliError(
      "PUSHER_ERR_USERS_DATABASE",
      missing
        ? "the sqlite3 command is missing: apt-get install sqlite3"
        : `cannot write ${file}: ${(error as Error).message.trim()}`,
    );
  }
}

/** Text as an SQL string literal ('' doubles quotes: the only escape SQLite has). */
function literal(text: string): string {
  return "'" + text.replace(/'/g, "''") + "'";
}

/** Creates the users database with its schema when missing (mode 0600: it holds HA1 digests). */
export function ensureUsersDatabase(file: string): void {
  const created = !existsSync(file);
  // The state dir does not exist yet before the first `pusher start` (0700 like start.ts makes it).
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  sqlite(file, SCHEMA);
  if (created) chmodSync(file, 0o600);
}

/** `user@domain` → its parts; the domain is the digest realm (the reference cfg authenticates with realm $fd). */
export function parseSipUser(text: string): SipUser {
  const match = /^([A-Za-z0-9._~!$&'()*+,;=%-]+)@([A-Za-z0-9.-]+|\[[0-9a-fA-F:.]+\])$/.exec(text);
  if (!match)
    throw new CliError(
      "PUSHER_ERR_USAGE",
      `expected user@domain (the AOR the phone registers), got ${JSON.stringify(text)}`,
    );
  return { username: match[1], domain: match[2].toLowerCase() };
}

export function addUser(file: string, user: SipUser, password: string): void {
  if (!password) throw new CliError("PUSHER_ERR_USAGE", "the password must not be empty");
  ensureUsersDatabase(file);
  const ha1 = createHash("md5").update(`${user.username}:${user.domain}:${password}`).digest("hex");
  sqlite(
    file,
    `INSERT INTO subscriber (username, domain, ha1) VALUES (${literal(user.username)}, ${literal(user.domain)}, ${literal(ha1)}) ` +
      `ON CONFLICT (username, domain) DO UPDATE SET ha1 = excluded.ha1;`,
  );
}

export function removeUser(file: string, user: SipUser): boolean {
  ensureUsersDatabase(file);
  const changed = sqlite(
    file,
    `DELETE FROM subscriber WHERE username = ${literal(user.username)} AND domain = ${literal(user.domain)}; SELECT changes();`,
  );
  return changed.trim() !== "0";
}

export function listUsers(file: string): SipUser[] {
  if (!existsSync(file)) return [];
  const rows = sqlite(file, "SELECT username || '@' || domain FROM subscriber ORDER BY domain, username;");
  return rows
    .split("\n")
    .filter(Boolean)
    .map((row) => {
      const at = row.lastIndexOf("@");
      return { username: row.slice(0, at), domain: row.slice(at + 1) };
    });
}
