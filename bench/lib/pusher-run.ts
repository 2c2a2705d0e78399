// The real product for benchmarks 1 and 2: `node dist/cli.js start` (Kamailio + helper) on free loopback ports,
// as test/support/pusher-process.ts runs it, but in its own process group so that a failed start-up or the end
// of the run stops Kamailio and the helper too (the bench must not leave Kamailios behind on a shared machine).
import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { validateConfig } from "../../src/config";
import { runtimePaths } from "../../src/cli/kamailio-runtime";
import { freePort } from "../../test/support/free-port";
import { ROOT } from "./paths";

export interface PusherRun {
  /** The `pusher start` process: Kamailio and the helper run under it. */
  pid: number;
  sipPort: number;
  /** Runs a kamcmd RPC against this Kamailio. */
  rpc(...command: string[]): string;
  output(): string;
  stop(): Promise<void>;
  /** Where `pusher start` keeps its files (devices.sqlite, …). */
  stateDir: string;
  /** `pusher start` again with the same config, state and ports, after stop(). */
  restart(): Promise<PusherRun>;
}

export async function startPusherRun(config: Record<string, unknown>): Promise<PusherRun> {
  const dir = mkdtempSync(join(tmpdir(), "pusher-bench-run-"));
  const sipPort = await freePort();
  const configPath = join(dir, "pusher.json");
  const full = {
    sip: { listen: [`udp:127.0.0.1:${sipPort}`, `tcp:127.0.0.1:${sipPort}`], auth: false },
    link: { port: await freePort() },
    stateDir: join(dir, "state"),
    ...config,
  };
  writeFileSync(configPath, JSON.stringify(full, null, 2));
  return runPusher(configPath, full, sipPort);
}

async function runPusher(
  configPath: string,
  full: Record<string, unknown> & { stateDir: string },
  sipPort: number,
): Promise<PusherRun> {
  const child = spawn(process.execPath, [join(ROOT, "dist", "cli.js"), "--config", configPath, "start"], {
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
  let output = "";
  const keep = (chunk: Buffer) => {
    output += chunk.toString();
    if (output.length > 1_000_000) output = output.slice(-500_000);
  };
  child.stdout!.on("data", keep);
  child.stderr!.on("data", keep);
  const exited = new Promise<void>((resolve) => child.on("exit", () => resolve()));
  const stop = async () => {
    if (child.exitCode === null) child.kill("SIGTERM");
    const timer = setTimeout(() => {
      // `pusher start` did not stop Kamailio in time: end the whole group it started.
      try {
        process.kill(-child.pid!, "SIGKILL");
      } catch {
        // already gone
      }
    }, 5000);
    await exited;
    clearTimeout(timer);
    try {
      process.kill(-child.pid!, "SIGKILL");
    } catch {
      // the group is gone: nothing left behind
    }
  };
  const deadline = Date.now() + 20_000;
  while (!/helper connected/.test(output)) {
    if (child.exitCode !== null || Date.now() > deadline) {
      await stop();
      throw new Error(`bench: pusher start did not connect its helper within 20 s; output:\n${output.slice(-4000)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const { ctlSocket } = runtimePaths(configPath, validateConfig(full));
  const rpc = (...command: string[]) =>
    execFileSync("kamcmd", ["-s", `unix:${ctlSocket}`, ...command], {
      encoding: "utf8",
      stdio: "pipe",
      timeout: 10_000,
    });
  return {
    pid: child.pid!,
    sipPort,
    rpc,
    output: () => output,
    stop,
    stateDir: full.stateDir,
    restart: () => runPusher(configPath, full, sipPort),
  };
}
