// Benchmark 3, REGISTER cost: Kamailio CPU time (every process, from /proc) for N REGISTERs carrying push params,
// with the plugin's hooks vs. the same config without its `route(PUSHER_REGISTER_…)` lines, alternated, one
// fresh Kamailio per round so every round stores N new devices. The figure is the ratio of the medians. A third
// variant keeps the hooks but loads empty entry points: the part of the cost that is app_jsdt's own (its floor).
// Each round then sends the same REGISTERs again from the same phones (same socket, same Contact): the refreshes
// that make up most of a production REGISTER load, measured on their own.
// Benchmark 5, memory, reuses the same harness: see memory.ts.
// Topology as in the tests: AORs <user>@DOMAIN, Contacts c-<user> at the sipp's own loopback address.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { htableItems, startDirectKamailio, type DirectKamailio, type Variant } from "./lib/kamailio-direct";
import { makePhones, runSippLoad, writeInjectionFile, type Phone } from "./lib/sipp-load";
import { median, round } from "./lib/stats";
import { freePort } from "../test/support/free-port";
import { DOMAIN, nextAddress } from "../test/support/topology";

export const BENCH_APP_ID = "com.app.mymobileapp";
export const BENCH_USER_AGENT = "MyMobileApp iOS 1.0";
export const BENCH_USER_AGENT_REGEX = "^MyMobileApp";

export interface RegisterCostOptions {
  registers: number;
  rounds: number;
  /** REGISTERs per second sipp sends. */
  rate: number;
  /** Also send every REGISTER a second time and measure those refreshes (default true). */
  refresh?: boolean;
}

export interface RegisterRound {
  variant: Variant;
  cpuMs: number;
  wallMs: number;
  devicesStored: number;
  /** CPU of the same REGISTERs sent again from the same phones (unchanged refreshes). */
  refreshCpuMs?: number;
}

export interface RegisterCostResult {
  registers: number;
  rate: number;
  rounds: RegisterRound[];
  cpuMsPlugin: number;
  cpuMsNoHook: number;
  cpuMsEmptyPlugin: number;
  /** Median plugin CPU / median no-hook CPU. */
  registerCpuRatio: number;
  /** Plugin CPU per REGISTER beyond the no-hook config, in microseconds. */
  pluginCpuUsPerRegister: number;
  /** Median empty-plugin CPU / median no-hook CPU: the ratio of the hooks calling JS that does nothing. */
  emptyPluginCpuRatio: number;
  /** CPU per REGISTER of the hooks with empty JS, beyond the no-hook config, in microseconds. */
  emptyPluginCpuUsPerRegister: number;
  /** The same, for refreshes (each phone's second, unchanged REGISTER). */
  refreshCpuMsPlugin: number;
  refreshCpuMsNoHook: number;
  registerCpuRatioRefresh: number;
  pluginCpuUsPerRefresh: number;
}

/**
 * One phone's binding and device record, looked up by its AOR on the named domain: the binding names its Contact
 * user (not the AOR's) at the sipp's address, and with the plugin the device record holds its token.
 */
function checkStored(kamailio: DirectKamailio, phone: Phone, localIp: string): void {
  const aor = `${phone.user}@${DOMAIN}`;
  const binding = kamailio.rpc("ul.lookup", "location", aor);
  if (!binding.includes(`sip:c-${phone.user}@${localIp}:`))
    throw new Error(`bench: ${kamailio.variant}: no binding of c-${phone.user}@${localIp} for ${aor}:\n${binding}`);
  if (kamailio.variant !== "plugin") return;
  const record = kamailio.rpc("htable.get", "pusher_devices", aor);
  if (!record.includes(phone.token))
    throw new Error(`bench: no device record with ${phone.user}'s token at ${aor}:\n${record}`);
}

export function registerKeys(expires = "3600"): Record<string, string> {
  return { domain: DOMAIN, app_id: BENCH_APP_ID, user_agent: BENCH_USER_AGENT, expires };
}

/**
 * Starts a fresh Kamailio of `variant`, sends the REGISTERs, returns its CPU and what it stored; with `refresh`,
 * sends them again from the same socket and returns that CPU too. `deviceDatabaseUrl`: the device records in that
 * (empty) PostgreSQL database instead of a new sqlite file (bench/cluster.ts).
 */
export async function registerRound(
  variant: Variant,
  injectionFile: string,
  sample: Phone,
  registers: number,
  rate: number,
  limit: number | undefined,
  measure?: (phase: "before" | "after", kamailio: Awaited<ReturnType<typeof startDirectKamailio>>) => void,
  refresh = false,
  deviceDatabaseUrl?: string,
): Promise<RegisterRound> {
  const kamailio = await startDirectKamailio(variant, BENCH_USER_AGENT_REGEX, { deviceDatabaseUrl });
  try {
    // Let start-up work (module init, Duktape loading in each child) settle before the first reading.
    await new Promise((resolve) => setTimeout(resolve, 500));
    measure?.("before", kamailio);
    // One socket for both passes: a phone refreshing its registration sends the same Contact.
    const localIp = nextAddress();
    const localPort = await freePort(localIp);
    const send = async () => {
      const cpuBefore = kamailio.cpuMs();
      const { elapsedMs } = await runSippLoad({
        scenario: "register.xml",
        remotePort: kamailio.sipPort,
        injectionFile,
        calls: registers,
        rate,
        limit,
        keys: registerKeys(),
        timeoutSeconds: 400,
        localIp,
        localPort,
      });
      return { cpuMs: kamailio.cpuMs() - cpuBefore, elapsedMs };
    };
    const { cpuMs, elapsedMs } = await send();
    measure?.("after", kamailio);
    const devicesStored = htableItems(kamailio, "pusher_devices");
    const expected = variant === "plugin" ? registers : 0;
    if (devicesStored !== expected)
      throw new Error(
        `bench: ${variant} Kamailio stored ${devicesStored} devices after ${registers} REGISTERs, expected ${expected}`,
      );
    checkStored(kamailio, sample, localIp);
    const result: RegisterRound = { variant, cpuMs, wallMs: round(elapsedMs, 0), devicesStored };
    if (refresh) result.refreshCpuMs = (await send()).cpuMs;
    return result;
  } finally {
    await kamailio.stop();
  }
}

export async function benchRegisterCost(
  options: RegisterCostOptions,
  log: (line: string) => void = () => {},
): Promise<RegisterCostResult> {
  const dir = mkdtempSync(join(tmpdir(), "pusher-bench-register-"));
  try {
    const phones = makePhones("reg", options.registers);
    const injectionFile = writeInjectionFile(dir, "phones.csv", phones);
    const rounds: RegisterRound[] = [];
    for (let round_ = 0; round_ < options.rounds; round_++) {
      // Rotate which variant goes first, so a drift in machine load does not always favour one.
      const variants: Variant[] = ["plugin", "no-hook", "empty-plugin"];
      const order = variants.slice(round_ % 3).concat(variants.slice(0, round_ % 3));
      for (const variant of order) {
        const result = await registerRound(
          variant,
          injectionFile,
          phones[0],
          options.registers,
          options.rate,
          undefined,
          undefined,
          options.refresh ?? true,
        );
        log(
          `register cost: round ${round_ + 1} ${variant}: ${result.cpuMs} ms CPU for ${options.registers} REGISTERs (${result.wallMs} ms wall), ${result.refreshCpuMs} ms for their refreshes`,
        );
        rounds.push(result);
      }
    }
    const medianCpu = (variant: Variant) => median(rounds.filter((r) => r.variant === variant).map((r) => r.cpuMs));
    const cpuMsPlugin = medianCpu("plugin");
    const cpuMsNoHook = medianCpu("no-hook");
    const cpuMsEmptyPlugin = medianCpu("empty-plugin");
    const medianRefreshCpu = (variant: Variant) =>
      median(rounds.filter((r) => r.variant === variant && r.refreshCpuMs !== undefined).map((r) => r.refreshCpuMs!));
    const refreshCpuMsPlugin = medianRefreshCpu("plugin");
    const refreshCpuMsNoHook = medianRefreshCpu("no-hook");
    return {
      registers: options.registers,
      rate: options.rate,
      rounds,
      cpuMsPlugin,
      cpuMsNoHook,
      cpuMsEmptyPlugin,
      registerCpuRatio: round(cpuMsPlugin / cpuMsNoHook),
      pluginCpuUsPerRegister: round(((cpuMsPlugin - cpuMsNoHook) * 1000) / options.registers, 1),
      emptyPluginCpuRatio: round(cpuMsEmptyPlugin / cpuMsNoHook),
      emptyPluginCpuUsPerRegister: round(((cpuMsEmptyPlugin - cpuMsNoHook) * 1000) / options.registers, 1),
      refreshCpuMsPlugin,
      refreshCpuMsNoHook,
      registerCpuRatioRefresh: round(refreshCpuMsPlugin / refreshCpuMsNoHook),
      pluginCpuUsPerRefresh: round(((refreshCpuMsPlugin - refreshCpuMsNoHook) * 1000) / options.registers, 1),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
