// What a Kamailio run of this package needs, in one place for `pusher start`, the CLI commands that talk to the
// running Kamailio (devices, metrics, reload, users), the benchmarks (bench/lib) and the fault tests: where the
// package and the state files are, and the command line Kamailio starts with.

import { existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { PusherConfig } from "../config";
import { LINK_SECRET_FILE_NAME } from "../link-secret-file";
import { readServiceAccount } from "../helper/fcm-oauth";
import { CliError } from "./config-file";

/** The package root, found by walking up to kamailio/pusher.cfg: dist/cli.js lives one level below it, this file
 * two, and bench/run.mjs's bundles in build/bench/ two. */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, "kamailio", "pusher.cfg"))) {
    const parent = dirname(dir);
    if (parent === dir)
      throw new CliError(
        "PUSHER_ERR_INSTALL",
        "cannot find kamailio/pusher.cfg above " + fileURLToPath(import.meta.url),
      );
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
  /** The cluster options `pusher start` was given (--node-id …), which `pusher reload` applies again. */
  clusterOptions: string;
  /** Kamailio's tls module config, written when a `tls:` listen address is used. */
  tlsConfig: string;
  /** The secret Kamailio and the helper prove to each other (pusher.cfg's PUSHER_LINK_SECRET_FILE). */
  linkSecretFile: string;
  /** libpq's password file (PGPASSFILE) for cluster.database: its password stays off Kamailio's command line. */
  databasePasswordFile: string;
}

/** The state files of the config at `configPath`: config.stateDir is relative to the config file's folder. */
export function runtimePaths(configPath: string, config: PusherConfig): RuntimePaths {
  const stateDir = resolve(dirname(configPath), config.stateDir);
  return {
    stateDir,
    runtimeConfig: join(stateDir, "pusher.runtime.json"),
    ctlSocket: join(stateDir, "kamailio.ctl"),
    deviceDatabase: join(stateDir, "devices.sqlite"),
    usersDatabase: join(stateDir, "users.sqlite"),
    helperPidFile: join(stateDir, "helper.pid"),
    clusterOptions: join(stateDir, "cluster-options.json"),
    tlsConfig: join(stateDir, "tls.cfg"),
    linkSecretFile: join(stateDir, LINK_SECRET_FILE_NAME),
    databasePasswordFile: join(stateDir, "pgpass"),
  };
}

/**
 * The runtime copy of the config that `pusher start` and `pusher reload` write for Kamailio and the helper. An
 * app whose firebase section has no projectIds (written before they existed) gets its service account's own
 * project there: the plugin never reads key files, and refuses at REGISTER a binding naming another project.
 * A key file that cannot be read leaves it unset (`pusher check` says why).
 */
export function runtimeConfigText(config: PusherConfig): string {
  const copy = JSON.parse(JSON.stringify(config)) as PusherConfig;
  for (const appId of Object.keys(copy.apps)) {
    const firebase = copy.apps[appId].firebase;
    if (!firebase || firebase.projectIds) continue;
    try {
      firebase.projectIds = [readServiceAccount(firebase.serviceAccountFile).projectId];
    } catch {
      // left unset: the helper still pushes only to the service account's own project
    }
  }
  return JSON.stringify(copy, null, 2) + "\n";
}

/** The cfg Kamailio runs and the plugin bundle it loads: the package's own unless a caller (the bench) swaps them. */
export interface KamailioFiles {
  cfg: string;
  plugin: string;
}

export function packageKamailioFiles(root: string = packageRoot()): KamailioFiles {
  return { cfg: join(root, "kamailio", "kamailio.cfg"), plugin: join(root, "dist", "pusher.js") };
}

/** Where Kamailio runs: the cfg's folder, against which the cfg's relative paths (include_file "…") resolve. */
export function kamailioWorkingDirectory(files: KamailioFiles): string {
  return dirname(resolve(files.cfg));
}

/** Loopback and the sources pusher.json trusts, as CIDRs (ipops is_in_subnet wants a prefix length). */
export function trustedSubnets(config: PusherConfig): string[] {
  const subnets: string[] = [];
  for (const source of ["127.0.0.0/8", "::1/128", ...config.kazoo.trustedSources, ...config.calls.trustedSources]) {
    const subnet = source.includes("/") ? source : `${source}/${source.includes(":") ? 128 : 32}`;
    if (!subnets.includes(subnet)) subnets.push(subnet);
  }
  return subnets;
}

/** The DB driver module (pusher.cfg's PUSHER_DB_MODULE) a device database URL needs: sqlite or PostgreSQL only. */
export function databaseModule(url: string): string {
  if (url.startsWith("sqlite:")) return "db_sqlite.so";
  if (url.startsWith("postgres:")) return "db_postgres.so";
  throw new CliError(
    "PUSHER_ERR_CONFIG",
    `device database ${url.split(":")[0]}: only sqlite: and postgres: URLs are supported`,
  );
}

/**
 * A postgres:// URL without its password, and the line of a libpq password file (PGPASSFILE, mode 0600) that gives
 * it: Kamailio's command line, where the URL goes, is what `ps` shows every local user. db_postgres passes no
 * password then, and libpq reads it from the file. `passwordLine` is null for a URL without a password.
 */
export function splitDatabasePassword(url: string): { url: string; passwordLine: string | null } {
  const match = /^postgres:\/\/([^:@/]+):([^@/]*)@([^:/]+)(?::([0-9]+))?\/(.+)$/.exec(url);
  if (!match) return { url, passwordLine: null };
  const [, user, password, host, port, database] = match;
  // PostgreSQL's pgpass format: host:port:database:user:password, with `:` and `\` escaped by a backslash.
  const field = (value: string) => value.replace(/[\\:]/g, (character) => `\\${character}`);
  return {
    url: `postgres://${user}@${host}${port ? `:${port}` : ""}/${database}`,
    passwordLine: [host, port ?? "5432", database, user, password].map(field).join(":"),
  };
}

/** DMQ notification addresses kamailio.cfg has a modparam line for (PUSHER_DMQ_NOTIFICATION_ADDRESS, _2, _3). */
export const DMQ_NOTIFICATION_ADDRESSES = 3;

/**
 * What a cluster node adds to Kamailio's command line (kamailio.cfg WITH_CLUSTER): the DMQ listen socket (udp), and
 * the knobs of kamailio.cfg (DMQ addresses) and pusher.cfg (node id and count). Nothing for a single node.
 */
export function clusterArguments(config: PusherConfig): {
  listen: string[];
  defines: { [name: string]: string | number };
} {
  const cluster = config.cluster;
  if (cluster.nodeId < 1 || cluster.dmqListen === undefined) return { listen: [], defines: {} };
  const defines: { [name: string]: string | number } = {
    PUSHER_NODE_ID: cluster.nodeId,
    PUSHER_CLUSTER_NODES: cluster.nodes,
    PUSHER_DMQ_SERVER_ADDRESS: `sip:${cluster.dmqListen}`,
  };
  cluster.peers.slice(0, DMQ_NOTIFICATION_ADDRESSES).forEach((peer, index) => {
    defines[`PUSHER_DMQ_NOTIFICATION_ADDRESS${index === 0 ? "" : `_${index + 1}`}`] = `sip:${peer}`;
  });
  return { listen: [`udp:${cluster.dmqListen}`], defines };
}

/**
 * Kamailio's command line: foreground, state in paths.stateDir, pusher.cfg's knobs as `-A` defines. `allocator`
 * "default" keeps Kamailio's own memory manager, as an operator's Kamailio runs (the benchmark's baseline).
 * `deviceDatabaseUrl`: another database for the device records than `<stateDir>/devices.sqlite` (a
 * `postgres://user:password@host:port/db` URL; the tests' PostgreSQL); a cluster node (cluster.nodeId) uses
 * cluster.database unless given one.
 */
export function kamailioArguments(
  files: KamailioFiles,
  paths: RuntimePaths,
  config: PusherConfig,
  listen: string[],
  options: { allocator?: "tlsf" | "default"; deviceDatabaseUrl?: string } = {},
): string[] {
  const args = [
    "-f",
    files.cfg,
    "-DD",
    "-E",
    "-w",
    paths.stateDir,
    "-Y",
    paths.stateDir,
    "-m",
    String(config.kamailio.sharedMemoryMb),
  ];
  // TLSF for shared and private memory: Kamailio's default (qm, with its debugging bookkeeping) spent 7–20% of
  // the CPU of a REGISTER in malloc; with TLSF a REGISTER costs 40–60 µs less (docs/benchmarks.md).
  if ((options.allocator ?? "tlsf") === "tlsf") args.push("-x", "tlsf", "-X", "tlsf");
  const cluster = clusterArguments(config);
  // The DMQ socket last: a UDP request Kamailio sends from a process that has no socket of its own leaves from the
  // first UDP listen address, which stays a SIP one.
  for (const address of [...listen, ...cluster.listen]) args.push("-l", address);
  const deviceDatabaseUrl =
    options.deviceDatabaseUrl ??
    (cluster.listen.length ? config.cluster.database : undefined) ??
    `sqlite:///${paths.deviceDatabase}`;
  const defines: { [name: string]: string | number } = {
    // kamailio.cfg's flood detection never counts a trusted peer; kamailio.defines may still set its own list.
    PUSHER_TRUSTED_SOURCES: trustedSubnets(config).join(","),
    ...config.kamailio.defines,
    PUSHER_PLUGIN_FILE: files.plugin,
    PUSHER_CONFIG_FILE: paths.runtimeConfig,
    PUSHER_EVAPI_ADDRESS: `127.0.0.1:${config.link.port}`,
    PUSHER_CTL_SOCKET: `unix:${paths.ctlSocket}`,
    PUSHER_LINK_SECRET_FILE: paths.linkSecretFile,
    // db_sqlite URL of an absolute path has four slashes: `sqlite:///` + `/abs/path`. The plugin creates the table.
    PUSHER_DB_CONNECTION: `pusher=>${deviceDatabaseUrl}`,
    // Only the driver that connection needs.
    PUSHER_DB_MODULE: databaseModule(deviceDatabaseUrl),
    ...cluster.defines,
  };
  if (config.sip.auth) defines.PUSHER_AUTH_DB_URL = `sqlite:///${paths.usersDatabase}`;
  // Numbers go as they are (#!define N 1); strings as quoted cfg strings.
  for (const name of Object.keys(defines))
    args.push("-A", `${name}=${typeof defines[name] === "number" ? defines[name] : JSON.stringify(defines[name])}`);
  // pusher.cfg's PostgreSQL settings: Kamailio starts without the database, and waits for it a bounded time.
  if (deviceDatabaseUrl.startsWith("postgres:")) args.push("-A", "PUSHER_DB_POSTGRES");
  if (config.log.level === "debug") args.push("-A", "WITH_DEBUG");
  if (config.sip.auth) args.push("-A", "WITH_AUTH");
  if (cluster.listen.length) args.push("-A", "WITH_CLUSTER");
  if (listen.some((address) => address.startsWith("tls:")))
    args.push("-A", "WITH_TLS", "-A", `PUSHER_TLS_CONFIG=${JSON.stringify(paths.tlsConfig)}`);
  return args;
}
