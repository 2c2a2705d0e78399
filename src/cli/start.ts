// `pusher start`: the all-in-one foreground run. Writes the runtime config, starts Kamailio with the
// reference kamailio/kamailio.cfg and the push helper, prefixes and prints both logs, restarts the helper
// if it dies (calls held meanwhile end at t2), and stops both on SIGINT/SIGTERM.

import { ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { PusherConfig } from "../config";
import { CliError } from "./config-file";
import { callKamailio } from "./kamailio-rpc";
import { applyConfig } from "./reload-command";
import { ensureUsersDatabase, listUsers } from "./users-database";

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
  /** The sqlite file of SIP users for digest auth (kamailio.cfg's PUSHER_AUTH_DB_URL; `pusher users`). */
  usersDatabase: string;
  /** The running helper's pid, for `pusher reload`. */
  helperPidFile: string;
  /** Kamailio's tls module config, written when a `tls:` listen address is used. */
  tlsConfig: string;
}

export function runtimePaths(configPath: string, config: PusherConfig): RuntimePaths {
  const stateDir = resolve(dirname(configPath), config.stateDir);
  return {
    stateDir,
    runtimeConfig: join(stateDir, "pusher.runtime.json"),
    ctlSocket: join(stateDir, "kamailio.ctl"),
    deviceDatabase: join(stateDir, "devices.sqlite"),
    usersDatabase: join(stateDir, "users.sqlite"),
    helperPidFile: join(stateDir, "helper.pid"),
    tlsConfig: join(stateDir, "tls.cfg"),
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
  const args = ["-f", join(root, "kamailio", "kamailio.cfg"), "-DD", "-E", "-w", paths.stateDir, "-Y", paths.stateDir, "-m", String(config.kamailio.sharedMemoryMb)];
  // TLSF for shared and private memory: Kamailio's default (qm, with its debugging bookkeeping) spent 7–20% of
  // the CPU of a REGISTER in malloc; with TLSF a REGISTER costs 40–60 µs less (README, Benchmarks).
  args.push("-x", "tlsf", "-X", "tlsf");
  for (const address of listen) args.push("-l", address);
  const defines: { [name: string]: string | number } = {
    ...config.kamailio.defines,
    PUSHER_PLUGIN_FILE: join(root, "dist", "pusher.js"),
    PUSHER_CONFIG_FILE: paths.runtimeConfig,
    PUSHER_EVAPI_ADDRESS: `127.0.0.1:${config.link.port}`,
    PUSHER_CTL_SOCKET: `unix:${paths.ctlSocket}`,
    // db_sqlite URL of an absolute path has four slashes: `sqlite:///` + `/abs/path`. The plugin creates the table.
    PUSHER_DB_CONNECTION: `pusher=>sqlite:///${paths.deviceDatabase}`,
  };
  if (config.sip.auth) defines.PUSHER_AUTH_DB_URL = `sqlite:///${paths.usersDatabase}`;
  // Numbers go as they are (#!define N 1); strings as quoted cfg strings.
  for (const name of Object.keys(defines)) args.push("-A", `${name}=${typeof defines[name] === "number" ? defines[name] : JSON.stringify(defines[name])}`);
  if (config.log.level === "debug") args.push("-A", "WITH_DEBUG");
  if (config.sip.auth) args.push("-A", "WITH_AUTH");
  if (listen.some((address) => address.startsWith("tls:"))) args.push("-A", "WITH_TLS", "-A", `PUSHER_TLS_CONFIG=${JSON.stringify(paths.tlsConfig)}`);
  return args;
}

/** Kamailio's tls module config (README.tls): one server profile for every tls: listen address. */
function writeTlsConfig(paths: RuntimePaths, config: PusherConfig): void {
  const tls = config.sip.tls;
  if (!tls) throw new CliError("PUSHER_ERR_CONFIG", "sip.listen has a tls: address but sip.tls.certificateFile/keyFile are not set");
  const base = dirname(paths.runtimeConfig);
  const lines = [
    "# Written by `pusher start` from sip.tls in pusher.json; rewritten at every start.",
    "[server:default]",
    "method = TLSv1.2+",
    `certificate = ${resolve(base, tls.certificateFile)}`,
    `private_key = ${resolve(base, tls.keyFile)}`,
    "verify_certificate = no",
    "require_certificate = no",
    "",
    "[client:default]",
    "method = TLSv1.2+",
    "verify_certificate = yes",
    "require_certificate = yes",
    "",
  ];
  writeFileSync(paths.tlsConfig, lines.join("\n"), { mode: 0o600 });
}

function whatToConfigureNext(configPath: string, config: PusherConfig, exists: boolean): string[] {
  const hints: string[] = [];
  if (!exists) hints.push(`no ${configPath} yet: running on the embedded defaults`);
  if (Object.keys(config.apps).length === 0) hints.push("add an app:        pusher apps add-apple <app-id> <cert.pem> [host]");
  if (config.userAgents.length === 0) hints.push("add a rule:        pusher ua add <name> <User-Agent regex>");
  if (config.sip.auth && listUsers(runtimePaths(configPath, config).usersDatabase).length === 0) {
    hints.push("add a SIP user:    pusher users add <user@domain> <password>   (REGISTERs are authenticated; sip.auth)");
  }
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

/** What scripts/ensure-deps.sh installs for Kamailio (Debian 12). */
const KAMAILIO_PACKAGES = "kamailio kamailio-extra-modules kamailio-utils-modules kamailio-sqlite-modules kamailio-tls-modules";

export async function runStart(configPath: string, config: PusherConfig, listen: string[]): Promise<void> {
  const root = packageRoot();
  for (const artifact of ["pusher.js", "pusher-helper.js"]) {
    if (!existsSync(join(root, "dist", artifact))) throw new CliError("PUSHER_ERR_INSTALL", `dist/${artifact} is missing: run npm run build`);
  }
  const paths = runtimePaths(configPath, config);
  mkdirSync(paths.stateDir, { recursive: true, mode: 0o700 });
  // Kamailio's plugin and the helper read the validated config, never the hand-edited file directly.
  writeFileSync(paths.runtimeConfig, JSON.stringify(config, null, 2) + "\n", { mode: 0o600 });
  // auth_db needs the file and its table before Kamailio starts.
  if (config.sip.auth) ensureUsersDatabase(paths.usersDatabase);
  if (listen.some((address) => address.startsWith("tls:"))) writeTlsConfig(paths, config);

  const kamailio = spawn("kamailio", kamailioArguments(root, paths, config, listen), { stdio: ["ignore", "pipe", "pipe"] });
  // A binary that cannot run emits "error" and never "exit": wait for the spawn before relying on "exit".
  try {
    await new Promise<void>((resolve, reject) => {
      kamailio.once("spawn", resolve);
      kamailio.once("error", reject);
    });
  } catch (error) {
    const missing = (error as NodeJS.ErrnoException).code === "ENOENT";
    throw new CliError(
      "PUSHER_ERR_INSTALL",
      missing
        ? `kamailio is not installed (no kamailio in PATH): install Debian's ${KAMAILIO_PACKAGES} (npm start installs them)`
        : `cannot run kamailio: ${(error as Error).message}`,
    );
  }
  kamailio.on("error", (error) => process.stdout.write(`[pusher] kamailio: ${error.message}\n`));
  pipeLines(kamailio, "[kamailio]");

  let stopping = false;
  let helper: ChildProcess | null = null;
  const startHelper = (): void => {
    helper = spawn(process.execPath, [join(root, "dist", "pusher-helper.js"), "--config", paths.runtimeConfig], { stdio: ["ignore", "pipe", "pipe"] });
    pipeLines(helper, "[helper]");
    if (helper.pid !== undefined) writeFileSync(paths.helperPidFile, `${helper.pid}\n`, { mode: 0o600 });
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
  // SIGHUP does what `pusher reload` does; a refused config is logged and the running one stays.
  const reload = (): void => {
    void applyConfig(configPath, { ctlSocket: paths.ctlSocket, runtimeConfig: paths.runtimeConfig, signalHelper: () => helper?.kill("SIGHUP") })
      .then((lines) => lines.forEach((line) => process.stdout.write(`[pusher] reload: ${line}\n`)))
      .catch((error: Error) => process.stdout.write(`[pusher] reload refused, the running config stays: ${error.message}\n`));
  };
  process.on("SIGHUP", reload);

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
  process.removeListener("SIGHUP", reload);
  rmSync(paths.helperPidFile, { force: true });
  if (code !== 0) process.exitCode = code;
}
