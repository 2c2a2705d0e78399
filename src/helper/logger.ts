// The helper's tiny logger: one plain line per event, `<ISO time> <LEVEL> <message>`, on stdout.
// No dependency: Kamailio operators read these lines in journald next to Kamailio's own.
import type { LogLevel } from "../config";

export interface Logger {
  error(message: string): void;
  warn(message: string): void;
  info(message: string): void;
  debug(message: string): void;
}

const SEVERITY: { [level in LogLevel]: number } = { error: 0, warn: 1, info: 2, debug: 3 };

/**
 * A logger printing the lines at `level` or more severe through `write` (stdout by default). `level` may be a
 * function, read at each line: the helper's config reload changes it in place.
 */
export function createLogger(level: LogLevel | (() => LogLevel), write: (line: string) => void = (line) => process.stdout.write(line + "\n")): Logger {
  const currentLevel = typeof level === "function" ? level : () => level;
  const line = (lineLevel: LogLevel) => (message: string) => {
    if (SEVERITY[lineLevel] <= SEVERITY[currentLevel()]) write(`${new Date().toISOString()} ${lineLevel.toUpperCase()} ${message}`);
  };
  return { error: line("error"), warn: line("warn"), info: line("info"), debug: line("debug") };
}

// Below this length the first-6/last-4 mask would reveal most of the token, so nothing of it is shown.
const SHORTEST_MASKABLE_TOKEN = 20;

/** A device token as it may appear in logs: first 6 characters, "…", last 4. Never log a token in full. */
export function maskToken(token: string): string {
  if (token.length < SHORTEST_MASKABLE_TOKEN) return "…";
  return token.slice(0, 6) + "…" + token.slice(-4);
}
