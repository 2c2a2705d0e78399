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
  /** The `pusher start` process (signals: SIGHUP reloads, SIGTERM stops). */
  pid: number;
  /** The address SIP listens on (udp and tcp): 127.0.0.1, or a cluster node's own (startPusher's `host`). */
  sipHost: string;
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
  /** Kills every Kamailio process of this run at once with SIGKILL, as a crash would; resolves when `pusher start` has exited. */
  crashKamailio(): Promise<void>;
  /** Runs `pusher start` again with the same config, state directory and ports (after stop or crashKamailio). */
  restart(): Promise<PusherProcess>;
  stop(): Promise<void>;
}

/** Every descendant of `pid` (children first found, then theirs), from `ps`. */
function descendants(pid: number): number[] {
  const found: number[] = [];
  const queue = [pid];
  while (queue.length) {
    const parent = queue.shift()!;
    let out = "";
    try {
      out = execFileSync("ps", ["-o", "pid=", "--ppid", String(parent)], { encoding: "utf8" });
    } catch {
      continue; // ps exits 1 when there is no child
    }
    for (const word of out.split(/\s+/)) {
      if (!word) continue;
      found.push(Number(word));
      queue.push(Number(word));
    }
  }
  return found;
}

/** SIGKILL to every process of the group `pusher start` leads (it, Kamailio, the helper); gone already is fine. */
function killProcessGroup(leader: number): void {
  try {
    process.kill(-leader, "SIGKILL");
  } catch {
    // ESRCH: the whole group has exited
  }
}

export interface StartOptions {
  /** The loopback address SIP listens on (udp and tcp, a free port there); default 127.0.0.1. Cluster nodes sit on
   * 127.0.1.x (test/support/cluster.ts). The helper link and metrics stay on 127.0.0.1. */
  host?: string;
}

export async function startPusher(config: Record<string, unknown>, options: StartOptions = {}): Promise<PusherProcess> {
  const dir = mkdtempSync(join(tmpdir(), "pusher-it-"));
  const sipHost = options.host ?? "127.0.0.1";
  const sipPort = await freePort(sipHost);
  const linkPort = await freePort();
  const configPath = join(dir, "pusher.json");
  const full = {
    // Tests run without digest auth unless they ask for it (sip: {auth: true}).
    link: { port: linkPort },
    // Tests run side by side: each helper's /metrics gets its own port.
    metrics: { port: await freePort() },
    stateDir: join(dir, "state"),
    ...config,
    sip: {
      listen: [`udp:${sipHost}:${sipPort}`, `tcp:${sipHost}:${sipPort}`],
      auth: false,
      ...(config.sip as object | undefined),
    },
  };
  writeFileSync(configPath, JSON.stringify(full, null, 2));
  return runPusher(dir, configPath, sipHost, sipPort, linkPort);
}

async function runPusher(
  dir: string,
  configPath: string,
  sipHost: string,
  sipPort: number,
  linkPort: number,
): Promise<PusherProcess> {
  // Its own process group (detached), so a start that fails or times out can be killed whole: `pusher start`,
  // its Kamailio and its helper, instead of leaving them running on the test's ports.
  const child: ChildProcess = spawn(process.execPath, [join(ROOT, "dist", "cli.js"), "--config", configPath, "start"], {
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
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
    pid: child.pid!,
    sipHost,
    sipPort,
    linkPort,
    dir,
    configPath,
    output: () => output,
    waitFor(pattern, timeoutMs = 15000) {
      const match = output.match(pattern);
      if (match) return Promise.resolve(match[0]);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`timed out waiting for ${pattern}; output:\n${output.slice(-4000)}`)),
          timeoutMs,
        );
        waiters.push({ pattern, done: (line) => (clearTimeout(timer), resolve(line)) });
      });
    },
    rpc(...command) {
      // A timeout, not a hang: an RPC that cannot finish (htable.dump waits on a slot lock left held) fails the test.
      return execFileSync("kamcmd", ["-s", `unix:${join(dir, "state", "kamailio.ctl")}`, ...command], {
        encoding: "utf8",
        timeout: 10_000,
      });
    },
    async crashKamailio() {
      const kamailio = descendants(child.pid!).filter((pid) => {
        try {
          return execFileSync("ps", ["-o", "comm=", "-p", String(pid)], { encoding: "utf8" }).trim() === "kamailio";
        } catch {
          return false;
        }
      });
      if (!kamailio.length) throw new Error("no kamailio process found under pusher start");
      for (const pid of kamailio) process.kill(pid, "SIGKILL");
      await exited;
    },
    restart() {
      return runPusher(dir, configPath, sipHost, sipPort, linkPort);
    },
    async stop() {
      if (child.exitCode === null) child.kill("SIGTERM");
      await exited;
    },
  };
  try {
    await Promise.race([
      process_.waitFor(/helper connected/),
      exited.then(() => {
        throw new Error(`pusher start exited early:\n${output}`);
      }),
    ]);
  } catch (error) {
    killProcessGroup(child.pid!);
    await Promise.race([exited, new Promise((done) => setTimeout(done, 5000))]);
    throw error;
  }
  return process_;
}
