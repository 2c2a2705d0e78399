// What a Kamailio run of this package needs, in one place for `pusher start`, the CLI commands that talk to the
// running Kamailio (devices, metrics, reload, users), the benchmarks (bench/lib) and the fault tests: where the
// package and the state files are, and the command line Kamailio starts with.

import { existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { PusherConfig } from "../config";
import { CliError } from "./config-file";

/** The package root, found by walking up to kamailio/pusher.cfg: dist/cli.js lives one level below it, this file
 * two, and bench/run.mjs's bundles in build/bench/ two. */
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
    tlsConfig: join(stateDir, "tls.cfg"),
  };
}

/** The cfg Kamailio runs and the plugin bundle it loads: the package's own unless a caller (the bench) swaps them. */
export interface KamailioFiles {
  cfg: string;
  plugin: string;
}

export function packageKamailioFiles(root: string = packageRoot()): KamailioFiles {
  return { cfg: join(root, "kamailio", "kamailio.cfg"), plugin: join(root, "dist", "pusher.js") };
}

/**
 * Kamailio's command line: foreground, state in paths.stateDir, pusher.cfg's knobs as `-A` defines. `allocator`
 * "default" keeps Kamailio's own memory manager, as an operator's Kamailio runs (the benchmark's baseline).
 */
export function kamailioArguments(
  files: KamailioFiles,
  paths: RuntimePaths,
  config: PusherConfig,
  listen: string[],
  options: { allocator?: "tlsf" | "default" } = {},
): string[] {
  const args = ["-f", files.cfg, "-DD", "-E", "-w", paths.stateDir, "-Y", paths.stateDir, "-m", String(config.kamailio.sharedMemoryMb)];
  // TLSF for shared and private memory: Kamailio's default (qm, with its debugging bookkeeping) spent 7–20% of
  // the CPU of a REGISTER in malloc; with TLSF a REGISTER costs 40–60 µs less (docs/benchmarks.md).
  if ((options.allocator ?? "tlsf") === "tlsf") args.push("-x", "tlsf", "-X", "tlsf");
  for (const address of listen) args.push("-l", address);
  const defines: { [name: string]: string | number } = {
    ...config.kamailio.defines,
    PUSHER_PLUGIN_FILE: files.plugin,
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
