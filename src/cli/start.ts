// `pusher start`: the all-in-one foreground run. Writes the runtime config, starts Kamailio with the
// reference kamailio/kamailio.cfg and the push helper, prefixes and prints both logs, restarts the helper
// if it dies (calls held meanwhile end at t2), and stops both on SIGINT/SIGTERM.

import { ChildProcess, spawn } from "node:child_process";
import { chmodSync, closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { PusherConfig } from "../config";
import { isInCidrList } from "../ip-match";
import { CliError } from "./config-file";
import { ClusterOptions, saveStartClusterOptions } from "./cluster-options";
import { ensureLinkSecretFile } from "../link-secret-file";
import {
  clusterArguments,
  kamailioArguments,
  kamailioWorkingDirectory,
  packageKamailioFiles,
  packageRoot,
  RuntimePaths,
  runtimeConfigText,
  runtimePaths,
  splitDatabasePassword,
} from "./kamailio-runtime";
import { callKamailio } from "./kamailio-rpc";
import { installedKamailioVersion, kamailioNotInstalled, requireSupportedKamailio } from "./kamailio-version";
import { applyConfig } from "./reload-command";
import { ensureUsersDatabase, listUsers } from "./users-database";
import { ensureLocationDatabase, locationDatabaseArguments, locationDatabaseOf } from "./location-database";

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
  if (!tls)
    throw new CliError(
      "PUSHER_ERR_CONFIG",
      "sip.listen has a tls: address but sip.tls.certificateFile/keyFile are not set",
    );
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

/**
 * devices.sqlite holds whole push tokens: it is made 0600 before Kamailio opens it (an empty file is a new sqlite
 * database), and so are its WAL files from an earlier run (sqlite gives new ones the database's mode).
 */
function keepDeviceDatabasePrivate(file: string): void {
  closeSync(openSync(file, "a", 0o600));
  for (const path of [file, `${file}-wal`, `${file}-shm`]) if (existsSync(path)) chmodSync(path, 0o600);
}

function whatToConfigureNext(configPath: string, config: PusherConfig, exists: boolean): string[] {
  const hints: string[] = [];
  // Digest auth reads users.sqlite in the state dir: one file per node, not shared like the device records.
  if (config.cluster.nodeId > 0 && config.sip.auth)
    hints.push("sip.auth on a cluster node: SIP users are this node's own (users.sqlite); add each on every node");
  if (!exists) hints.push(`no ${configPath} yet: running on the embedded defaults`);
  if (Object.keys(config.apps).length === 0)
    hints.push("add an app:        pusher apps add-apple <app-id> <cert.pem> [host]");
  if (config.userAgents.length === 0) hints.push("add a rule:        pusher ua add <name> <User-Agent regex>");
  if (config.sip.auth && listUsers(runtimePaths(configPath, config).usersDatabase).length === 0) {
    hints.push(
      "add a SIP user:    pusher users add <user@domain> <password>   (REGISTERs are authenticated; sip.auth)",
    );
  }
  return hints;
}

async function waitForKamailio(paths: RuntimePaths, kamailio: ChildProcess): Promise<void> {
  const deadline = Date.now() + 15000;
  while (Date.now() < deadline) {
    if (kamailio.exitCode !== null)
      throw new CliError(
        "PUSHER_ERR_KAMAILIO",
        `kamailio exited with code ${kamailio.exitCode} during start-up (see its log above)`,
      );
    try {
      await callKamailio(paths.ctlSocket, ["core.uptime"]);
      return;
    } catch {
      await new Promise((done) => setTimeout(done, 100));
    }
  }
  throw new CliError("PUSHER_ERR_KAMAILIO", "kamailio did not answer on its control socket within 15 s");
}

const LOOPBACK = ["127.0.0.0/8", "::1/128"];

/** The listen addresses (`proto:host:port`) other machines may reach: all but loopback and `localhost`. */
export function reachableListenAddresses(listen: string[]): string[] {
  return listen.filter((address) => {
    const host = address.slice(address.indexOf(":") + 1, address.lastIndexOf(":")).replace(/^\[|\]$/g, "");
    return host !== "localhost" && !isInCidrList(host, LOOPBACK);
  });
}

/**
 * Without sip.auth anyone who reaches SIP can register push devices for any AOR (and remove them): refused on an
 * address other machines reach unless the operator insists (`--insecure-no-auth`), then said once.
 */
function checkUnauthenticatedListen(config: PusherConfig, listen: string[], insecureNoAuth: boolean): void {
  const reachable = reachableListenAddresses(listen);
  if (config.sip.auth || reachable.length === 0) return;
  const what = `sip.auth is false while sip.listen (or --listen) has ${reachable.join(", ")}, which other machines may reach`;
  if (!insecureNoAuth) {
    throw new CliError(
      "PUSHER_ERR_CONFIG",
      `${what}: anyone there could register or remove the push devices of any user. Set sip.auth to true (and add users with pusher users add), listen on loopback only, or start with --insecure-no-auth to insist`,
    );
  }
  process.stdout.write(
    `[pusher] WARNING: ${what}; started anyway (--insecure-no-auth): anyone there can register push devices for any user\n`,
  );
}

export async function runStart(
  configPath: string,
  config: PusherConfig,
  listen: string[],
  options: { insecureNoAuth?: boolean; clusterOptions?: ClusterOptions } = {},
): Promise<void> {
  // A cluster node's DMQ socket takes SIP requests too: it counts as a listen address here.
  checkUnauthenticatedListen(config, [...listen, ...clusterArguments(config).listen], options.insecureNoAuth === true);
  const root = packageRoot();
  for (const artifact of ["pusher.js", "pusher-helper.js"]) {
    if (!existsSync(join(root, "dist", artifact)))
      throw new CliError("PUSHER_ERR_INSTALL", `dist/${artifact} is missing: run npm run build`);
  }
  // Before anything is written: a Kamailio below 5.6 is refused, and the log names the one this run uses.
  const version = installedKamailioVersion();
  requireSupportedKamailio(version);
  process.stdout.write(`[pusher] ${version.text} (${version.path})\n`);
  const paths = runtimePaths(configPath, config);
  mkdirSync(paths.stateDir, { recursive: true, mode: 0o700 });
  const clustered = config.cluster.nodeId > 0;
  // A cluster node keeps its device records in cluster.database (PostgreSQL), never in an sqlite file of its own.
  const database = clustered ? splitDatabasePassword(config.cluster.database!) : null;
  const kamailioEnv: NodeJS.ProcessEnv = { ...process.env };
  if (database?.passwordLine) {
    writeFileSync(paths.databasePasswordFile, `${database.passwordLine}\n`, { mode: 0o600 });
    chmodSync(paths.databasePasswordFile, 0o600);
    kamailioEnv.PGPASSFILE = paths.databasePasswordFile;
  } else {
    rmSync(paths.databasePasswordFile, { force: true });
  }
  if (!clustered) keepDeviceDatabasePrivate(paths.deviceDatabase);
  // The secret Kamailio and the helper prove to each other (docs/security.md): made once, mode 0600.
  ensureLinkSecretFile(paths.linkSecretFile);
  // Kamailio's plugin and the helper read the validated config, never the hand-edited file directly.
  writeFileSync(paths.runtimeConfig, runtimeConfigText(config), { mode: 0o600 });
  // What `pusher reload` applies over the changed file, as this start did (none: the file's cluster.* alone).
  const clusterOptions = options.clusterOptions ?? {};
  saveStartClusterOptions(paths.clusterOptions, clusterOptions);
  // auth_db needs the file and its table before Kamailio starts.
  if (config.sip.auth) ensureUsersDatabase(paths.usersDatabase);
  // usrloc checks its table too: the bindings survive restarts (kamailio.cfg WITH_USRLOCDB).
  const locationDatabase = locationDatabaseOf(paths.stateDir);
  ensureLocationDatabase(locationDatabase);
  if (listen.some((address) => address.startsWith("tls:"))) writeTlsConfig(paths, config);

  const kamailioFiles = packageKamailioFiles(root);
  const kamailioArgs = [
    ...kamailioArguments(kamailioFiles, paths, config, listen, { deviceDatabaseUrl: database?.url }),
    ...locationDatabaseArguments(locationDatabase),
  ];
  const kamailio = spawn("kamailio", kamailioArgs, {
    stdio: ["ignore", "pipe", "pipe"],
    env: kamailioEnv,
    // Relative include_file and other paths in the cfg resolve against its own folder, whatever the shell's is.
    cwd: kamailioWorkingDirectory(kamailioFiles),
  });
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
    // Only the secret file's path is on the command line (`ps` shows it), never the secret.
    const helperArgs = [
      join(root, "dist", "pusher-helper.js"),
      "--config",
      paths.runtimeConfig,
      "--link-secret-file",
      paths.linkSecretFile,
    ];
    helper = spawn(process.execPath, helperArgs, { stdio: ["ignore", "pipe", "pipe"] });
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
    void applyConfig(configPath, {
      ctlSocket: paths.ctlSocket,
      runtimeConfig: paths.runtimeConfig,
      signalHelper: () => helper?.kill("SIGHUP"),
      clusterOptions,
    })
      .then((lines) => lines.forEach((line) => process.stdout.write(`[pusher] reload: ${line}\n`)))
      .catch((error: CliError) =>
        process.stdout.write(
          `[pusher] reload refused, the running config stays: ${error.code ? `${error.code}: ` : ""}${error.message}\n`,
        ),
      );
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
  process.stdout.write(
    `[pusher] ready: SIP on ${listen.join(", ")}; helper link 127.0.0.1:${config.link.port}; state in ${paths.stateDir}\n`,
  );
  if (clustered) {
    const peers = config.cluster.peers.length ? config.cluster.peers.join(", ") : "none yet";
    process.stdout.write(
      `[pusher] cluster node ${config.cluster.nodeId} of ${config.cluster.nodes}: DMQ on udp:${config.cluster.dmqListen}, peers ${peers}\n`,
    );
  }
  for (const hint of whatToConfigureNext(configPath, config, exists)) process.stdout.write(`[pusher] ${hint}\n`);
  const code = await stopped;
  process.removeListener("SIGINT", stop);
  process.removeListener("SIGTERM", stop);
  process.removeListener("SIGHUP", reload);
  rmSync(paths.helperPidFile, { force: true });
  if (code !== 0) process.exitCode = code;
}
