// How benchmarks 8 and 9 restart a node with many device records on disk: `pusher start` (Kamailio + helper) with one
// phone registered for real through bench/sipp/register.xml, whose record, as the plugin wrote it, is the template
// of every seeded row; then stopped, the device database seeded straight with many more phones
// (test/support/seed-devices.ts: no REGISTERs), and started again on the same config, state and ports. The device
// database is the state folder's sqlite file, or a PostgreSQL server of its own (test/support/postgres.ts), which
// `pusher start` uses as a cluster node (cluster.database): here a cluster of one node, the only way `pusher start`
// keeps its records in PostgreSQL (it also loads dmq: each record stored is replicated, to no other node here).
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import type { DeviceRecord } from "../../src/device-record";
import { parseHtableItems } from "../../src/cli/devices-command";
import { freePort } from "../../test/support/free-port";
import { startPostgres, type PostgresServer } from "../../test/support/postgres";
import {
  seedDeviceRows,
  seedPostgresDeviceRows,
  seededPhone,
  type SeededPhone,
  type SeedOptions,
} from "../../test/support/seed-devices";
import { DOMAIN, nextAddress } from "../../test/support/topology";
import { waitUntil } from "../../test/support/wait-until";
import { BENCH_APP_ID, BENCH_USER_AGENT_REGEX, registerKeys } from "../register-cost";
import { TEST_CA_DIR } from "./paths";
import { backendCpuMs } from "./postgres-backends";
import { startPusherRun, type PusherRun } from "./pusher-run";
import { runSippLoad, writeInjectionFile } from "./sipp-load";

export interface SeedGroup {
  /** Phones `<prefix>1` … `<prefix><count>` (seededPhone). */
  prefix: string;
  count: number;
}

export interface SeededRestartOptions {
  groups: SeedGroup[];
  sharedMemoryMb: number;
  /** PUSHER_DEVICES_HTABLE_SIZE and PUSHER_TOKENS_HTABLE_SIZE. */
  htableSize: number;
  /** The mock APNs (bench-apns.ts) as `host:port`: production and sandbox. */
  apnsHost: string;
  timers: { inviteFirstMs: number; pushWaitMs: number; afterWakeMs: number };
  /** Where the records are: the state folder's sqlite file (default), or PostgreSQL. */
  database?: DeviceDatabaseKind;
}

export type DeviceDatabaseKind = "sqlite" | "postgres";

/** The device database of a seeded restart: what `pusher start` is told, and how rows get in. */
export interface SeededDatabase {
  kind: DeviceDatabaseKind;
  /** pusher.json keys that point `pusher start` at it. */
  config: Record<string, unknown>;
  seed(stateDir: string, options: SeedOptions): Promise<void>;
  rows(stateDir: string): number;
  /** CPU (ms) of the database server's sessions of Kamailio so far (0 for sqlite: its work is Kamailio's). */
  serverCpuMs(): number;
  stop(): void;
}

function sqliteFile(stateDir: string): string {
  return join(stateDir, "devices.sqlite");
}

async function openDeviceDatabase(kind: DeviceDatabaseKind): Promise<SeededDatabase> {
  if (kind === "sqlite")
    return {
      kind,
      config: {},
      seed: async (stateDir, options) => seedDeviceRows(sqliteFile(stateDir), options),
      rows: (stateDir) =>
        Number(
          execFileSync("sqlite3", [sqliteFile(stateDir), "SELECT count(*) FROM pusher_devices"], { encoding: "utf8" }),
        ),
      serverCpuMs: () => 0,
      stop: () => {},
    };
  const postgres: PostgresServer = await startPostgres();
  return {
    kind,
    config: {
      cluster: { nodeId: 1, nodes: 1, dmqListen: `127.0.0.1:${await freePort()}`, database: postgres.url },
    },
    seed: (_stateDir, options) => seedPostgresDeviceRows(postgres, options),
    rows: () => Number(postgres.query("SELECT count(*) FROM pusher_devices")),
    serverCpuMs: () => [...backendCpuMs(postgres).values()].reduce((sum, ms) => sum + ms, 0),
    stop: () => postgres.stop(),
  };
}

export interface SeededRestart {
  pusher: PusherRun;
  /** performance.now() right before `pusher start` was spawned again. */
  restartedAt: number;
  /** performance.now() once it said its helper connected (when startPusherRun returns). */
  readyAt: number;
  /** The template record (the model phone's). */
  template: DeviceRecord;
  database: SeededDatabase;
  /** Removes the run's files (a million rows are 500 MB of sqlite) and stops its PostgreSQL; after pusher.stop(). */
  cleanUp(): void;
}

/** Shared memory Kamailio uses now, from `kamcmd core.shmmem` (bytes). */
export function shmUsed(pusher: PusherRun): number {
  return Number(/\bused:\s*(\d+)/.exec(pusher.rpc("core.shmmem"))?.[1] ?? NaN);
}

/** The pid of the process loading the records (the load timer's, rtimer `pusher_load`), once the load started. */
export async function loaderPid(pusher: PusherRun): Promise<number> {
  let pid = 0;
  await waitUntil(
    () => {
      const item = /value:\s*(\d+)/.exec(pusher.rpc("htable.get", "pusher_state", "devices_loader_pid"));
      pid = item ? Number(item[1]) : 0;
      return pid > 0;
    },
    30_000,
    "the load of the device records to start (pusher_state devices_loader_pid)",
    50,
  );
  return pid;
}

/** The phone of `group` the load reaches last (rows load in AOR order: `seed999999` after `seed1000000`). */
export function lastLoaded(group: SeedGroup): SeededPhone {
  const nines = 10 ** (String(group.count).length - 1) - 1;
  return seededPhone(group.prefix, nines > 0 && String(nines) > String(group.count) ? nines : group.count);
}

export async function restartWithSeededDevices(
  options: SeededRestartOptions,
  log: (line: string) => void,
): Promise<SeededRestart> {
  const database = await openDeviceDatabase(options.database ?? "sqlite");
  let pusher: PusherRun;
  try {
    pusher = await startPusherRun({
      ...database.config,
      timers: options.timers,
      userAgents: [{ name: "MyMobileApp", regex: BENCH_USER_AGENT_REGEX }],
      apps: {
        [BENCH_APP_ID]: {
          apple: {
            certificateFile: join(TEST_CA_DIR, "apple-app.pem"),
            host: options.apnsHost,
            sandboxHost: options.apnsHost,
          },
        },
      },
      kamailio: {
        sharedMemoryMb: options.sharedMemoryMb,
        defines: { PUSHER_DEVICES_HTABLE_SIZE: options.htableSize, PUSHER_TOKENS_HTABLE_SIZE: options.htableSize },
      },
    });
  } catch (error) {
    database.stop();
    throw error;
  }
  const runDir = dirname(pusher.stateDir);
  const cleanUp = () => {
    rmSync(runDir, { recursive: true, force: true });
    database.stop();
  };
  try {
    const dir = mkdtempSync(join(tmpdir(), "pusher-bench-seed-"));
    const model = seededPhone("model", 1);
    try {
      await runSippLoad({
        scenario: "register.xml",
        remotePort: pusher.sipPort,
        injectionFile: writeInjectionFile(dir, "model.csv", [model]),
        calls: 1,
        rate: 1,
        keys: registerKeys("3600"),
        localIp: nextAddress(),
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    const item = parseHtableItems(pusher.rpc("htable.get", "pusher_devices", `${model.user}@${DOMAIN}`))[0];
    const value = item?.value ?? "";
    const start = value.indexOf("{");
    const template =
      start < 0 ? undefined : Object.values(JSON.parse(value.slice(start)) as Record<string, DeviceRecord>)[0];
    if (!template || template.token !== model.token)
      throw new Error(`bench: no device record of the model phone:\n${value}\n${pusher.output().slice(-3000)}`);
    await pusher.stop();

    const started = Date.now();
    // Registered an hour ago: within retention, and a REGISTER of the same binding changes nothing (no write).
    for (const group of options.groups)
      await database.seed(pusher.stateDir, {
        prefix: group.prefix,
        count: group.count,
        domain: DOMAIN,
        template,
        registeredAtMs: Date.now() - 3600_000,
      });
    log(
      `${database.rows(pusher.stateDir)} device rows seeded straight into ${database.kind} in ${Math.round((Date.now() - started) / 100) / 10} s`,
    );

    const restartedAt = performance.now();
    pusher = await pusher.restart();
    return { pusher, restartedAt, readyAt: performance.now(), template, database, cleanUp };
  } catch (error) {
    await pusher.stop();
    cleanUp();
    throw error;
  }
}
