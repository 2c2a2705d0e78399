// `pusher start`: the all-in-one foreground run. Writes the runtime config, starts Kamailio with the
// reference kamailio/kamailio.cfg and the push helper, prefixes and prints both logs, restarts the helper
// if it dies (calls held meanwhile end at t2), and stops both on SIGINT/SIGTERM.

import { ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { PusherConfig } from "../config";
import { CliError } from "./config-file";
import { callKamailio } from "./kamailio-rpc";

/** The package root: dist/cli.js lives one level below it (and src/cli/start.ts two). */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, "kamailio", "pusher.cfg"))) {
    const parent = dirname(dir);
    if (parent === dir) throw new CliError("PUSHER_ERR_INSTALL", "cannot find kamailio/pusher.cfg above " + fileURLToPath(import.meta.url));
    dir = parent;
  }
  return dir;
}

export interface RuntimePaths {
  stateDir: string;
  runtimeConfig: string;
  ctlSocket: string;
  /** The sqlite file Kamailio keeps the device records in (pusher.cfg's PUSHER_DB_CONNECTION). */
  deviceDatabase: string;
}

export function runtimePaths(configPath: string, config: PusherConfig): RuntimePaths {
  const stateDir = resolve(dirname(configPath), config.stateDir);
  return {
    stateDir,
    runtimeConfig: join(stateDir, "pusher.runtime.json"),
    ctlSocket: join(stateDir, "kamailio.ctl"),
    deviceDatabase: join(stateDir, "devices.sqlite"),
  };
}

const HELPER_RESTART_DELAY_MS = 1000;

function pipeLines(child: ChildProcess, prefix: string): void {
  for (const stream of [child.stdout, child.stderr]) {
    if (!stream) continue;
    createInterface({ input: stream }).on("line", (line) => {
      if (line.trim()) process.stdout.write(`${prefix} ${line}\n`);
    });
  }
}

function kamailioArguments(root: string, paths: RuntimePaths, config: PusherConfig, listen: string[]): string[] {
  const args = ["-f", join(root, "kamailio", "kamailio.cfg"), "-DD", "-E", "-w", paths.stateDir, "-Y", paths.stateDir];
  for (const address of listen) args.push("-l", address);
  const defines: { [name: string]: string } = {
    PUSHER_PLUGIN_FILE: join(root, "dist", "pusher.js"),
    PUSHER_CONFIG_FILE: paths.runtimeConfig,
    PUSHER_EVAPI_ADDRESS: `127.0.0.1:${config.link.port}`,
    PUSHER_CTL_SOCKET: `unix:${paths.ctlSocket}`,
    // db_sqlite URL of an absolute path has four slashes: `sqlite:///` + `/abs/path`. The plugin creates the table.
    PUSHER_DB_CONNECTION: `pusher=>sqlite:///${paths.deviceDatabase}`,
  };
  for (const name of Object.keys(defines)) args.push("-A", `${name}=${JSON.stringify(defines[name])}`);
  if (config.log.level === "debug") args.push("-A", "WITH_DEBUG");
  return args;
}

function whatToConfigureNext(configPath: string, config: PusherConfig, exists: boolean): string[] {
  const hints: string[] = [];
  if (!exists) hints.push(`no ${configPath} yet: running on the embedded defaults`);
  if (Object.keys(config.apps).length === 0) hints.push("add an app:        pusher apps add-apple <app-id> <cert.pem> [host]");
  if (config.userAgents.length === 0) hints.push("add a rule:        pusher ua add <name> <User-Agent regex>");
  return hints;
}

async function waitForKamailio(paths: RuntimePaths, kamailio: ChildProcess): Promise<void> {
  const deadline = Date.now() + 15000;
  while (Date.now() < deadline) {
    if (kamailio.exitCode !== null) throw new CliError("PUSHER_ERR_KAMAILIO", `kamailio exited with code ${kamailio.exitCode} during start-up (see its log above)`);
    try {
      await callKamailio(paths.ctlSocket, ["core.uptime"]);
      return;
    } catch {
      await new Promise((done) => setTimeout(done, 100));
    }
  }
  throw new CliError("PUSHER_ERR_KAMAILIO", "kamailio did not answer on its control socket within 15 s");
}

export async function runStart(configPath: string, config: PusherConfig, listen: string[]): Promise<void> {
  const root = packageRoot();
  for (const artifact of ["pusher.js", "pusher-helper.js"]) {
    if (!existsSync(join(root, "dist", artifact))) throw new CliError("PUSHER_ERR_INSTALL", `dist/${artifact} is missing: run npm run build`);
  }
  const paths = runtimePaths(configPath, config);
  mkdirSync(paths.stateDir, { recursive: true, mode: 0o700 });
  // Kamailio's plugin and the helper read the validated config, never the hand-edited file directly.
  writeFileSync(paths.runtimeConfig, JSON.stringify(config, null, 2) + "\n", { mode: 0o600 });

  const kamailio = spawn("kamailio", kamailioArguments(root, paths, config, listen), { stdio: ["ignore", "pipe", "pipe"] });
  kamailio.on("error", (error) => process.stdout.write(`[pusher] cannot run kamailio: ${error.message}\n`));
  pipeLines(kamailio, "[kamailio]");

  let stopping = false;
  let helper: ChildProcess | null = null;
  const startHelper = (): void => {
    helper = spawn(process.execPath, [join(root, "dist", "pusher-helper.js"), "--config", paths.runtimeConfig], { stdio: ["ignore", "pipe", "pipe"] });
    pipeLines(helper, "[helper]");
    helper.on("exit", (code, signal) => {
      if (stopping) return;
      process.stdout.write(`[pusher] helper exited (${signal ?? code}); restarting in ${HELPER_RESTART_DELAY_MS} ms\n`);
      setTimeout(() => !stopping && startHelper(), HELPER_RESTART_DELAY_MS).unref();
    });
  };

  const stopped = new Promise<number>((done) => {
    kamailio.on("exit", (code, signal) => {
      const asked = stopping;
      if (!asked) process.stdout.write(`[pusher] kamailio exited (${signal ?? code}); stopping\n`);
      stopping = true;
      helper?.kill("SIGTERM");
      done(asked ? 0 : 1);
    });
  });
  const stop = (): void => {
    if (stopping) return;
    stopping = true;
    process.stdout.write("[pusher] stopping\n");
    helper?.kill("SIGTERM");
    kamailio.kill("SIGTERM");
  };
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);

  try {
    await waitForKamailio(paths, kamailio);
  } catch (error) {
    stop();
    await stopped;
    throw error;
  }
  startHelper();
  const exists = existsSync(configPath) && readFileSync(configPath).length > 0;
  process.stdout.write(`[pusher] ready: SIP on ${listen.join(", ")}; helper link 127.0.0.1:${config.link.port}; state in ${paths.stateDir}\n`);
  for (const hint of whatToConfigureNext(configPath, config, exists)) process.stdout.write(`[pusher] ${hint}\n`);
  const code = await stopped;
  process.removeListener("SIGINT", stop);
  process.removeListener("SIGTERM", stop);
  if (code !== 0) process.exitCode = code;
}
