// Finding, reading and writing pusher.json. Commands edit the user's raw object (so defaults are not written
// out), and every write is validated first and atomic (tmp file in the same directory, then rename).
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { randomBytes } from "node:crypto";
import { validateConfig, type PusherConfig } from "../config";
import type { ErrorCode } from "../errors";

/** An error for the CLI's one handler: printed as `pusher: <code>: <message>`; PUSHER_ERR_USAGE exits 2, others 1. */
export class CliError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
    this.name = "CliError";
  }
}

export function usageError(message: string): CliError {
  return new CliError("PUSHER_ERR_USAGE", message + " (see pusher help)");
}

/** pusher.json as the user wrote it: already validated, so `apps` is an object and `userAgents` a list if present. */
export type RawConfig = { [key: string]: unknown };

export interface LoadedConfig {
  /** Absolute path of the config file. */
  path: string;
  /** False when the file does not exist: `config` is then the defaults and `raw` is `{}`. */
  exists: boolean;
  raw: RawConfig;
  /** Validated, defaults filled in, deeply frozen. */
  config: PusherConfig;
}

/** `--config FILE`, else $PUSHER_CONFIG, else ./pusher.json; always absolute. */
export function resolveConfigPath(option?: string, env: NodeJS.ProcessEnv = process.env): string {
  return resolve(option || env.PUSHER_CONFIG || "pusher.json");
}

export function loadConfig(path: string): LoadedConfig {
  const file = readConfigFile(path);
  return { ...file, config: validatedConfigFile(file) };
}

/** The config file as JSON, not yet validated (`pusher start` and `reload` apply their cluster options first). */
export function readConfigFile(path: string): Omit<LoadedConfig, "config"> {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return { path, exists: false, raw: {} };
    throw new CliError("PUSHER_ERR_CONFIG_FILE", `cannot read ${path}: ${(error as Error).message}`);
  }
  try {
    return { path, exists: true, raw: JSON.parse(text) as RawConfig };
  } catch (error) {
    throw new CliError("PUSHER_ERR_CONFIG_FILE", `${path} is not valid JSON: ${(error as Error).message}`);
  }
}

/** readConfigFile's `raw`, validated; an error names the file. */
export function validatedConfigFile(file: Omit<LoadedConfig, "config">): PusherConfig {
  return withFileName(file.path, "", () => validateConfig(file.raw));
}

/** Validates `raw` and writes it (2-space JSON, mode 0600); an invalid config is refused and the file left as it was. */
export function saveConfig(path: string, raw: RawConfig): PusherConfig {
  const config = withFileName(path, " not changed", () => validateConfig(raw));
  mkdirSync(dirname(path), { recursive: true });
  writeFileAtomic(path, JSON.stringify(raw, null, 2) + "\n");
  return config;
}

/** Writes a file with mode 0600 so that readers see the old or the new content, never a partial one. */
export function writeFileAtomic(file: string, data: string | Uint8Array): void {
  const tmp = join(dirname(file), `.${basename(file)}.${randomBytes(6).toString("hex")}.tmp`);
  const fd = openSync(tmp, "wx", 0o600);
  try {
    try {
      writeFileSync(fd, data);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, file);
  } catch (error) {
    rmSync(tmp, { force: true });
    throw error;
  }
}

// A ConfigError says which key is wrong; prefix which file, keeping its class and code.
function withFileName<T>(path: string, suffix: string, validate: () => T): T {
  try {
    return validate();
  } catch (error) {
    if ((error as CliError).code === "PUSHER_ERR_CONFIG")
      (error as Error).message = `${path}${suffix}: ${(error as Error).message}`;
    throw error;
  }
}
