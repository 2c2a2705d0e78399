// Runs one sipp scenario from test/sipp against Kamailio on loopback.
import { spawn } from "node:child_process";
import { join } from "node:path";
import { freeMediaPort, freePort } from "./free-port";
import { nextAddress } from "./topology";

export interface SippRun {
  code: number | null;
  output: string;
  startedAtMs: number;
  endedAtMs: number;
}

export interface SippOptions {
  scenario: string;
  /** Kamailio's SIP port on remoteHost. */
  remotePort: number;
  /** Kamailio's SIP address; default 127.0.0.1 (a cluster node: its own 127.0.1.x). */
  remoteHost?: string;
  /** The address sipp sends from and listens on: a phone's own loopback address; default a new one (topology.ts). */
  localIp?: string;
  /** Values for [key] in the scenario (sipp -key). */
  keys: Record<string, string>;
  transport?: "udp" | "tcp";
  localPort?: number;
  timeoutSeconds?: number;
  /** A fixed Call-ID (sipp -cid_str): lets a phone scenario take the INVITE a caller scenario sends. */
  callId?: string;
  /** How many calls sipp runs before it exits (-m); default 1. */
  calls?: number;
  /** Digest credentials for [authentication] in the scenario (sipp -au/-ap). */
  auth?: { user: string; password: string };
  /** An injection file (-inf): call n takes the values of line n as [field0], [field1], … */
  injectionFile?: string;
  /** New calls per second (-r), and at most this many at once (-l). */
  rate?: number;
  maxConcurrent?: number;
}

const SCENARIOS = join(import.meta.dirname, "..", "sipp");

export async function runSipp(options: SippOptions): Promise<SippRun> {
  const localIp = options.localIp ?? nextAddress();
  const localPort = options.localPort ?? (await freePort(localIp));
  const args = [
    `${options.remoteHost ?? "127.0.0.1"}:${options.remotePort}`,
    "-sf",
    join(SCENARIOS, options.scenario),
    "-i",
    localIp,
    "-p",
    String(localPort),
    "-mp",
    String(await freeMediaPort(localIp)),
    "-t",
    options.transport === "tcp" ? "t1" : "u1",
    "-m",
    String(options.calls ?? 1),
    "-timeout",
    `${options.timeoutSeconds ?? 30}s`,
    "-timeout_error",
    "-nostdin",
  ];
  if (options.callId) args.push("-cid_str", options.callId.replace(/%/g, "%%"));
  if (options.auth) args.push("-au", options.auth.user, "-ap", options.auth.password);
  if (options.injectionFile) args.push("-inf", options.injectionFile);
  if (options.rate) args.push("-r", String(options.rate));
  if (options.maxConcurrent) args.push("-l", String(options.maxConcurrent));
  for (const [name, value] of Object.entries(options.keys)) args.push("-key", name, value);
  const startedAtMs = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn("sipp", args, { stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (chunk) => (output += chunk));
    child.stderr.on("data", (chunk) => (output += chunk));
    child.on("error", reject);
    // "close", not "exit": a scenario's <exec> child may still be writing to sipp's stdout/stderr.
    child.on("close", (code) => resolve({ code, output, startedAtMs, endedAtMs: Date.now() }));
  });
}

/** The Feature-Caps header values register-feature-caps.xml printed (between its two markers), or null without them. */
export function featureCapsIn(output: string): string[] | null {
  const printed = /FEATURE-CAPS ([\s\S]*?)\s*END-FEATURE-CAPS/.exec(output);
  if (!printed) return null;
  return Array.from(printed[1].matchAll(/Feature-Caps:[ \t]*([^\r\n]*)/g), (match) => match[1].trim());
}
