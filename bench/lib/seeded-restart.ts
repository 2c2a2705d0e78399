// How benchmarks 8 and 9 restart a node with many device records on disk: `pusher start` (Kamailio + helper) with one
// phone registered for real through bench/sipp/register.xml, whose record, as the plugin wrote it, is the template
// of every seeded row; then stopped, the sqlite device database seeded straight with many more phones
// (test/support/seed-devices.ts: no REGISTERs), and started again on the same config, state and ports.
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import type { DeviceRecord } from "../../src/device-record";
import { parseHtableItems } from "../../src/cli/devices-command";
import { seedDeviceRows, seededPhone, type SeededPhone } from "../../test/support/seed-devices";
import { DOMAIN, nextAddress } from "../../test/support/topology";
import { BENCH_APP_ID, BENCH_USER_AGENT_REGEX, registerKeys } from "../register-cost";
import { TEST_CA_DIR } from "./paths";
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
}

export interface SeededRestart {
  pusher: PusherRun;
  /** performance.now() right before `pusher start` was spawned again. */
  restartedAt: number;
  /** performance.now() once it said its helper connected (when startPusherRun returns). */
  readyAt: number;
  /** The template record (the model phone's). */
  template: DeviceRecord;
  /** Removes the run's files (a million rows are 500 MB of sqlite); after pusher.stop(). */
  cleanUp(): void;
}

/** Shared memory Kamailio uses now, from `kamcmd core.shmmem` (bytes). */
export function shmUsed(pusher: PusherRun): number {
  return Number(/\bused:\s*(\d+)/.exec(pusher.rpc("core.shmmem"))?.[1] ?? NaN);
}

/** The pid of the SIP worker route PUSHER_WORKER_INIT runs in (it loads the records before it serves SIP). */
export function loaderPid(pusher: PusherRun): number {
  const match = /PID:\s*(\d+)\s*\n\s*DSC:\s*udp receiver child=0\b/.exec(pusher.rpc("core.psx"));
  if (!match) throw new Error("bench: no `udp receiver child=0` in kamcmd core.psx");
  return Number(match[1]);
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
  let pusher = await startPusherRun({
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
  const runDir = dirname(pusher.stateDir);
  const cleanUp = () => rmSync(runDir, { recursive: true, force: true });
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
    const file = join(pusher.stateDir, "devices.sqlite");
    // Registered an hour ago: within retention, and a REGISTER of the same binding changes nothing (no write).
    for (const group of options.groups)
      seedDeviceRows(file, {
        prefix: group.prefix,
        count: group.count,
        domain: DOMAIN,
        template,
        registeredAtMs: Date.now() - 3600_000,
      });
    const rows = execFileSync("sqlite3", [file, "SELECT count(*) FROM pusher_devices"], { encoding: "utf8" }).trim();
    log(
      `${rows} device rows seeded straight into the sqlite file in ${Math.round((Date.now() - started) / 100) / 10} s`,
    );

    const restartedAt = performance.now();
    pusher = await pusher.restart();
    return { pusher, restartedAt, readyAt: performance.now(), template, cleanUp };
  } catch (error) {
    await pusher.stop();
    cleanUp();
    throw error;
  }
}
