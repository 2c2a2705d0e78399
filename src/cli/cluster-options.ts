// `pusher start`'s cluster options (--node-id, --nodes, --dmq-listen, --peers, --database), each instead of its
// `cluster.*` key of the config, and the file in the state dir where start keeps the ones it was given: `pusher
// reload` and SIGHUP apply them again over the changed file, so a reload never swaps the running node's cluster
// settings for the file's.

import { readFileSync, rmSync } from "node:fs";
import { ConfigError, PusherConfig, validateConfig } from "../config";
import { CliError, LoadedConfig, readConfigFile, validatedConfigFile, writeFileAtomic } from "./config-file";
import { RuntimePaths, runtimePaths } from "./kamailio-runtime";

/** `pusher start`'s cluster options as given on its command line, each instead of its `cluster.*` key. */
export interface ClusterOptions {
  nodeId?: string;
  nodes?: string;
  dmqListen?: string;
  peers?: string;
  database?: string;
}

const CLUSTER_OPTION_KEYS: { [key: string]: { option: string; name: keyof ClusterOptions } } = {
  nodeId: { option: "--node-id", name: "nodeId" },
  nodes: { option: "--nodes", name: "nodes" },
  dmqListen: { option: "--dmq-listen", name: "dmqListen" },
  peers: { option: "--peers", name: "peers" },
  database: { option: "--database", name: "database" },
};

/**
 * The config `pusher start` runs with: the file's, with the `cluster.*` keys the options name replaced, validated as
 * the file is (a wrong value is refused naming its option and key). The file itself is not changed.
 */
export function withClusterOptions(loaded: Omit<LoadedConfig, "config">, options: ClusterOptions): PusherConfig {
  const given = Object.keys(CLUSTER_OPTION_KEYS).filter((key) => options[CLUSTER_OPTION_KEYS[key].name] !== undefined);
  // The file alone may lack what the options give (a `cluster` section without `database`): validated with them.
  if (given.length === 0) return validatedConfigFile(loaded);
  const cluster: { [key: string]: unknown } = { ...(loaded.raw.cluster as object | undefined) };
  for (const key of given) {
    const value = options[CLUSTER_OPTION_KEYS[key].name]!;
    if (key === "nodeId" || key === "nodes") cluster[key] = /^[0-9]+$/.test(value) ? Number(value) : value;
    else if (key === "peers")
      cluster[key] = value
        .split(",")
        .map((peer) => peer.trim())
        .filter((peer) => peer !== "");
    else cluster[key] = value;
  }
  try {
    return validateConfig({ ...loaded.raw, cluster });
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    const key = error.key.replace(/^cluster\.|\[\d+\]$/g, "");
    const option = given.includes(key)
      ? `${CLUSTER_OPTION_KEYS[key].option} (instead of ${loaded.path}'s cluster.${key}): `
      : `${loaded.path} with the cluster options: `;
    throw new CliError("PUSHER_ERR_CONFIG", option + error.message);
  }
}

/**
 * `pusher start` keeps the options it was given in `file` (mode 0600: --database may hold a password), and removes
 * the file when it was given none, so that the file always says what the running start used.
 */
export function saveStartClusterOptions(file: string, options: ClusterOptions): void {
  const given = Object.values(CLUSTER_OPTION_KEYS).filter(({ name }) => options[name] !== undefined);
  if (given.length === 0) {
    rmSync(file, { force: true });
    return;
  }
  const saved: ClusterOptions = {};
  for (const { name } of given) saved[name] = options[name];
  writeFileAtomic(file, JSON.stringify(saved, null, 2) + "\n");
}

/** The options the running `pusher start` was given (none when `file` does not exist). */
export function readStartClusterOptions(file: string): ClusterOptions {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return {};
    throw new CliError(
      "PUSHER_ERR_RELOAD",
      `cannot read pusher start's cluster options ${file}: ${(error as Error).message}`,
    );
  }
  const names = Object.values(CLUSTER_OPTION_KEYS).map(({ name }) => name as string);
  let saved: unknown;
  try {
    saved = JSON.parse(text);
  } catch {
    saved = null;
  }
  if (
    !saved ||
    typeof saved !== "object" ||
    Array.isArray(saved) ||
    Object.entries(saved).some(([name, value]) => !names.includes(name) || typeof value !== "string")
  )
    throw new CliError(
      "PUSHER_ERR_RELOAD",
      `${file} does not hold pusher start's cluster options (start pusher again to rewrite it)`,
    );
  return saved as ClusterOptions;
}

/**
 * The config of the node `pusher start` runs (for `pusher reload` and `pusher devices`, which talk to it): the file's,
 * with the cluster options start saved in its state dir, and that state dir's paths. The state dir is found from the
 * file without its cluster section, which may be incomplete without those options (no `database`: start's
 * `--database` gave it); the config is then validated whole, with them.
 */
export function runningConfig(
  configPath: string,
  options: { ownKamailio?: boolean } = {},
): { config: PusherConfig; paths: RuntimePaths } {
  const file = readConfigFile(configPath);
  // Your own Kamailio (--kamailio-ctl) has no pusher start, hence no cluster options: its cluster.* are the file's.
  if (options.ownKamailio) {
    const config = validatedConfigFile(file);
    return { config, paths: runtimePaths(configPath, config) };
  }
  const withoutCluster = validatedConfigFile({ ...file, raw: { ...file.raw, cluster: undefined } });
  const paths = runtimePaths(configPath, withoutCluster);
  const config = withClusterOptions(file, readStartClusterOptions(paths.clusterOptions));
  return { config, paths: runtimePaths(configPath, config) };
}
