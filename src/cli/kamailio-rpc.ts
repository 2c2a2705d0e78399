// Talks to a running Kamailio through its ctl socket with kamcmd (shipped with the kamailio package).

import { execFile } from "node:child_process";
import { CliError } from "./config-file";

const RPC_TIMEOUT_MS = 5000;

/** Runs one RPC command (e.g. ["htable.dump", "pusher_devices"]) and resolves with kamcmd's output. */
export function callKamailio(ctlSocket: string, command: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      "kamcmd",
      ["-s", `unix:${ctlSocket}`, ...command],
      { timeout: RPC_TIMEOUT_MS },
      (error, stdout, stderr) => {
        if (error)
          reject(new CliError("PUSHER_ERR_RPC", `kamcmd ${command[0]} failed: ${(stderr || error.message).trim()}`));
        else resolve(stdout);
      },
    );
  });
}
