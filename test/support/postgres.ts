// A throwaway PostgreSQL server for the tests that keep device records in PostgreSQL: Debian's own binaries
// (package postgresql, installed by scripts/ensure-deps.sh --test), a cluster made by `initdb` in a temp folder
// owned by the `postgres` user the package creates, on its own free port on 127.0.0.1 and its own socket folder
// (never the system's cluster on 5432). fsync is off: the data is thrown away with the folder.
// Kamailio logs in over TCP with a password (scram-sha-256), as it does with a real database server.
import { execFileSync, spawn } from "node:child_process";
import { chownSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir, userInfo } from "node:os";
import { join } from "node:path";
import { freePort } from "./free-port";

const POSTGRES_LIB = "/usr/lib/postgresql";
/** The role and database the device records go to. */
const ROLE = "pusher";
const PASSWORD = "pusher-test-password";

export interface PostgresServer {
  port: number;
  /** The database's URL for Kamailio (`postgres://pusher:…@127.0.0.1:<port>/pusher`, db_postgres's form). */
  url: string;
  /** Runs SQL as the superuser over the socket; psql's unaligned, tuples-only output. */
  query(sql: string): string;
  /**
   * Runs a psql script as the superuser, streamed to psql's stdin chunk by chunk (a `COPY … FROM STDIN` in it reads
   * its rows from the lines after it, up to `\.`): a million rows never sit in one string. Rejects when psql fails.
   */
  script(chunks: Iterable<string>): Promise<void>;
  /** Stops the server and keeps its data: the database is down (connections refused) until up(). */
  down(): void;
  /** Starts the server again after down(), on the same port, with the same data. */
  up(): void;
  /** SIGSTOP to the server and every backend: the database hangs (connections and queries wait) until thaw(). */
  freeze(): void;
  thaw(): void;
  /** Stops the server and removes its folder. */
  stop(): void;
}

/** Debian's PostgreSQL binaries (the highest version installed). */
function binaries(): string {
  const versions = existsSync(POSTGRES_LIB)
    ? readdirSync(POSTGRES_LIB)
        .filter((name) => /^\d+$/.test(name))
        .sort((a, b) => Number(b) - Number(a))
    : [];
  if (!versions.length)
    throw new Error(`no PostgreSQL under ${POSTGRES_LIB}: run scripts/ensure-deps.sh --test (package postgresql)`);
  return join(POSTGRES_LIB, versions[0], "bin");
}

/** Runs `program` as the postgres user in `cwd` with `chunks` written to its stdin, each after the pipe drained. */
async function streamScript(cwd: string, program: string, args: string[], chunks: Iterable<string>): Promise<void> {
  const child = spawn("runuser", ["-u", "postgres", "--", program, ...args], {
    cwd,
    stdio: ["pipe", "ignore", "pipe"],
  });
  let errors = "";
  child.stderr.on("data", (chunk: Buffer) => (errors = (errors + chunk.toString()).slice(-4000)));
  const exited = new Promise<number | null>((resolve, reject) => {
    child.once("error", reject);
    child.once("close", resolve);
  });
  // psql gone early (an error) closes the pipe: stop writing, its exit code and stderr say why.
  child.stdin.on("error", () => {});
  for (const chunk of chunks) {
    if (child.exitCode !== null || child.stdin.destroyed) break;
    if (!child.stdin.write(chunk))
      await Promise.race([new Promise((resolve) => child.stdin.once("drain", resolve)), exited]);
  }
  child.stdin.end();
  const code = await exited;
  if (code !== 0) throw new Error(`psql exited with ${code}: ${errors.trim()}`);
}

/** Starts a new cluster; stop() removes it with its folder. Needs root (the cluster runs as `postgres`). */
export async function startPostgres(): Promise<PostgresServer> {
  if (userInfo().uid !== 0) throw new Error("startPostgres needs root: the cluster runs as the postgres user");
  const bin = binaries();
  const dir = mkdtempSync(join(tmpdir(), "pusher-postgres-"));
  const owner = Number(execFileSync("id", ["-u", "postgres"], { encoding: "utf8" }).trim());
  const group = Number(execFileSync("id", ["-g", "postgres"], { encoding: "utf8" }).trim());
  chownSync(dir, owner, group);
  const data = join(dir, "data");
  const port = await freePort();
  const asPostgres = (program: string, args: string[]) =>
    execFileSync("runuser", ["-u", "postgres", "--", join(bin, program), ...args], {
      cwd: dir,
      encoding: "utf8",
      stdio: ["ignore", "pipe", "pipe"],
      timeout: 30_000,
    });
  asPostgres("initdb", [
    "-D",
    data,
    "-U",
    "postgres",
    "--auth-local=trust",
    "--auth-host=scram-sha-256",
    "--no-sync",
    "-E",
    "UTF8",
    "--locale=C",
  ]);
  const options = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off`;
  const start = () =>
    asPostgres("pg_ctl", ["-D", data, "-o", options, "-l", join(dir, "server.log"), "-w", "-t", "20", "start"]);
  start();
  // The postmaster (first line of postmaster.pid) and its children: the backends and the server's own processes.
  const serverPids = (): number[] => {
    const postmaster = Number(readFileSync(join(data, "postmaster.pid"), "utf8").split("\n")[0]);
    let children: number[] = [];
    try {
      children = execFileSync("ps", ["-o", "pid=", "--ppid", String(postmaster)], { encoding: "utf8" })
        .split(/\s+/)
        .filter(Boolean)
        .map(Number);
    } catch {
      // ps exits 1 when there is no child
    }
    return [postmaster, ...children];
  };
  const signalServer = (signal: NodeJS.Signals) => {
    for (const pid of serverPids()) process.kill(pid, signal);
  };
  // psql as the superuser over the socket, unaligned and tuples only, stopping at the first error.
  const psql = (database: string) => [
    "-h",
    dir,
    "-p",
    String(port),
    "-U",
    "postgres",
    "-d",
    database,
    "-X",
    "-A",
    "-t",
    "-v",
    "ON_ERROR_STOP=1",
  ];
  const query = (sql: string) => asPostgres("psql", [...psql("postgres"), "-c", sql]);
  const server: PostgresServer = {
    port,
    url: `postgres://${ROLE}:${PASSWORD}@127.0.0.1:${port}/${ROLE}`,
    query: (sql) => asPostgres("psql", [...psql(ROLE), "-c", sql]),
    script: (chunks) => streamScript(dir, join(bin, "psql"), psql(ROLE), chunks),
    down() {
      asPostgres("pg_ctl", ["-D", data, "-m", "fast", "-w", "stop"]);
    },
    up: start,
    freeze: () => signalServer("SIGSTOP"),
    thaw: () => signalServer("SIGCONT"),
    stop() {
      try {
        // Not after down(); a frozen server would not stop: SIGCONT first (harmless when it runs).
        if (existsSync(join(data, "postmaster.pid"))) {
          signalServer("SIGCONT");
          asPostgres("pg_ctl", ["-D", data, "-m", "immediate", "-w", "stop"]);
        }
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
  try {
    query(`CREATE ROLE ${ROLE} LOGIN PASSWORD '${PASSWORD}'`);
    query(`CREATE DATABASE ${ROLE} OWNER ${ROLE}`);
  } catch (error) {
    server.stop();
    throw error;
  }
  return server;
}
