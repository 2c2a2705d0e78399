// Runs the real product for integration tests: `node dist/cli.js start` (Kamailio with kamailio/kamailio.cfg
// plus the helper), on free loopback ports, with a config written to a temp dir.
import { ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execFileSync } from "node:child_process";
import { freePort } from "./free-port";

export const ROOT = join(import.meta.dirname, "..", "..");
export const TEST_CA_DIR = join(ROOT, "build", "test-ca");

export interface PusherProcess {
  sipPort: number;
  linkPort: number;
  dir: string;
  configPath: string;
  /** Everything both processes printed so far. */
  output(): string;
  /** Resolves when a line matching `pattern` has been printed (also if it already was). */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<string>;
  /** Runs a kamcmd RPC against this Kamailio. */
  rpc(...command: string[]): string;
  stop(): Promise<void>;
}

export async function startPusher(config: Record<string, unknown>): Promise<PusherProcess> {
  const dir = mkdtempSync(join(tmpdir(), "pusher-it-"));
  const sipPort = await freePort();
  const linkPort = await freePort();
  const configPath = join(dir, "pusher.json");
  const full = {
    sip: { listen: [`udp:127.0.0.1:${sipPort}`, `tcp:127.0.0.1:${sipPort}`], auth: false },
    link: { port: linkPort },
    stateDir: join(dir, "state"),
    ...config,
  };
  writeFileSync(configPath, JSON.stringify(full, null, 2));
  const child: ChildProcess = spawn(process.execPath, [join(ROOT, "dist", "cli.js"), "--config", configPath, "start"], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  const waiters: { pattern: RegExp; done: (line: string) => void }[] = [];
  const onData = (chunk: Buffer): void => {
    output += chunk.toString();
    for (const waiter of [...waiters]) {
      const match = output.match(waiter.pattern);
      if (match) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.done(match[0]);
      }
    }
  };
  child.stdout!.on("data", onData);
  child.stderr!.on("data", onData);
  const exited = new Promise<void>((done) => child.on("exit", () => done()));

  const process_: PusherProcess = {
    sipPort,
    linkPort,
    dir,
    configPath,
    output: () => output,
    waitFor(pattern, timeoutMs = 15000) {
      const match = output.match(pattern);
      if (match) return Promise.resolve(match[0]);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`timed out waiting for ${pattern}; output:\n${output.slice(-4000)}`)), timeoutMs);
        waiters.push({ pattern, done: (line) => (clearTimeout(timer), resolve(line)) });
      });
    },
    rpc(...command) {
      return execFileSync("kamcmd", ["-s", `unix:${join(dir, "state", "kamailio.ctl")}`, ...command], { encoding: "utf8" });
    },
    async stop() {
      if (child.exitCode === null) child.kill("SIGTERM");
      await exited;
    },
  };
  await Promise.race([
    process_.waitFor(/helper connected/),
    exited.then(() => {
      throw new Error(`pusher start exited early:\n${output}`);
    }),
  ]);
  return process_;
}
