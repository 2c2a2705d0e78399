// Kamailio started directly (not through `pusher start`) from a bench copy of the reference config, so the same
// config can run with and without the plugin's REGISTER hook. Its command line is `pusher start`'s
// (src/cli/kamailio-runtime.ts kamailioArguments) with the bench's cfg and plugin files and Kamailio's default allocator; 1 GB of shared memory
// holds 100 k registrations. CPU time and shared memory are read from /proc and `kamcmd core.shmmem`.
import { spawn, execFileSync, type ChildProcess } from "node:child_process";
import {
  copyFileSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
  closeSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { validateConfig } from "../../src/config";
import { kamailioArguments, packageKamailioFiles, runtimePaths } from "../../src/cli/kamailio-runtime";
import { freePort } from "../../test/support/free-port";
import { ROOT } from "./paths";

/**
 * The plugin's REGISTER hooks in kamailio/kamailio.cfg, which the "without the hook" variant drops: every
 * `route(PUSHER_REGISTER_…);` call (PUSHER_REGISTER_BEFORE_AUTH, _BEFORE_SAVE, _AFTER_SAVE, _AFTER_ERROR).
 */
export const REGISTER_HOOK_CALL = /route\(PUSHER_REGISTER_\w+\);/g;
const SHM_MEGABYTES = 1024;
const CLOCK_TICKS_PER_SECOND = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;

/**
 * plugin: kamailio/kamailio.cfg as shipped; no-hook: without the REGISTER hooks; empty-plugin: the same cfg and
 * hooks, loading a JS file whose entry points do nothing (what calling into app_jsdt costs before any plugin work).
 */
export type Variant = "plugin" | "no-hook" | "empty-plugin";

export interface ShmStats {
  total: number;
  free: number;
  used: number;
  realUsed: number;
}

export interface DirectKamailio {
  sipPort: number;
  variant: Variant;
  dir: string;
  rpc(...command: string[]): string;
  /** CPU time of Kamailio's main process and every process under it, in ms. */
  cpuMs(): number;
  shm(): ShmStats;
  stop(): Promise<void>;
}

/** kamailio.cfg with or without its REGISTER hooks, next to a copy of pusher.cfg (include_file is relative). */
export function writeBenchConfig(dir: string, variant: Variant): string {
  let cfg = readFileSync(join(ROOT, "kamailio", "kamailio.cfg"), "utf8");
  if (variant === "no-hook") {
    const hooks: string[] = cfg.match(REGISTER_HOOK_CALL) ?? [];
    if (!hooks.includes("route(PUSHER_REGISTER_BEFORE_SAVE);"))
      throw new Error("bench: kamailio/kamailio.cfg has no route(PUSHER_REGISTER_BEFORE_SAVE); line to remove");
    cfg = cfg.replace(REGISTER_HOOK_CALL, (call) => `# (bench: ${call.slice(6, -2)} hook removed)`);
  }
  const file = join(dir, "kamailio.cfg");
  writeFileSync(file, cfg);
  copyFileSync(join(ROOT, "kamailio", "pusher.cfg"), join(dir, "pusher.cfg"));
  return file;
}

/** A JS file defining, as empty functions, every entry point pusher.cfg calls with jsdt_run. */
function writeEmptyPlugin(dir: string): string {
  const cfg = readFileSync(join(ROOT, "kamailio", "pusher.cfg"), "utf8");
  const names = new Set([...cfg.matchAll(/jsdt_run\("([A-Za-z0-9_]+)"/g)].map((match) => match[1]));
  const file = join(dir, "empty-plugin.js");
  writeFileSync(file, [...names].map((name) => `function ${name}() {}\n`).join(""));
  return file;
}

function processTree(rootPid: number): number[] {
  const parents = new Map<number, number[]>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, "utf8");
    } catch {
      continue;
    }
    // Field 4 (ppid) comes after "(comm)", which may itself hold spaces or parentheses.
    const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
    const siblings = parents.get(ppid) ?? [];
    siblings.push(Number(entry));
    parents.set(ppid, siblings);
  }
  const tree = [rootPid];
  for (let i = 0; i < tree.length; i++) tree.push(...(parents.get(tree[i]) ?? []));
  return tree;
}

/** CPU time of one process in ms: /proc/<pid>/schedstat (ns, the scheduler's own count), else utime + stime
 * from /proc/<pid>/stat (clock ticks, 10 ms each: too coarse for the quick runs of the smoke test). */
export function cpuMsOf(pid: number): number {
  try {
    const ns = Number(readFileSync(`/proc/${pid}/schedstat`, "utf8").split(" ")[0]);
    if (Number.isFinite(ns) && ns > 0) return ns / 1e6;
  } catch {
    // no schedstat (kernel without CONFIG_SCHEDSTATS) or the process is gone
  }
  return (cpuTicks(pid) * 1000) / CLOCK_TICKS_PER_SECOND;
}

function cpuTicks(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    // After "(comm)": state is field 3, so utime (14) and stime (15) are at indexes 11 and 12.
    return Number(fields[11]) + Number(fields[12]);
  } catch {
    return 0;
  }
}

/** CPU time in ms of the Kamailio processes under `rootPid` (`pusher start` runs Kamailio beside Node processes). */
export function kamailioCpuMs(rootPid: number): number {
  let sum = 0;
  for (const pid of processTree(rootPid)) {
    let name = "";
    try {
      name = readFileSync(`/proc/${pid}/comm`, "utf8").trim();
    } catch {
      continue; // gone
    }
    if (name === "kamailio") sum += cpuMsOf(pid);
  }
  return Math.round(sum);
}

/** Parses `kamcmd core.shmmem` (key: value lines). */
export function parseShmmem(text: string): ShmStats {
  const value = (key: string) => Number(new RegExp(`^\\s*${key}:\\s*(\\d+)`, "m").exec(text)?.[1] ?? NaN);
  return { total: value("total"), free: value("free"), used: value("used"), realUsed: value("real_used") };
}

/** `deviceDatabaseUrl`: the device records in that database (a `postgres://` URL) instead of `<dir>/devices.sqlite`. */
export async function startDirectKamailio(
  variant: Variant,
  userAgentRegex: string,
  options: { deviceDatabaseUrl?: string } = {},
): Promise<DirectKamailio> {
  const dir = mkdtempSync(join(tmpdir(), `pusher-bench-${variant}-`));
  const sipPort = await freePort();
  const linkPort = await freePort();
  const cfgFile = writeBenchConfig(dir, variant);
  const listen = [`udp:127.0.0.1:${sipPort}`];
  const config = validateConfig({
    sip: { listen, auth: false },
    userAgents: [{ name: "Bench", regex: userAgentRegex }],
    link: { port: linkPort },
    kamailio: { sharedMemoryMb: SHM_MEGABYTES },
    stateDir: dir,
  });
  const paths = runtimePaths(join(dir, "pusher.json"), config);
  writeFileSync(paths.runtimeConfig, JSON.stringify(config, null, 2) + "\n");
  const ctlSocket = paths.ctlSocket;
  const plugin = variant === "empty-plugin" ? writeEmptyPlugin(dir) : packageKamailioFiles(ROOT).plugin;
  // Kamailio's default allocator for both variants, as an operator's own Kamailio runs (docs/benchmarks.md).
  const args = kamailioArguments({ cfg: cfgFile, plugin }, paths, config, listen, {
    allocator: "default",
    deviceDatabaseUrl: options.deviceDatabaseUrl,
  });
  // Log to a file, as a production Kamailio logs to syslog: writing lines is part of the cost being measured.
  const logFile = join(dir, "kamailio.log");
  const logFd = openSync(logFile, "a");
  const child: ChildProcess = spawn("kamailio", args, { stdio: ["ignore", logFd, logFd] });
  closeSync(logFd);
  const exited = new Promise<void>((resolve) => child.on("exit", () => resolve()));
  const rpc = (...command: string[]) =>
    execFileSync("kamcmd", ["-s", `unix:${ctlSocket}`, ...command], {
      encoding: "utf8",
      timeout: 10_000,
      stdio: "pipe",
    });

  const deadline = Date.now() + 20_000;
  for (;;) {
    if (child.exitCode !== null)
      throw new Error(`kamailio (${variant}) exited during start-up:\n${readFileSync(logFile, "utf8").slice(-3000)}`);
    try {
      rpc("core.uptime");
      break;
    } catch {
      if (Date.now() > deadline) throw new Error(`kamailio (${variant}) did not answer on ${ctlSocket}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
  return {
    sipPort,
    variant,
    dir,
    rpc,
    cpuMs() {
      return Math.round(processTree(child.pid!).reduce((sum, pid) => sum + cpuMsOf(pid), 0));
    },
    shm() {
      return parseShmmem(rpc("core.shmmem"));
    },
    async stop() {
      if (child.exitCode === null) child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
      await exited;
      clearTimeout(timer);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Items in one htable, from `kamcmd htable.stats` (one block per table), of any Kamailio with an rpc(). */
export function htableItems(kamailio: Pick<DirectKamailio, "rpc">, table: string): number {
  const text = kamailio.rpc("htable.stats");
  const block = text.split(/\{/).find((part) => new RegExp(`name:\\s*${table}\\b`).test(part)) ?? "";
  return Number(/\ball:\s*(\d+)/.exec(block)?.[1] ?? NaN);
}
