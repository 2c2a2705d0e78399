// Device records written straight into a sqlite device database (the plugin's table, src/plugin/device-database.ts),
// not through REGISTERs: what a node restarted with many phones on disk finds. One sqlite3 statement builds every row
// (generate_series, json_object), so a million rows take seconds. Phone n of a prefix is seededPhone(prefix, n); each
// row holds that phone's one device, a copy of `template` (a record the plugin wrote for a real REGISTER) with the
// phone's AOR, instance (in the template's form: `urn:uuid:<uuid>` for a REGISTER's +sip.instance), token and
// registeredAtMs.
import { execFileSync } from "node:child_process";
import type { DeviceRecord } from "../../src/device-record";

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

/** Phone n of `prefix`, as seedDeviceRows stores it. */
export function seededPhone(prefix: string, n: number): SeededPhone {
  const salt = saltOf(prefix);
  return {
    user: `${prefix}${n}`,
    token: salt + n.toString(16).padStart(56, "0"),
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

function sqlText(value: string): string {
  return "'" + value.replace(/'/g, "''") + "'";
}

/** A sqlite json_object(…) argument list for the template's fields other than the per-phone ones. */
function templateFields(template: DeviceRecord): string {
  const fields: string[] = [];
  for (const [name, value] of Object.entries(template)) {
    if (["aor", "instance", "token", "registeredAtMs"].includes(name) || value === undefined) continue;
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
  const registeredAtMs = options.registeredAtMs ?? Date.now();
  const expiresAtS = options.expiresAtS ?? Math.floor(Date.now() / 1000) + 365 * 24 * 3600;
  const aor = `${sqlText(options.prefix)} || value || ${sqlText("@" + options.domain)}`;
  // The plugin keeps a +sip.instance as the REGISTER gave it: `urn:uuid:<uuid>` (seededPhone's instance is the UUID).
  const instancePrefix = /^urn:uuid:/i.test(options.template.instance)
    ? options.template.instance.slice(0, "urn:uuid:".length)
    : "";
  const instance = `printf('%s%s-0000-4000-8000-%012x', ${sqlText(instancePrefix)}, ${sqlText(salt)}, value)`;
  const token = `printf('%s%056x', ${sqlText(salt)}, value)`;
  const extra = templateFields(options.template);
  const record = `json_object('aor', ${aor}, 'instance', ${instance}, 'token', ${token}, 'registeredAtMs', ${registeredAtMs}${extra ? ", " + extra : ""})`;
  const sql = [
    // The plugin's own schema (device-database.ts createSchema) and journal mode.
    "PRAGMA journal_mode=WAL;",
    "CREATE TABLE IF NOT EXISTS pusher_devices (aor TEXT PRIMARY KEY, devices TEXT NOT NULL, expires BIGINT NOT NULL);",
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
