// The device records' database, read by the CLI: `pusher devices` lists every AOR from it when the running Kamailio
// holds more than one htable.dump reply can carry (devices-command.ts). The plugin's table (src/plugin/
// device-database.ts): `pusher_devices (aor TEXT PRIMARY KEY, devices TEXT, expires BIGINT)`, one row per AOR holding
// the JSON of its devices (the htable item without its marks), `expires` (epoch s) when its last device's retention
// ends. Every record is on disk before its REGISTER is answered: the database is the source of truth.
// Read where `pusher start` has Kamailio keep it: `<stateDir>/devices.sqlite` with Debian's `sqlite3` command (as
// users-database.ts does: Node 20 has no sqlite of its own), or on a cluster node cluster.database (PostgreSQL) with
// `psql`, its password from the pgpass file start wrote. Rows come a page at a time in AOR order (`aor > last …
// LIMIT`), as the plugin's load reads them: short reads, never a million rows in one string.

import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { PusherConfig } from "../config";
import { CliError } from "./config-file";
import { RuntimePaths, splitDatabasePassword } from "./kamailio-runtime";

const TABLE = "pusher_devices";
// 1 000 rows of one device each are about 0.5 MB of output: one sqlite3 or psql run per page.
const PAGE_ROWS = 1000;
// A page of AORs of many devices each (devices.maxPerAor, 1 000 at most: about 500 MB) fits.
const MAX_PAGE_BYTES = 768 * 1024 * 1024;

export type DeviceDatabase =
  | { kind: "sqlite"; file: string }
  /** `url` without its password; libpq reads that from `passwordFile` (PGPASSFILE), when there is one. */
  | { kind: "postgres"; url: string; passwordFile: string | null };

/** One row of the table: the AOR and the JSON of its devices, as the htable item holds it (without marks). */
export interface DeviceRow {
  aor: string;
  value: string;
}

/** Where the next page starts: the last row's AOR as an SQL expression of the database's. */
interface PageOf {
  rows: DeviceRow[];
  after: string;
}

/**
 * The database the running `pusher start` keeps the device records in (start.ts, kamailioArguments): a cluster
 * node's cluster.database, with start's cluster options over the config file's cluster.* (as `pusher reload` reads
 * them), else the sqlite file in the state dir.
 */
export function runningDeviceDatabase(config: PusherConfig, paths: RuntimePaths): DeviceDatabase {
  if (config.cluster.nodeId < 1) return { kind: "sqlite", file: paths.deviceDatabase };
  const { url, passwordLine } = splitDatabasePassword(config.cluster.database!);
  // start wrote the password there (mode 0600) for Kamailio's libpq; psql reads the same file.
  const passwordFile =
    passwordLine !== null && existsSync(paths.databasePasswordFile) ? paths.databasePasswordFile : null;
  return { kind: "postgres", url, passwordFile };
}

/** Where the records are, for the operator: the file, or the URL without its password. */
export function describeDeviceDatabase(database: DeviceDatabase): string {
  return database.kind === "sqlite" ? database.file : database.url;
}

/**
 * Text as a PostgreSQL string literal, whatever the server's standard_conforming_strings: E'…' reads a backslash as
 * an escape in every setting, so backslashes are doubled as quotes are.
 */
function postgresLiteral(text: string): string {
  return "E'" + text.replace(/\\/g, "\\\\").replace(/'/g, "''") + "'";
}

function readError(database: DeviceDatabase, command: string, error: unknown): CliError {
  if ((error as NodeJS.ErrnoException).code === "ENOENT")
    return new CliError(
      "PUSHER_ERR_DEVICES_DATABASE",
      command === "sqlite3"
        ? "the sqlite3 command is missing: apt-get install sqlite3"
        : "the psql command is missing: apt-get install postgresql-client",
    );
  const stderr = String((error as { stderr?: unknown }).stderr ?? "").trim();
  return new CliError(
    "PUSHER_ERR_DEVICES_DATABASE",
    `cannot read the device records from ${describeDeviceDatabase(database)}: ${stderr || (error as Error).message.trim()}`,
  );
}

/**
 * One page of rows after `after` (an SQL expression: "" for the first page), in AOR order, still within retention at
 * `nowS` (as the plugin's load reads them).
 */
function readPage(database: DeviceDatabase, nowS: number, after: string, pageRows: number): PageOf {
  const where = `expires > ${Math.floor(nowS)}` + (after ? ` AND aor > ${after}` : "");
  if (database.kind === "sqlite") {
    // The next page starts after the last AOR's bytes (hex): an AOR that is not valid UTF-8 (the plugin stores what
    // the phone sent) reaches this process as U+FFFD, which would skip or repeat the rows in between.
    const page = `SELECT aor, devices, hex(aor) AS cursor FROM ${TABLE} WHERE ${where} ORDER BY aor LIMIT ${pageRows}`;
    let output: string;
    try {
      // -json: every value JSON-quoted, whatever characters the AOR or the devices hold. -readonly: never a write
      // (nor a new file) from here. .timeout: a reader of a WAL file waits only out a checkpoint's recovery.
      output = execFileSync(
        "sqlite3",
        ["-readonly", "-batch", "-bail", "-json", "-cmd", ".timeout 5000", database.file, page],
        { encoding: "utf8", maxBuffer: MAX_PAGE_BYTES, stdio: ["ignore", "pipe", "pipe"] },
      );
    } catch (error) {
      throw readError(database, "sqlite3", error);
    }
    // No rows: no output at all.
    if (!output.trim()) return { rows: [], after };
    const read = JSON.parse(output) as { aor: string; devices: string; cursor: string }[];
    return {
      rows: read.map((row) => ({ aor: row.aor, value: row.devices })),
      after: read.length ? `CAST(X'${read[read.length - 1].cursor.replace(/[^0-9A-F]/gi, "")}' AS TEXT)` : after,
    };
  }
  const page = `SELECT aor, devices FROM ${TABLE} WHERE ${where} ORDER BY aor LIMIT ${pageRows}`;
  let output: string;
  try {
    // One JSON array of [aor, devices] per page on one line (-A -t: unaligned, no header): any character survives.
    output = execFileSync(
      "psql",
      [
        "-X",
        "-w",
        "-q",
        "-A",
        "-t",
        "-v",
        "ON_ERROR_STOP=1",
        "-d",
        database.url,
        "-c",
        `SELECT coalesce(json_agg(json_build_array(aor, devices) ORDER BY aor), '[]') FROM (${page}) AS page`,
      ],
      {
        encoding: "utf8",
        maxBuffer: MAX_PAGE_BYTES,
        stdio: ["ignore", "pipe", "pipe"],
        env: {
          ...process.env,
          PGCONNECT_TIMEOUT: "10",
          ...(database.passwordFile ? { PGPASSFILE: database.passwordFile } : {}),
        },
      },
    );
  } catch (error) {
    throw readError(database, "psql", error);
  }
  const rows = (JSON.parse(output) as [string, string][]).map(([aor, value]) => ({ aor, value }));
  return { rows, after: rows.length ? postgresLiteral(rows[rows.length - 1].aor) : after };
}

/**
 * Every row still within retention at `nowS`, in AOR order (the database's), read a page at a time as the caller
 * walks them. Throws CliError PUSHER_ERR_DEVICES_DATABASE when the database cannot be read or its command is missing.
 */
export function* deviceRows(
  database: DeviceDatabase,
  nowS: number,
  pageRows: number = PAGE_ROWS,
): Generator<DeviceRow> {
  if (database.kind === "sqlite" && !existsSync(database.file))
    throw new CliError("PUSHER_ERR_DEVICES_DATABASE", `no device database at ${database.file}`);
  let after = "";
  for (;;) {
    const page = readPage(database, nowS, after, pageRows);
    yield* page.rows;
    if (page.rows.length < pageRows) return;
    after = page.after;
  }
}
