// The plugin reads the same pusher.json as the CLI and the helper (path in $sht(pusher_state=>config_file),
// set by kamailio/pusher.cfg). Parsed once per process and again only when the config generation in htable
// changes (`pusher reload` bumps it), so a call costs one htable read, not a file read.

import { PusherConfig, defaultConfig, validateConfig } from "../config";
import { logError } from "./log";
import { STATE_TABLE, getNumber, getString } from "./shared-state";

let cachedGeneration = -1;
let cachedConfig: PusherConfig | null = null;
// The config of the request being handled, while withConfig runs: read once for the whole request.
let pinnedConfig: PusherConfig | null = null;

/**
 * Runs `body` with the config read once: a REGISTER reads it in several places (each read an htable lookup, and
 * Duktape makes every call cost), and one request never sees two generations.
 */
export function withConfig<T>(body: (config: PusherConfig) => T): T {
  if (pinnedConfig) return body(pinnedConfig);
  pinnedConfig = currentConfig();
  try {
    return body(pinnedConfig);
  } finally {
    pinnedConfig = null;
  }
}

export function currentConfig(): PusherConfig {
  if (pinnedConfig) return pinnedConfig;
  const generation = getNumber(STATE_TABLE, "config_generation");
  if (cachedConfig && generation === cachedGeneration) return cachedConfig;
  cachedGeneration = generation;
  // A broken file keeps the config this process already had (or the defaults at first load).
  cachedConfig = loadConfig() || cachedConfig || defaultConfig();
  return cachedConfig;
}

function loadConfig(): PusherConfig | null {
  const path = getString(STATE_TABLE, "config_file");
  if (!path) return null;
  const text = KSR.corex.file_read(path);
  if (typeof text !== "string" || text === "") {
    logError("cannot read config file " + path);
    return null;
  }
  try {
    return validateConfig(JSON.parse(text));
  } catch (e) {
    logError("config file " + path + " refused: " + (e as Error).message);
    return null;
  }
}
