// Process-level faults and Kamailio's own counters for the fault tests: find and kill the helper under
// `pusher start`, read tm.stats and core.shmmem, and run Kamailio and the helper as two separate services (as
// the systemd units do) so one can be killed or never started while the other runs.
import { ChildProcess, execFileSync, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { kamailioArguments, packageKamailioFiles, runtimePaths } from "../../../src/cli/kamailio-runtime";
import { validateConfig } from "../../../src/config";
import { LINK_SECRET_FILE_NAME, ensureLinkSecretFile } from "../../../src/link-secret-file";
import { freePort } from "../../support/free-port";
import { waitUntil as pollUntil } from "../../support/wait-until";
import type { PusherProcess } from "../../support/pusher-process";
import { ROOT } from "../../support/pusher-process";

/** Every descendant of `pid` with its command line. */
export function descendants(pid: number): { pid: number; command: string }[] {
  const found: { pid: number; command: string }[] = [];
  const queue = [pid];
  while (queue.length) {
    const parent = queue.shift()!;
    let out = "";
    try {
      out = execFileSync("ps", ["-o", "pid=,args=", "--ppid", String(parent)], { encoding: "utf8" });
    } catch {
      continue; // ps exits 1 when there is no child
    }
    for (const line of out.split("\n")) {
      const match = /^\s*(\d+)\s+(.*)$/.exec(line);
      if (!match) continue;
      found.push({ pid: Number(match[1]), command: match[2] });
      queue.push(Number(match[1]));
    }
  }
  return found;
}

/** The pid of `pusher start` for this run (the node process whose command names this config). */
export function pusherStartPid(pusher: PusherProcess): number {
  const out = execFileSync("ps", ["-eo", "pid=,args="], { encoding: "utf8" });
  for (const line of out.split("\n")) {
    const match = /^\s*(\d+)\s+(.*)$/.exec(line);
    if (match && match[2].includes(pusher.configPath) && match[2].includes("cli.js") && / start\b/.test(match[2]))
      return Number(match[1]);
  }
  throw new Error(`no pusher start process for ${pusher.configPath}`);
}

export function helperPid(pusher: PusherProcess): number {
  const helper = descendants(pusherStartPid(pusher)).find((process) => process.command.includes("pusher-helper.js"));
  if (!helper) throw new Error("no pusher-helper process under pusher start");
  return helper.pid;
}

export function kamailioPids(rootPid: number): number[] {
  return descendants(rootPid)
    .filter((process) => /^\S*kamailio\s/.test(process.command))
    .map((process) => process.pid)
    .sort((a, b) => a - b);
}

/** `current` of tm.stats: transactions that exist right now. */
export function currentTransactions(rpc: (...command: string[]) => string): number {
  const match = /current:\s*(\d+)/.exec(rpc("tm.stats"));
  if (!match) throw new Error("tm.stats has no current");
  return Number(match[1]);
}

/** real_used of core.shmmem, in bytes. */
export function sharedMemoryUsed(rpc: (...command: string[]) => string): number {
  const match = /real_used:\s*(\d+)/.exec(rpc("core.shmmem"));
  if (!match) throw new Error("core.shmmem has no real_used");
  return Number(match[1]);
}

/** waitUntil polling every 100 ms: many of these checks spawn kamcmd. */
export function waitUntil(check: () => boolean, timeoutMs: number, what: string): Promise<void> {
  return pollUntil(check, timeoutMs, what, 100);
}

/** Kamailio and the helper as separate processes: the layout of kamailio.service + kamailio-pusher-helper.service. */
export interface SeparateServices {
  sipPort: number;
  linkPort: number;
  dir: string;
  configPath: string;
  kamailio: ChildProcess | null;
  helper: ChildProcess | null;
  kamailioOutput(): string;
  helperOutput(): string;
  rpc(...command: string[]): string;
  /** `defines`: extra `-A` switches and values (e.g. PUSHER_TOKEN_SKIPS_AUTH=1; WITH_AUTH comes with options.auth). */
  startKamailio(defines?: { [name: string]: string | true }): Promise<void>;
  /** SIGKILL to every Kamailio process at once; resolves when the main one is gone. */
  killKamailio(): Promise<void>;
  startHelper(): void;
  stop(): Promise<void>;
}

/**
 * Writes `config` (with free SIP and link ports) as the runtime config both read, the way `pusher start` would,
 * and returns the controls; nothing runs yet. `options.cfg`: an operator's own kamailio.cfg instead of
 * kamailio/kamailio.cfg (with pusher.cfg next to it); `options.deviceDatabaseUrl`: device records in that database
 * (test/support/postgres.ts) instead of the state folder's sqlite file.
 */
export async function separateServices(
  config: Record<string, unknown>,
  options: { auth?: boolean; cfg?: string; deviceDatabaseUrl?: string } = {},
): Promise<SeparateServices> {
  const dir = mkdtempSync(join(tmpdir(), "pusher-faults-"));
  const stateDir = join(dir, "state");
  mkdirSync(stateDir, { mode: 0o700 });
  // As `pusher start` does: the helper finds it in stateDir, Kamailio through PUSHER_LINK_SECRET_FILE.
  ensureLinkSecretFile(join(stateDir, LINK_SECRET_FILE_NAME));
  const sipPort = await freePort();
  const linkPort = await freePort();
  const configPath = join(stateDir, "pusher.runtime.json");
  writeFileSync(
    configPath,
    JSON.stringify(
      {
        sip: { listen: [`udp:127.0.0.1:${sipPort}`, `tcp:127.0.0.1:${sipPort}`], auth: options.auth ?? false },
        link: { port: linkPort },
        metrics: { port: await freePort() },
        stateDir,
        ...config,
      },
      null,
      2,
    ),
    { mode: 0o600 },
  );
  let kamailioLog = "";
  let helperLog = "";
  const ctl = join(stateDir, "kamailio.ctl");
  const services: SeparateServices = {
    sipPort,
    linkPort,
    dir,
    configPath,
    kamailio: null,
    helper: null,
    kamailioOutput: () => kamailioLog,
    helperOutput: () => helperLog,
    rpc: (...command) =>
      execFileSync("kamcmd", ["-s", `unix:${ctl}`, ...command], {
        encoding: "utf8",
        stdio: ["ignore", "pipe", "pipe"],
      }),
    async startKamailio(extra = {}) {
      // The command line `pusher start` gives it (src/cli/kamailio-runtime.ts), plus the test's defines.
      const config = validateConfig(JSON.parse(readFileSync(configPath, "utf8")));
      const files = { ...packageKamailioFiles(ROOT), ...(options.cfg ? { cfg: options.cfg } : {}) };
      const args = kamailioArguments(files, runtimePaths(configPath, config), config, config.sip.listen, {
        deviceDatabaseUrl: options.deviceDatabaseUrl,
      });
      for (const [name, value] of Object.entries(extra)) args.push("-A", value === true ? name : `${name}=${value}`);
      const child = spawn("kamailio", args, { stdio: ["ignore", "pipe", "pipe"] });
      child.stdout!.on("data", (chunk) => (kamailioLog += chunk));
      child.stderr!.on("data", (chunk) => (kamailioLog += chunk));
      services.kamailio = child;
      await waitUntil(
        () => {
          if (child.exitCode !== null) throw new Error(`kamailio exited at start:\n${kamailioLog.slice(-3000)}`);
          try {
            services.rpc("core.uptime");
            return true;
          } catch {
            return false;
          }
        },
        15000,
        "kamailio's control socket",
      );
    },
    async killKamailio() {
      const main = services.kamailio;
      if (!main || main.exitCode !== null) return;
      const exited = new Promise<void>((done) => main.on("exit", () => done()));
      for (const pid of [main.pid!, ...kamailioPids(main.pid!)]) {
        try {
          process.kill(pid, "SIGKILL");
        } catch {
          // already gone
        }
      }
      await exited;
      services.kamailio = null;
    },
    startHelper() {
      const child = spawn(process.execPath, [join(ROOT, "dist", "pusher-helper.js"), "--config", configPath], {
        stdio: ["ignore", "pipe", "pipe"],
      });
      child.stdout!.on("data", (chunk) => (helperLog += chunk));
      child.stderr!.on("data", (chunk) => (helperLog += chunk));
      services.helper = child;
    },
    async stop() {
      const waits: Promise<void>[] = [];
      for (const child of [services.helper, services.kamailio]) {
        if (!child || child.exitCode !== null || child.signalCode !== null) continue;
        waits.push(new Promise<void>((done) => child.on("exit", () => done())));
        child.kill("SIGTERM");
      }
      await Promise.all(waits);
    },
  };
  return services;
}

export { callItems } from "../../support/kamailio-checks";
