// Device records written straight into a device database (the plugin's table, src/plugin/device-database.ts), not
// through REGISTERs: what a node restarted with many phones on disk finds. Into a sqlite file, one sqlite3 statement
// builds every row (generate_series, json_object); into PostgreSQL, psql's COPY takes rows generated here; either
// way a million rows take seconds. Phone n of a prefix is seededPhone(prefix, n); each row holds that phone's one
// device, a copy of `template` (a record the plugin wrote for a real REGISTER) with the phone's AOR, instance (in the
// template's form: `urn:uuid:<uuid>` for a REGISTER's +sip.instance), token and registeredAtMs. Both write the same
// text for a row (compact JSON, the same key order), so a record takes the same memory once loaded.
import { execFileSync } from "node:child_process";
import type { DeviceRecord } from "../../src/device-record";
import type { PostgresServer } from "./postgres";

/** A device record for seeding tests: a backslash and a quote in its User-Agent, which each database and each
 * command's output (COPY's text format, SQL strings, sqlite3 -json, psql) escape their own way. */
export const MODEL_RECORD: DeviceRecord = {
  aor: "model1@example.com",
  instance: "urn:uuid:00000000-0000-4000-8000-000000000001",
  appId: "com.example.app",
  provider: "apple",
  token: "ab".repeat(32),
  userAgent: "MyMobileApp iOS 1.0 \\o/ 'quoted'",
  proxy: "sip:127.0.0.1:5060",
  registeredAtMs: 1,
  userCaseKept: true,
};

export interface SeededPhone {
  /** The AOR's user part: `<prefix><n>`, n from 1. */
  user: string;
  /** 64 hex digits, as iOS gives them. */
  token: string;
  /** The +sip.instance UUID (a REGISTER sends `<urn:uuid:…>`). */
  instance: string;
}

/** 8 hex digits of `prefix`: phones of two prefixes never share a token or an instance. */
function saltOf(prefix: string): string {
  return [...prefix]
    .reduce((hash, char) => (hash * 31 + char.charCodeAt(0)) >>> 0, 7)
    .toString(16)
    .padStart(8, "0");
}

// A token's 56 hex digits after the salt: n·K mod 2^32 for each K, 8 digits each (K odd: one-to-one, so the first
// alone tells every phone apart). A real token is random; tokens that differ only in their last digits (n padded
// with zeros, as they were) made every row of a load's page one string to Duktape's hash, which samples one byte in
// (length / 32 + 1): each row then compared against the page's others when interned, 30% of the load's CPU
// (perf, 400 000 rows), a cost real rows do not have.
const TOKEN_MULTIPLIERS = [2654435761, 2246822519, 3266489917, 668265263, 374761393, 2869860233, 1640531527];

/** Phone n of `prefix`, as seedDeviceRows stores it. */
export function seededPhone(prefix: string, n: number): SeededPhone {
  const salt = saltOf(prefix);
  return {
    user: `${prefix}${n}`,
    token:
      salt +
      TOKEN_MULTIPLIERS.map((multiplier) => (Math.imul(n, multiplier) >>> 0).toString(16).padStart(8, "0")).join(""),
    instance: `${salt}-0000-4000-8000-${n.toString(16).padStart(12, "0")}`,
  };
}

export interface SeedOptions {
  prefix: string;
  /** Phones 1 … count. */
  count: number;
  domain: string;
  /** A device record the plugin wrote: every field but aor, instance, token and registeredAtMs is copied. */
  template: DeviceRecord;
  /** When the phones last registered (default: now). */
  registeredAtMs?: number;
  /** The rows' `expires` (epoch s; default: a year from now). */
  expiresAtS?: number;
}

// The plugin's own schema (device-database.ts createSchema).
const CREATE_TABLE =
  "CREATE TABLE IF NOT EXISTS pusher_devices (aor TEXT PRIMARY KEY, devices TEXT NOT NULL, expires BIGINT NOT NULL)";
const PER_PHONE_FIELDS = ["aor", "instance", "token", "registeredAtMs"];

/** The rows' registeredAtMs and expires, the defaults filled in. */
function timesOf(options: SeedOptions): { registeredAtMs: number; expiresAtS: number } {
  return {
    registeredAtMs: options.registeredAtMs ?? Date.now(),
    expiresAtS: options.expiresAtS ?? Math.floor(Date.now() / 1000) + 365 * 24 * 3600,
  };
}

/** What the template's instance has ahead of the UUID: `urn:uuid:` for a REGISTER's +sip.instance, else nothing. */
function instancePrefixOf(template: DeviceRecord): string {
  return /^urn:uuid:/i.test(template.instance) ? template.instance.slice(0, "urn:uuid:".length) : "";
}

function sqlText(value: string): string {
  return "'" + value.replace(/'/g, "''") + "'";
}

/** A sqlite json_object(…) argument list for the template's fields other than the per-phone ones. */
function templateFields(template: DeviceRecord): string {
  const fields: string[] = [];
  for (const [name, value] of Object.entries(template)) {
    if (PER_PHONE_FIELDS.includes(name) || value === undefined) continue;
    const literal = typeof value === "string" ? sqlText(value) : `json(${sqlText(JSON.stringify(value))})`;
    fields.push(`${sqlText(name)}, ${literal}`);
  }
  return fields.join(", ");
}

/**
 * Adds the rows of phones 1 … count of `prefix` to the sqlite file (created with the plugin's table when missing;
 * an AOR already there is replaced). Kamailio must not run on the file meanwhile.
 */
export function seedDeviceRows(file: string, options: SeedOptions): void {
  const salt = saltOf(options.prefix);
  const { registeredAtMs, expiresAtS } = timesOf(options);
  const aor = `${sqlText(options.prefix)} || value || ${sqlText("@" + options.domain)}`;
  // The plugin keeps a +sip.instance as the REGISTER gave it: `urn:uuid:<uuid>` (seededPhone's instance is the UUID).
  const instancePrefix = instancePrefixOf(options.template);
  const instance = `printf('%s%s-0000-4000-8000-%012x', ${sqlText(instancePrefix)}, ${sqlText(salt)}, value)`;
  // seededPhone's token (value · K stays within sqlite's 64-bit integers for any count that fits in a table).
  const token = `printf('%s${"%08x".repeat(TOKEN_MULTIPLIERS.length)}', ${sqlText(salt)}, ${TOKEN_MULTIPLIERS.map((multiplier) => `(value * ${multiplier}) % 4294967296`).join(", ")})`;
  const extra = templateFields(options.template);
  const record = `json_object('aor', ${aor}, 'instance', ${instance}, 'token', ${token}, 'registeredAtMs', ${registeredAtMs}${extra ? ", " + extra : ""})`;
  const sql = [
    // The plugin's journal mode and schema.
    "PRAGMA journal_mode=WAL;",
    CREATE_TABLE + ";",
    "BEGIN;",
    `INSERT INTO pusher_devices (aor, devices, expires) SELECT ${aor}, json_object(${instance}, json(${record})), ${expiresAtS} FROM generate_series(1, ${options.count})` +
      " ORDER BY 1 ON CONFLICT (aor) DO UPDATE SET devices = excluded.devices, expires = excluded.expires;",
    "COMMIT;",
  ].join("\n");
  execFileSync("sqlite3", ["-batch", "-bail", file], {
    input: sql,
    encoding: "utf8",
    stdio: ["pipe", "pipe", "pipe"],
    maxBuffer: 16 * 1024 * 1024,
  });
}

// COPY's text format: a backslash, tab, newline or CR in a value is escaped.
const COPY_ESCAPES: Record<string, string> = { "\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r" };

function copyText(value: string): string {
  return value.replace(/[\\\t\n\r]/g, (character) => COPY_ESCAPES[character]);
}

/** The COPY lines (`aor`, `devices`, `expires`) of phones 1 … count, 1 000 to a chunk. */
function* copyLines(options: SeedOptions): Generator<string> {
  const { registeredAtMs, expiresAtS } = timesOf(options);
  const instancePrefix = instancePrefixOf(options.template);
  const shared = Object.fromEntries(
    Object.entries(options.template).filter(([name, value]) => !PER_PHONE_FIELDS.includes(name) && value !== undefined),
  );
  let chunk: string[] = [];
  for (let n = 1; n <= options.count; n++) {
    const phone = seededPhone(options.prefix, n);
    const aor = `${phone.user}@${options.domain}`;
    const instance = instancePrefix + phone.instance;
    // json_object's order in seedDeviceRows: the per-phone fields, then the template's.
    const record = { aor, instance, token: phone.token, registeredAtMs, ...shared };
    chunk.push(`${copyText(aor)}\t${copyText(JSON.stringify({ [instance]: record }))}\t${expiresAtS}\n`);
    if (chunk.length === 1000) {
      yield chunk.join("");
      chunk = [];
    }
  }
  if (chunk.length) yield chunk.join("");
}

/**
 * seedDeviceRows into PostgreSQL's `pusher` database: the rows go through COPY into a temporary table, then into the
 * plugin's table in AOR order (an AOR already there is replaced), which is left owned by the role Kamailio logs in
 * as and vacuumed (a database in service has its visibility map and statistics; COPY's fresh rows have neither).
 */
export async function seedPostgresDeviceRows(postgres: PostgresServer, options: SeedOptions): Promise<void> {
  function* script(): Generator<string> {
    yield `${CREATE_TABLE};\nALTER TABLE pusher_devices OWNER TO pusher;\n`;
    yield "CREATE TEMPORARY TABLE seed_devices (aor TEXT, devices TEXT, expires BIGINT);\n";
    yield "COPY seed_devices (aor, devices, expires) FROM STDIN;\n";
    yield* copyLines(options);
    yield "\\.\n";
    yield "INSERT INTO pusher_devices (aor, devices, expires) SELECT aor, devices, expires FROM seed_devices ORDER BY aor" +
      " ON CONFLICT (aor) DO UPDATE SET devices = excluded.devices, expires = excluded.expires;\n";
    yield "VACUUM ANALYZE pusher_devices;\n";
  }
  await postgres.script(script());
}
