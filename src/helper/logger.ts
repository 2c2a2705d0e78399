// The helper's tiny logger: one plain line per event, `<ISO time> <LEVEL> <message>`, on stdout.
// No dependency: Kamailio operators read these lines in journald next to Kamailio's own. Messages carry fields that
// came from phones (instance and app ids): control characters are escaped (src/log-text.ts), one message one line.
import type { LogLevel } from "../config";
import { escapeControlCharacters } from "../log-text";

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
export function createLogger(
  level: LogLevel | (() => LogLevel),
  write: (line: string) => void = (line) => process.stdout.write(line + "\n"),
): Logger {
  const currentLevel = typeof level === "function" ? level : () => level;
  const line = (lineLevel: LogLevel) => (message: string) => {
    if (SEVERITY[lineLevel] <= SEVERITY[currentLevel()])
      write(`${new Date().toISOString()} ${lineLevel.toUpperCase()} ${escapeControlCharacters(message)}`);
  };
  return { error: line("error"), warn: line("warn"), info: line("info"), debug: line("debug") };
}
