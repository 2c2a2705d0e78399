// usrloc's `location` table for the reference cfg's WITH_USRLOCDB (kamailio/kamailio.cfg): the bindings survive a
// restart, so calls reach awake phones at once after it and refresh pushes are armed again from each binding's
// expiry (src/plugin/refresh-pushes.ts). usrloc checks the table's version when it starts, so `pusher start` creates
// the file with Kamailio's own schema (utils/kamctl/db_sqlite/usrloc-create.sql of Kamailio 5.6 and 6.0, version 9)
// first, with Debian's `sqlite3` command as users-database.ts does.

import { execFileSync } from "node:child_process";
import { chmodSync, existsSync } from "node:fs";
import { join } from "node:path";
import { CliError } from "./config-file";

const SCHEMA =
  [
    "CREATE TABLE IF NOT EXISTS version (table_name TEXT NOT NULL PRIMARY KEY, table_version INTEGER NOT NULL DEFAULT 0)",
    "CREATE TABLE IF NOT EXISTS location (id INTEGER PRIMARY KEY NOT NULL, ruid VARCHAR(64) DEFAULT '' NOT NULL, " +
      "username VARCHAR(64) DEFAULT '' NOT NULL, domain VARCHAR(64) DEFAULT NULL, contact VARCHAR(512) DEFAULT '' NOT NULL, " +
      "received VARCHAR(128) DEFAULT NULL, path VARCHAR(512) DEFAULT NULL, " +
      "expires TIMESTAMP WITHOUT TIME ZONE DEFAULT '2030-05-28 21:32:15' NOT NULL, q REAL DEFAULT 1.0 NOT NULL, " +
      "callid VARCHAR(255) DEFAULT 'Default-Call-ID' NOT NULL, cseq INTEGER DEFAULT 1 NOT NULL, " +
      "last_modified TIMESTAMP WITHOUT TIME ZONE DEFAULT '2000-01-01 00:00:01' NOT NULL, flags INTEGER DEFAULT 0 NOT NULL, " +
      "cflags INTEGER DEFAULT 0 NOT NULL, user_agent VARCHAR(255) DEFAULT '' NOT NULL, socket VARCHAR(64) DEFAULT NULL, " +
      "methods INTEGER DEFAULT NULL, instance VARCHAR(255) DEFAULT NULL, reg_id INTEGER DEFAULT 0 NOT NULL, " +
      "server_id INTEGER DEFAULT 0 NOT NULL, connection_id INTEGER DEFAULT 0 NOT NULL, keepalive INTEGER DEFAULT 0 NOT NULL, " +
      "partition INTEGER DEFAULT 0 NOT NULL, CONSTRAINT location_ruid_idx UNIQUE (ruid))",
    "CREATE INDEX IF NOT EXISTS location_account_contact_idx ON location (username, domain, contact)",
    "CREATE INDEX IF NOT EXISTS location_expires_idx ON location (expires)",
    "CREATE INDEX IF NOT EXISTS location_tcpcon_idx ON location (connection_id)",
    "CREATE INDEX IF NOT EXISTS location_connection_idx ON location (server_id, connection_id)",
    "INSERT OR IGNORE INTO version (table_name, table_version) VALUES ('location', 9)",
    "CREATE TABLE IF NOT EXISTS location_attrs (id INTEGER PRIMARY KEY NOT NULL, ruid VARCHAR(64) DEFAULT '' NOT NULL, " +
      "username VARCHAR(64) DEFAULT '' NOT NULL, domain VARCHAR(64) DEFAULT NULL, aname VARCHAR(64) DEFAULT '' NOT NULL, " +
      "atype INTEGER DEFAULT 0 NOT NULL, avalue VARCHAR(512) DEFAULT '' NOT NULL, " +
      "last_modified TIMESTAMP WITHOUT TIME ZONE DEFAULT '2000-01-01 00:00:01' NOT NULL)",
    "CREATE INDEX IF NOT EXISTS location_attrs_account_record_idx ON location_attrs (username, domain, ruid)",
    "CREATE INDEX IF NOT EXISTS location_attrs_last_modified_idx ON location_attrs (last_modified)",
    "INSERT OR IGNORE INTO version (table_name, table_version) VALUES ('location_attrs', 1)",
  ].join(";\n") + ";";

/** The bindings' database of a state dir. */
export function locationDatabaseOf(stateDir: string): string {
  return join(stateDir, "location.sqlite");
}

/** Creates the `location` table when missing (mode 0600: the bindings name every phone's address). */
export function ensureLocationDatabase(file: string): void {
  try {
    execFileSync("sqlite3", ["-batch", "-bail", file, SCHEMA], { encoding: "utf8" });
  } catch (error) {
    const missing = (error as NodeJS.ErrnoException).code === "ENOENT";
    throw new CliError(
      "PUSHER_ERR_LOCATION_DATABASE",
      missing
        ? "the sqlite3 command is missing: apt-get install sqlite3"
        : `cannot write ${file}: ${(error as Error).message.trim()}`,
    );
  }
  if (existsSync(file)) chmodSync(file, 0o600);
}

/** Kamailio's `-A` defines that turn WITH_USRLOCDB on with this file. */
export function locationDatabaseArguments(file: string): string[] {
  return ["-A", "WITH_USRLOCDB", "-A", `PUSHER_LOCATION_DB_URL=${JSON.stringify(`sqlite:///${file}`)}`];
}
