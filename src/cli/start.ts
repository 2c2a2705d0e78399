// `pusher start`: the all-in-one foreground run. Writes the runtime config, starts Kamailio with the
// reference kamailio/kamailio.cfg and the push helper, prefixes and prints both logs, restarts the helper
// if it dies (calls held meanwhile end at t2), and stops both on SIGINT/SIGTERM.

import { ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { PusherConfig } from "../config";
import { CliError } from "./config-file";
import { kamailioArguments, packageKamailioFiles, packageRoot, RuntimePaths, runtimePaths } from "./kamailio-runtime";
import { callKamailio } from "./kamailio-rpc";
import { installedKamailioVersion, kamailioNotInstalled, requireSupportedKamailio } from "./kamailio-version";
import { applyConfig } from "./reload-command";
import { ensureUsersDatabase, listUsers } from "./users-database";

const HELPER_RESTART_DELAY_MS = 1000;

function pipeLines(child: ChildProcess, prefix: string): void {
  for (const stream of [child.stdout, child.stderr]) {
    if (!stream) continue;
    createInterface({ input: stream }).on("line", (line) => {
      if (line.trim()) process.stdout.write(`${prefix} ${line}\n`);
    });
  }
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

export async function runStart(configPath: string, config: PusherConfig, listen: string[]): Promise<void> {
  const root = packageRoot();
  for (const artifact of ["pusher.js", "pusher-helper.js"]) {
    if (!existsSync(join(root, "dist", artifact))) throw new CliError("PUSHER_ERR_INSTALL", `dist/${artifact} is missing: run npm run build`);
  }
  // Before anything is written: a Kamailio below 5.6 is refused, and the log names the one this run uses.
  const version = installedKamailioVersion();
  requireSupportedKamailio(version);
  process.stdout.write(`[pusher] ${version.text} (${version.path})\n`);
  const paths = runtimePaths(configPath, config);
  mkdirSync(paths.stateDir, { recursive: true, mode: 0o700 });
  // Kamailio's plugin and the helper read the validated config, never the hand-edited file directly.
  writeFileSync(paths.runtimeConfig, JSON.stringify(config, null, 2) + "\n", { mode: 0o600 });
  // auth_db needs the file and its table before Kamailio starts.
  if (config.sip.auth) ensureUsersDatabase(paths.usersDatabase);
  if (listen.some((address) => address.startsWith("tls:"))) writeTlsConfig(paths, config);

  const kamailio = spawn("kamailio", kamailioArguments(packageKamailioFiles(root), paths, config, listen), { stdio: ["ignore", "pipe", "pipe"] });
  // A binary that cannot run emits "error" and never "exit": wait for the spawn before relying on "exit".
  try {
    await new Promise<void>((resolve, reject) => {
      kamailio.once("spawn", resolve);
      kamailio.once("error", reject);
    });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") throw kamailioNotInstalled();
    throw new CliError("PUSHER_ERR_INSTALL", `cannot run kamailio: ${(error as Error).message}`);
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
