// Benchmark 5, memory: Kamailio shared memory per stored device at N devices. `kamcmd core.shmmem` real_used
// (allocations plus the allocator's own headers) before and after N REGISTERs, with the plugin and without the
// hook; the difference between the two growths is what the device records cost (usrloc's share cancels out).
// The records are the plugin's own, written by real REGISTERs: nothing is copied or estimated.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ShmStats } from "./lib/kamailio-direct";
import { makePhones, writeInjectionFile, type Phone } from "./lib/sipp-load";
import { registerRound } from "./register-cost";
import { round } from "./lib/stats";

export interface MemoryOptions {
  devices: number;
  rate: number;
  /** REGISTERs in flight at most: loading goes as fast as Kamailio answers, without piling up retransmissions. */
  limit: number;
}

export interface MemoryResult {
  devices: number;
  shmGrowthPlugin: number;
  shmGrowthNoHook: number;
  /** (growth with plugin − growth without the hook) / devices, real_used bytes. */
  shmBytesPerDevice: number;
  /** The same from `used` (payload only, no allocator headers). */
  shmPayloadBytesPerDevice: number;
}

async function growth(
  variant: "plugin" | "no-hook",
  injectionFile: string,
  sample: Phone,
  options: MemoryOptions,
): Promise<{ realUsed: number; used: number }> {
  const readings: { before?: ShmStats; after?: ShmStats } = {};
  await registerRound(
    variant,
    injectionFile,
    sample,
    options.devices,
    options.rate,
    options.limit,
    (phase, kamailio) => {
      readings[phase] = kamailio.shm();
    },
  );
  return {
    realUsed: readings.after!.realUsed - readings.before!.realUsed,
    used: readings.after!.used - readings.before!.used,
  };
}

export async function benchMemory(
  options: MemoryOptions,
  log: (line: string) => void = () => {},
): Promise<MemoryResult> {
  const dir = mkdtempSync(join(tmpdir(), "pusher-bench-memory-"));
  try {
    const phones = makePhones("mem", options.devices);
    const injectionFile = writeInjectionFile(dir, "phones.csv", phones);
    const plugin = await growth("plugin", injectionFile, phones[0], options);
    log(`memory: plugin: shm real_used +${plugin.realUsed} bytes for ${options.devices} devices`);
    const noHook = await growth("no-hook", injectionFile, phones[0], options);
    log(`memory: no hook: shm real_used +${noHook.realUsed} bytes for ${options.devices} registrations`);
    return {
      devices: options.devices,
      shmGrowthPlugin: plugin.realUsed,
      shmGrowthNoHook: noHook.realUsed,
      shmBytesPerDevice: round((plugin.realUsed - noHook.realUsed) / options.devices, 1),
      shmPayloadBytesPerDevice: round((plugin.used - noHook.used) / options.devices, 1),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
