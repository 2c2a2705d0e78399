// The device records' database as `pusher devices` reads it when it lists every AOR of a big node: the database
// `pusher start` has Kamailio use, and its rows a page at a time, from sqlite (Debian's sqlite3) and from PostgreSQL
// (psql, its password from a pgpass file), the same rows from both.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runningConfig } from "../../src/cli/cluster-options";
import { DeviceDatabase, deviceRows, runningDeviceDatabase } from "../../src/cli/device-database-reader";
import { devicesFromItems, devicesJson } from "../../src/cli/devices-command";
import { splitDatabasePassword } from "../../src/cli/kamailio-runtime";
import { defaultConfig } from "../../src/config";
import type { DeviceRecord } from "../../src/device-record";
import { startPostgres, type PostgresServer } from "../support/postgres";
import { MODEL_RECORD, seedDeviceRows, seedPostgresDeviceRows, type SeedOptions } from "../support/seed-devices";

const NOW_S = 1_750_000_000;
// One time for both databases: each row the same text.
const REGISTERED_AT_MS = NOW_S * 1000 - 3600_000;
const TEMPLATE: DeviceRecord = MODEL_RECORD;
const SEEDS: SeedOptions[] = [
  {
    prefix: "seed",
    count: 1200,
    domain: "example.com",
    template: TEMPLATE,
    registeredAtMs: REGISTERED_AT_MS,
    expiresAtS: NOW_S + 3600,
  },
  // A quote in the AOR: the next page starts after it.
  {
    prefix: "o'neil",
    count: 3,
    domain: "example.com",
    template: TEMPLATE,
    registeredAtMs: REGISTERED_AT_MS,
    expiresAtS: NOW_S + 3600,
  },
  // Rows past their expiry: the plugin's load skips them, and so does the list.
  {
    prefix: "gone",
    count: 5,
    domain: "example.com",
    template: TEMPLATE,
    registeredAtMs: REGISTERED_AT_MS,
    expiresAtS: NOW_S,
  },
];
const LISTED = 1203;

let dir: string;
let sqlite: DeviceDatabase;
let postgres: PostgresServer;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "pusher-device-rows-"));
  sqlite = { kind: "sqlite", file: join(dir, "devices.sqlite") };
  for (const seed of SEEDS) seedDeviceRows(sqlite.file, seed);
});

afterAll(() => {
  postgres?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("deviceRows", () => {
  it("pages past AORs that are not valid UTF-8 in sqlite (the plugin stores the bytes a phone sent) without skipping rows", () => {
    const file = join(dir, "latin1.sqlite");
    seedDeviceRows(file, { ...SEEDS[0], prefix: "z", count: 3 });
    // caf\xE9, caf\xEE and caf\xFF: Latin-1 bytes, read by Node as U+FFFD (EF BF BD). A cursor of the AOR as read
    // skipped caf\xEE (after E9) and read caf\xFF again and again (after FF: this test never ended).
    const insert = (hex: string) =>
      `INSERT INTO pusher_devices (aor, devices, expires) SELECT CAST(X'${hex}' AS TEXT), devices, expires FROM pusher_devices LIMIT 1;`;
    execFileSync("sqlite3", [file, insert("636166E9406578") + insert("636166EE406578") + insert("636166FF406578")]);
    const rows = [...deviceRows({ kind: "sqlite", file }, NOW_S, 1)];
    expect(rows).toHaveLength(6);
  });

  it("reads every row within its expiry from sqlite in AOR order, a page at a time", () => {
    const rows = [...deviceRows(sqlite, NOW_S, 100)];
    expect(rows).toHaveLength(LISTED);
    const aors = rows.map((row) => row.aor);
    expect(aors).toEqual([...aors].sort());
    expect(new Set(aors).size).toBe(LISTED);
    expect(aors).toContain("o'neil2@example.com");
    expect(aors.some((aor) => aor.startsWith("gone"))).toBe(false);
    const devices = devicesFromItems(rows, defaultConfig(), NOW_S * 1000);
    expect(devices).toHaveLength(LISTED);
    expect(devices.every((device) => device.userAgent === TEMPLATE.userAgent)).toBe(true);
  });

  it("reads the same rows from PostgreSQL with the password from the pgpass file", async () => {
    postgres = await startPostgres();
    for (const seed of SEEDS) await seedPostgresDeviceRows(postgres, seed);
    const { url, passwordLine } = splitDatabasePassword(postgres.url);
    const passwordFile = join(dir, "pgpass");
    writeFileSync(passwordFile, `${passwordLine}\n`, { mode: 0o600 });
    const rows = [...deviceRows({ kind: "postgres", url, passwordFile }, NOW_S, 100)];
    expect(rows).toEqual([...deviceRows(sqlite, NOW_S)]);
  }, 60_000);

  it("names what is wrong: a missing file, a database that refuses, a missing command", () => {
    expect(() => [...deviceRows({ kind: "sqlite", file: join(dir, "none.sqlite") }, NOW_S)]).toThrow(
      expect.objectContaining({ code: "PUSHER_ERR_DEVICES_DATABASE", message: expect.stringMatching(/none\.sqlite/) }),
    );
    const empty = join(dir, "empty.sqlite");
    execFileSync("sqlite3", [empty, "CREATE TABLE other (a)"]);
    expect(() => [...deviceRows({ kind: "sqlite", file: empty }, NOW_S)]).toThrow(/empty\.sqlite: .*no such table/);
    const path = process.env.PATH;
    process.env.PATH = join(dir, "no-commands");
    try {
      expect(() => [...deviceRows(sqlite, NOW_S)]).toThrow(/apt-get install sqlite3/);
      expect(() => [
        ...deviceRows({ kind: "postgres", url: "postgres://x@127.0.0.1/x", passwordFile: null }, NOW_S),
      ]).toThrow(/apt-get install postgresql-client/);
    } finally {
      process.env.PATH = path;
    }
  });
});

describe("runningDeviceDatabase", () => {
  it("is the sqlite file in the state dir, or a cluster node's PostgreSQL from pusher start's options", () => {
    const configPath = join(dir, "pusher.json");
    writeFileSync(configPath, JSON.stringify({ stateDir: "state" }));
    const running = () => runningConfig(configPath);
    const { paths } = running();
    expect(runningDeviceDatabase(running().config, paths)).toEqual({
      kind: "sqlite",
      file: join(dir, "state", "devices.sqlite"),
    });
    mkdirSync(paths.stateDir, { recursive: true });
    writeFileSync(
      paths.clusterOptions,
      JSON.stringify({
        nodeId: "1",
        nodes: "2",
        dmqListen: "127.0.1.1:5090",
        peers: "127.0.1.2:5090",
        database: "postgres://pusher:secret@db.example:5433/pusher",
      }),
    );
    writeFileSync(paths.databasePasswordFile, "db.example:5433:pusher:pusher:secret\n", { mode: 0o600 });
    expect(runningDeviceDatabase(running().config, paths)).toEqual({
      kind: "postgres",
      url: "postgres://pusher@db.example:5433/pusher",
      passwordFile: paths.databasePasswordFile,
    });
  });
});

describe("devicesJson", () => {
  it("writes what JSON.stringify(devices, null, 2) writes, a device at a time", () => {
    const devices = devicesFromItems([...deviceRows(sqlite, NOW_S)].slice(0, 3), defaultConfig(), 0);
    devices[0].options = { "pn-silent": "1" };
    for (const list of [[], devices.slice(0, 1), devices])
      expect([...devicesJson(list)].join("")).toBe(JSON.stringify(list, null, 2));
  });
});
