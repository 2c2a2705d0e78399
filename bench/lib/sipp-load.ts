// Runs one bench/sipp scenario as a load generator: many calls from one sipp, users and tokens from an injection
// file, a fixed call rate. Resolves with sipp's exit code (0: every call succeeded) and the tail of its output.
// The topology is the tests' (test/support/topology.ts): users on a named domain (DOMAIN), Kamailio alone on
// 127.0.0.1, each sipp on a loopback address of its own (its phones share it, as bulk load may), each phone's
// Contact user `c-<user>` unlike its AOR user (bench/sipp/*.xml).
import { spawn, type ChildProcess } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { freeMediaPort, freePort } from "../../test/support/free-port";
import { nextAddress } from "../../test/support/topology";
import { SCENARIO_DIR } from "./paths";

export interface Phone {
  /** The AOR's user part; the AOR is <user>@DOMAIN, the Contact user c-<user>. */
  user: string;
  /** 64 hex characters, the length of a real APNs device token. */
  token: string;
  /** The +sip.instance UUID. */
  instance: string;
}

/** `count` phones named `<prefix><n>`, each with a token and instance unique to this prefix. */
export function makePhones(prefix: string, count: number): Phone[] {
  const phones: Phone[] = [];
  const salt = [...prefix]
    .reduce((hash, char) => (hash * 31 + char.charCodeAt(0)) >>> 0, 7)
    .toString(16)
    .padStart(8, "0");
  for (let n = 1; n <= count; n++) {
    const hex = n.toString(16).padStart(12, "0");
    phones.push({
      user: `${prefix}${n}`,
      token: (salt + hex).padEnd(64, "a5"),
      instance: `${salt}-0000-4000-8000-${hex}`,
    });
  }
  return phones;
}

/** Writes a sipp injection file (user;token;instance per line). */
export function writeInjectionFile(dir: string, name: string, phones: Phone[]): string {
  const file = join(dir, name);
  writeFileSync(
    file,
    "SEQUENTIAL\n" + phones.map((phone) => `${phone.user};${phone.token};${phone.instance}`).join("\n") + "\n",
  );
  return file;
}

export interface SippLoadOptions {
  scenario: string;
  remotePort: number;
  /** Kamailio's SIP address; default 127.0.0.1 (a cluster node: its own 127.0.1.x, test/support/cluster.ts). */
  remoteHost?: string;
  injectionFile: string;
  calls: number;
  /** Calls started per second. */
  rate: number;
  keys: Record<string, string>;
  /** sipp -cid_str; %u is the call number, so two sipps with the same pattern pair their calls. */
  callIdPattern?: string;
  timeoutSeconds?: number;
  /** The loopback address sipp sends from and listens on: never Kamailio's 127.0.0.1; default a new one. */
  localIp?: string;
  localPort?: number;
  /** At most this many calls open at once (sipp -l): a closed loop that goes as fast as Kamailio answers. */
  limit?: number;
}

export interface SippLoad {
  child: ChildProcess;
  done: Promise<{ code: number | null; output: string; elapsedMs: number }>;
  localIp: string;
  localPort: number;
}

export async function startSippLoad(options: SippLoadOptions): Promise<SippLoad> {
  const localIp = options.localIp ?? nextAddress();
  const localPort = options.localPort ?? (await freePort(localIp));
  const args = [
    `${options.remoteHost ?? "127.0.0.1"}:${options.remotePort}`,
    "-sf",
    join(SCENARIO_DIR, options.scenario),
    "-inf",
    options.injectionFile,
    "-i",
    localIp,
    "-p",
    String(localPort),
    "-mp",
    String(await freeMediaPort(localIp)),
    "-t",
    "u1",
    "-m",
    String(options.calls),
    "-l",
    String(options.limit ?? options.calls),
    "-r",
    String(options.rate),
    "-rp",
    "1000",
    "-timeout",
    `${options.timeoutSeconds ?? 120}s`,
    "-timeout_error",
    "-nostdin",
    // Statistics screen once at the end only: a busy 2-core machine should spend its time on the benchmark.
    "-f",
    "3600",
  ];
  if (options.callIdPattern) args.push("-cid_str", options.callIdPattern);
  for (const [name, value] of Object.entries(options.keys)) args.push("-key", name, value);
  const started = performance.now();
  const child = spawn("sipp", args, { stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  const keep = (chunk: Buffer) => {
    output += chunk.toString();
    if (output.length > 200_000) output = output.slice(-100_000);
  };
  child.stdout!.on("data", keep);
  child.stderr!.on("data", keep);
  const done = new Promise<{ code: number | null; output: string; elapsedMs: number }>((resolve, reject) => {
    child.on("error", reject);
    child.on("exit", (code) => resolve({ code, output: output.slice(-6000), elapsedMs: performance.now() - started }));
  });
  return { child, done, localIp, localPort };
}

export async function runSippLoad(options: SippLoadOptions): Promise<{ elapsedMs: number }> {
  const load = await startSippLoad(options);
  const result = await load.done;
  if (result.code !== 0) throw new Error(`sipp ${options.scenario} exited with ${result.code}:\n${result.output}`);
  return result;
}

/** The callers' and the woken phones' sipp runs of one wake round. */
export interface WakeRound {
  called: { code: number | null; output: string; elapsedMs: number };
  wake: { code: number | null; output: string; elapsedMs: number };
}

/**
 * The woken phones of a wake round: starts `phones` (wake-and-answer.xml, the callers' Call-IDs) and waits for it
 * and for `callers`. A failed caller leaves its phone waiting: the phones' sipp is stopped too, so the error shows at
 * once. The caller checks the runs (checkWakeRound) once it has forgotten its callers.
 */
export async function wakePhonesOf(callers: SippLoad, phones: SippLoadOptions): Promise<WakeRound> {
  const phonesLoad = await startSippLoad(phones);
  const callersDone = callers.done.then((called) => {
    if (called.code !== 0) phonesLoad.child.kill();
    return called;
  });
  const [wake, called] = await Promise.all([phonesLoad.done, callersDone]);
  return { called, wake };
}

/** Throws with sipp's output, then `context`, when the callers' or the phones' sipp of a wake round failed. */
export function checkWakeRound({ called, wake }: WakeRound, context = ""): void {
  if (called.code !== 0)
    throw new Error(`bench: callers' sipp exited with ${called.code}:\n${called.output}${context}`);
  if (wake.code !== 0) throw new Error(`bench: phones' sipp exited with ${wake.code}:\n${wake.output}${context}`);
}
