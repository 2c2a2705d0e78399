// The link secret file (src/link-auth.ts) on disk, for `pusher start` (which writes it) and the helper (which reads
// it). Kamailio's plugin reads the same file through KSR.corex.file_read (PUSHER_LINK_SECRET_FILE). The secret is
// never passed on a command line, where `ps` would show it: only the file's path is.
import { randomBytes } from "node:crypto";
import { chmodSync, closeSync, openSync, readFileSync, statSync, writeSync } from "node:fs";
import { linkSecretOf } from "./link-auth";

/** The file's name in the state directory (`pusher start`; the helper's default). */
export const LINK_SECRET_FILE_NAME = "link.secret";

/** The secret in `file`, or why it cannot be used (missing, unreadable, readable by group or others, too short). */
export function readLinkSecretFile(file: string): { secret: string } | { problem: string } {
  let mode: number;
  let text: string;
  try {
    mode = statSync(file).mode;
    text = readFileSync(file, "utf8");
  } catch (error) {
    return { problem: `cannot be read (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})` };
  }
  // As ssh does for its keys: a secret others can read is no secret.
  if ((mode & 0o077) !== 0)
    return { problem: `is readable by group or others (mode 0${(mode & 0o777).toString(8)}): chmod 600 it` };
  return linkSecretOf(text);
}

/** Writes a new random secret (32 bytes as hex, mode 0600) unless `file` exists; an existing file is made 0600. */
export function ensureLinkSecretFile(file: string): void {
  let fd: number;
  try {
    // O_EXCL: never replace a secret the running helper or Kamailio may share; created 0600 from the start.
    fd = openSync(file, "wx", 0o600);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
    chmodSync(file, 0o600);
    return;
  }
  try {
    writeSync(fd, randomBytes(32).toString("hex") + "\n");
  } finally {
    closeSync(fd);
  }
}
