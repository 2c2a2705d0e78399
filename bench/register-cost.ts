// Benchmark 3, REGISTER cost: Kamailio CPU time (every process, from /proc) for N REGISTERs carrying push params,
// with the plugin's hook vs. the same config without `route(PUSHER_REGISTER)`, alternated, one fresh Kamailio
// per round so every round stores N new devices. The figure is the ratio of the medians.
// Benchmark 5, memory, reuses the same harness: see memory.ts.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { htableItems, startDirectKamailio, type Variant } from "./lib/kamailio-direct";
import { makePhones, runSippLoad, writeInjectionFile } from "./lib/sipp-load";
import { median, round } from "./lib/stats";

export const BENCH_APP_ID = "com.app.mymobileapp";
export const BENCH_USER_AGENT = "MyMobileApp iOS 1.0";
export const BENCH_USER_AGENT_REGEX = "^MyMobileApp";

export interface RegisterCostOptions {
  registers: number;
  rounds: number;
  /** REGISTERs per second sipp sends. */
  rate: number;
}

export interface RegisterRound {
  variant: Variant;
  cpuMs: number;
  wallMs: number;
  devicesStored: number;
}

export interface RegisterCostResult {
  registers: number;
  rate: number;
  rounds: RegisterRound[];
  cpuMsPlugin: number;
  cpuMsNoHook: number;
  /** Median plugin CPU / median no-hook CPU. */
  registerCpuRatio: number;
  /** Plugin CPU per REGISTER beyond the no-hook config, in microseconds. */
  pluginCpuUsPerRegister: number;
}

export function registerKeys(expires = "3600"): Record<string, string> {
  return { domain: "127.0.0.1", app_id: BENCH_APP_ID, user_agent: BENCH_USER_AGENT, expires };
}

/** Starts a fresh Kamailio of `variant`, sends the REGISTERs, returns its CPU and what it stored. */
export async function registerRound(variant: Variant, injectionFile: string, registers: number, rate: number, limit: number | undefined, measure?: (phase: "before" | "after", kamailio: Awaited<ReturnType<typeof startDirectKamailio>>) => void): Promise<RegisterRound> {
  const kamailio = await startDirectKamailio(variant, BENCH_USER_AGENT_REGEX);
  try {
    // Let start-up work (module init, Duktape loading in each child) settle before the first reading.
    await new Promise((resolve) => setTimeout(resolve, 500));
    measure?.("before", kamailio);
    const cpuBefore = kamailio.cpuMs();
    const { elapsedMs } = await runSippLoad({ scenario: "register.xml", remotePort: kamailio.sipPort, injectionFile, calls: registers, rate, limit, keys: registerKeys(), timeoutSeconds: 400 });
    const cpuMs = kamailio.cpuMs() - cpuBefore;
    measure?.("after", kamailio);
    const devicesStored = htableItems(kamailio, "pusher_devices");
    const expected = variant === "plugin" ? registers : 0;
    if (devicesStored !== expected) throw new Error(`bench: ${variant} Kamailio stored ${devicesStored} devices after ${registers} REGISTERs, expected ${expected}`);
    return { variant, cpuMs, wallMs: round(elapsedMs, 0), devicesStored };
  } finally {
    await kamailio.stop();
  }
}

export async function benchRegisterCost(options: RegisterCostOptions, log: (line: string) => void = () => {}): Promise<RegisterCostResult> {
  const dir = mkdtempSync(join(tmpdir(), "pusher-bench-register-"));
  try {
    const injectionFile = writeInjectionFile(dir, "phones.csv", makePhones("reg", options.registers));
    const rounds: RegisterRound[] = [];
    for (let round_ = 0; round_ < options.rounds; round_++) {
      // Alternate which variant goes first, so a drift in machine load does not always favour one.
      const order: Variant[] = round_ % 2 === 0 ? ["plugin", "no-hook"] : ["no-hook", "plugin"];
      for (const variant of order) {
        const result = await registerRound(variant, injectionFile, options.registers, options.rate, undefined);
        log(`register cost: round ${round_ + 1} ${variant}: ${result.cpuMs} ms CPU for ${options.registers} REGISTERs (${result.wallMs} ms wall)`);
        rounds.push(result);
      }
    }
    const cpuMsPlugin = median(rounds.filter((r) => r.variant === "plugin").map((r) => r.cpuMs));
    const cpuMsNoHook = median(rounds.filter((r) => r.variant === "no-hook").map((r) => r.cpuMs));
    return {
      registers: options.registers,
      rate: options.rate,
      rounds,
      cpuMsPlugin,
      cpuMsNoHook,
      registerCpuRatio: round(cpuMsPlugin / cpuMsNoHook),
      pluginCpuUsPerRegister: round(((cpuMsPlugin - cpuMsNoHook) * 1000) / options.registers, 1),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
