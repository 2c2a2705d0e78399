// The seeded device rows of benchmarks 8 and 9 (test/support/seed-devices.ts): the sqlite file and PostgreSQL get the
// same text for each phone, so a record takes the same memory once loaded whichever database it came from.
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import type { DeviceRecord } from "../../src/device-record";
import { startPostgres, type PostgresServer } from "../support/postgres";
import {
  MODEL_RECORD,
  seedDeviceRows,
  seedPostgresDeviceRows,
  seededPhone,
  type SeedOptions,
} from "../support/seed-devices";

const TEMPLATE: DeviceRecord = { ...MODEL_RECORD, pushKind: "voip", options: { "pn-silent": "1" } };

const SEED: SeedOptions = {
  prefix: "seed",
  count: 1200,
  domain: "example.com",
  template: TEMPLATE,
  registeredAtMs: 1_700_000_000_000,
  expiresAtS: 1_800_000_000,
};

let postgres: PostgresServer;
let dir: string;

beforeAll(async () => {
  postgres = await startPostgres();
  dir = mkdtempSync(join(tmpdir(), "pusher-seed-"));
}, 30_000);

afterAll(() => {
  postgres?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

it("writes the same row text for each phone into sqlite and PostgreSQL, and replaces an AOR already there", async () => {
  const file = join(dir, "devices.sqlite");
  seedDeviceRows(file, SEED);
  await seedPostgresDeviceRows(postgres, { ...SEED, count: 10, registeredAtMs: 5 });
  await seedPostgresDeviceRows(postgres, SEED);
  const sql = "SELECT aor || '|' || devices || '|' || expires FROM pusher_devices ORDER BY aor";
  const sqliteRows = execFileSync("sqlite3", [file, sql], { encoding: "utf8", maxBuffer: 64 << 20 });
  const postgresRows = postgres.query(sql);
  expect(postgresRows.trim().split("\n")).toHaveLength(SEED.count);
  expect(postgresRows).toBe(sqliteRows);
  const phone = seededPhone("seed", 1000);
  const [aor, devices] = postgres
    .query(`SELECT aor, devices FROM pusher_devices WHERE aor = 'seed1000@example.com'`)
    .trim()
    .split("|");
  expect(aor).toBe(`${phone.user}@example.com`);
  expect(JSON.parse(devices)).toEqual({
    [`urn:uuid:${phone.instance}`]: {
      ...TEMPLATE,
      aor,
      instance: `urn:uuid:${phone.instance}`,
      token: phone.token,
      registeredAtMs: SEED.registeredAtMs,
    },
  });
  // Kamailio's role owns the table it finds: the plugin writes to it.
  expect(postgres.query("SELECT tableowner FROM pg_tables WHERE tablename = 'pusher_devices'").trim()).toBe("pusher");
});
