// `pusher reload` (and SIGHUP to `pusher start`): applies a changed pusher.json to the running Kamailio and
// helper without restarting either, so held calls keep waiting. A config that does not validate is refused
// whole before anything is touched: the running one stays.
//   1. validate the file (the same validateConfig the plugin and the helper run);
//   2. `pusher start` only: rewrite its runtime copy atomically (Kamailio and the helper read that copy);
//   3. bump $sht(pusher_state=>config_generation): every Kamailio process re-reads the file at its next
//      message (src/plugin/settings.ts);
//   4. SIGHUP the helper: it re-reads the file and swaps apps and credentials (src/helper/main.ts).
// Listen addresses, the link and metrics ports, the state dir, Kamailio -A defines and the cluster settings are read
// only at start: a change to them is reported as needing a restart. `pusher start`'s cluster options (--node-id …)
// replace the file's cluster.* keys at every reload as they did at start (start keeps them in the state dir).

import { existsSync, readFileSync } from "node:fs";
import type { PusherConfig } from "../config";
import { ClusterOptions, readStartClusterOptions, runningConfig, withClusterOptions } from "./cluster-options";
import { CliError, readConfigFile, writeFileAtomic } from "./config-file";
import { callKamailio } from "./kamailio-rpc";
import { runtimeConfigText } from "./kamailio-runtime";

/** Keys only a restart applies (compared with the running copy). */
const RESTART_ONLY_KEYS = ["sip.listen", "sip.tls", "sip.auth", "link", "metrics", "stateDir", "kamailio", "cluster"];

export interface ReloadTargets {
  /** Kamailio's ctl socket path (kamcmd `-s unix:<path>`). */
  ctlSocket: string;
  /** `pusher start`'s runtime copy of the config; absent when Kamailio and the helper read the file itself. */
  runtimeConfig?: string;
  /** Signals the helper (SIGHUP); throws CliError when there is no helper to tell. */
  signalHelper: () => void;
  /** The cluster options the running `pusher start` was given: they replace the file's cluster.* keys again. */
  clusterOptions?: ClusterOptions;
}

function valueAt(config: unknown, path: string): string {
  let value = config as { [key: string]: unknown } | undefined;
  for (const part of path.split(".")) value = value?.[part] as { [key: string]: unknown } | undefined;
  return JSON.stringify(value ?? null);
}

/** Keys changed between the running runtime copy and `config` that need a restart. */
function restartOnlyChanges(runtimeConfig: string | undefined, config: PusherConfig): string[] {
  if (!runtimeConfig || !existsSync(runtimeConfig)) return [];
  let running: unknown;
  try {
    running = JSON.parse(readFileSync(runtimeConfig, "utf8"));
  } catch {
    return [];
  }
  return RESTART_ONLY_KEYS.filter((key) => valueAt(running, key) !== valueAt(config, key));
}

/** Bumps $sht(pusher_state=>config_generation); returns the new generation. */
export async function bumpConfigGeneration(ctlSocket: string): Promise<number> {
  const current = await callKamailio(ctlSocket, ["htable.get", "pusher_state", "config_generation"]);
  // kamcmd prints the item as `{ item: { name: config_generation value: 3 } }` (or just the value).
  const match = /value:\s*(-?\d+)/.exec(current) ?? /(-?\d+)\s*$/.exec(current.trim());
  const next = (match ? Number(match[1]) : 0) + 1;
  await callKamailio(ctlSocket, ["htable.seti", "pusher_state", "config_generation", String(next)]);
  return next;
}

/**
 * Validates `configPath` and applies it to the running processes. Returns the lines to print.
 * Throws CliError (PUSHER_ERR_CONFIG… when the file is refused; nothing is changed then).
 */
export async function applyConfig(configPath: string, targets: ReloadTargets): Promise<string[]> {
  const config = withClusterOptions(readConfigFile(configPath), targets.clusterOptions ?? {});
  const lines: string[] = [];
  const restart = restartOnlyChanges(targets.runtimeConfig, config);
  if (targets.runtimeConfig) writeFileAtomic(targets.runtimeConfig, runtimeConfigText(config));
  const generation = await bumpConfigGeneration(targets.ctlSocket);
  lines.push(`Kamailio: config generation ${generation}; each process re-reads the config at its next message`);
  targets.signalHelper();
  lines.push(`helper: told to reload (SIGHUP); it logs "config reloaded" or why it refused`);
  lines.push(
    `applied ${configPath}: ${Object.keys(config.apps).length} app(s), ${config.userAgents.length} User-Agent rule(s)`,
  );
  for (const key of restart)
    lines.push(`${key} changed: it takes effect at the next restart (pusher start / systemctl restart)`);
  return lines;
}

/** SIGHUPs the process whose pid is in `pidFile` (or given as a number). */
export function signalPid(pidSource: string): void {
  let pid = Number(pidSource);
  if (!/^\d+$/.test(pidSource)) {
    let text: string;
    try {
      text = readFileSync(pidSource, "utf8").trim();
    } catch (error) {
      throw new CliError(
        "PUSHER_ERR_RELOAD",
        `cannot read the helper's pid file ${pidSource}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message} (is pusher start running?)`,
      );
    }
    pid = Number(text);
    if (!/^\d+$/.test(text)) throw new CliError("PUSHER_ERR_RELOAD", `${pidSource} does not hold a process id`);
  }
  try {
    process.kill(pid, "SIGHUP");
  } catch (error) {
    throw new CliError(
      "PUSHER_ERR_RELOAD",
      `cannot signal the helper (pid ${pid}): ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
    );
  }
}

export interface ReloadOptions {
  /** `--kamailio-ctl`: your own Kamailio's ctl socket (then no runtime copy is written). */
  kamailioCtl?: string;
  /** `--helper-pid-file`: a file holding the helper's pid, or the pid itself. */
  helperPid?: string;
}

/** `pusher reload [--kamailio-ctl SOCKET] [--helper-pid-file FILE|PID]`. */
export async function runReload(configPath: string, options: ReloadOptions): Promise<void> {
  const ownKamailio = options.kamailioCtl !== undefined;
  const { paths } = runningConfig(configPath, { ownKamailio });
  const lines = await applyConfig(configPath, {
    ctlSocket: ownKamailio ? options.kamailioCtl!.replace(/^unix:/, "") : paths.ctlSocket,
    runtimeConfig: ownKamailio ? undefined : paths.runtimeConfig,
    signalHelper: () => signalPid(options.helperPid ?? paths.helperPidFile),
    // Your own Kamailio has no pusher start, hence no cluster options: its cluster.* are the file's.
    clusterOptions: ownKamailio ? {} : readStartClusterOptions(paths.clusterOptions),
  });
  for (const line of lines) console.log(line);
}
