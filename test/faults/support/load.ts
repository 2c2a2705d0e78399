// The load case shared by load.short.test.ts (npm test) and load.long.test.ts (npm run test:faults): calls to
// sleeping phones held until t2 while other phones REGISTER at a steady rate through sipp. Returns what the
// tests assert on and docs/reliability.md reports.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, expect } from "vitest";
import { freePort } from "../../support/free-port";
import { runSipp } from "../../support/sipp";
import { DOMAIN, nextAddress } from "../../support/topology";
import { APP_ID, USER_AGENT, WakeFixture, startWakeFixture } from "../../support/wake-fixture";
import { SentRequest, SipClient, invite, sendAtRate } from "./sip-client";
import {
  callItems,
  currentTransactions,
  helperPid,
  kamailioPids,
  pusherStartPid,
  sharedMemoryUsed,
  waitUntil,
} from "./processes";

export interface LoadOptions {
  /** Callee AORs (each with one device); calls go to them in turn. */
  callees: number;
  calls: number;
  callsPerSecond: number;
  t2Ms: number;
  /** Distinct phones that REGISTER again and again (their records exist before the baseline). */
  registerPhones: number;
  registersPerSecond: number;
  registerSeconds: number;
}

export interface LoadFigures {
  calls: SentRequest[];
  /** Most calls without a final answer at one time, from the callers' side. */
  peakHeld: number;
  registersAnswered: number;
  registerRunCode: number | null;
  /** The latest and the earliest final answer after its INVITE, ms. */
  maxFinalMs: number;
  minFinalMs: number;
  baselineShmBytes: number;
  peakShmBytes: number;
  afterShmBytes: number;
  restarts: { helper: boolean; kamailio: boolean };
  strayAnswers: number;
  leftCallItems: string[];
}

function tokenOf(prefix: string, index: number): string {
  return `${prefix}${index.toString(16).padStart(6, "0")}aabbccddeeff00112233`;
}

/** Where the bulk phones register from: one shared loopback address, one port per group of phones. */
interface PhoneSocket {
  address: string;
  port: number;
}

async function registerAll(
  fixture: WakeFixture,
  users: string[],
  tokens: string[],
  file: string,
  rate: number,
  socket: PhoneSocket,
  calls = users.length,
) {
  const injection = join(fixture.pusher.dir, file);
  writeFileSync(injection, ["SEQUENTIAL", ...users.map((user, i) => `${user};${tokens[i]}`)].join("\n") + "\n");
  return runSipp({
    scenario: "register-many.xml",
    remotePort: fixture.pusher.sipPort,
    // Bulk load shares one address, but keeps the named domain and a Contact user per phone (c-<user>).
    keys: { domain: DOMAIN, app_id: APP_ID, user_agent: USER_AGENT },
    injectionFile: injection,
    localIp: socket.address,
    // One Contact per phone for the whole run: a new port would add a usrloc contact per phone and sipp run.
    localPort: socket.port,
    calls,
    rate,
    maxConcurrent: 200,
    timeoutSeconds: 120,
  });
}

export async function runLoad(fixture: WakeFixture, options: LoadOptions): Promise<LoadFigures> {
  const { apns, pusher } = fixture;
  const callees = Array.from({ length: options.callees }, (_, i) => `loadcallee_${i}`);
  const registering = Array.from({ length: options.registerPhones }, (_, i) => `loadphone_${i}`);
  const calleeTokens = callees.map((_, i) => tokenOf("1c", i));
  const phoneTokens = registering.map((_, i) => tokenOf("2e", i));
  // PushKit tokens APNs issued: every push is accepted, so every call is held until t2.
  for (const token of [...calleeTokens, ...phoneTokens]) apns.addDevice(token, { bundle: APP_ID, kind: "voip" });
  const address = nextAddress();
  const calleeSocket = { address, port: await freePort(address) };
  const phoneSocket = { address, port: await freePort(address) };
  const first = await registerAll(fixture, callees, calleeTokens, "callees.csv", 500, calleeSocket);
  expect(first.code, first.output.slice(-2000)).toBe(0);
  const warm = await registerAll(fixture, registering, phoneTokens, "phones.csv", 500, phoneSocket);
  expect(warm.code, warm.output.slice(-2000)).toBe(0);

  // A warm-up round of the same traffic, smaller, so the baseline includes what the first calls allocate for good.
  const client = await SipClient.open(pusher.sipPort);
  const warmRegisters = registerAll(
    fixture,
    registering,
    phoneTokens,
    "phones.csv",
    options.registersPerSecond,
    phoneSocket,
    options.registersPerSecond,
  );
  const warmCalls = await sendAtRate(client, 10, options.callsPerSecond, (i) =>
    invite(client, callees[i % callees.length], DOMAIN),
  );
  await Promise.all(warmCalls.map((call) => call.final));
  expect((await warmRegisters).code).toBe(0);
  await waitUntil(() => currentTransactions(pusher.rpc) === 0, 20000, "the warm-up transactions to end");
  client.sent.length = 0;
  const baselineShmBytes = sharedMemoryUsed(pusher.rpc);
  if (process.env.FAULTS_DEBUG) console.log(pusher.rpc("core.shmmem"), pusher.rpc("htable.stats"));
  const rootPid = pusherStartPid(pusher);
  const helperBefore = helperPid(pusher);
  const kamailioBefore = kamailioPids(rootPid);
  const outputBefore = pusher.output().length;

  let peakShmBytes = baselineShmBytes;
  const sampler = setInterval(() => {
    try {
      peakShmBytes = Math.max(peakShmBytes, sharedMemoryUsed(pusher.rpc));
    } catch {
      // a sample may fail under load; the next one counts
    }
  }, 1000);
  const registers = registerAll(
    fixture,
    registering,
    phoneTokens,
    "phones.csv",
    options.registersPerSecond,
    phoneSocket,
    options.registersPerSecond * options.registerSeconds,
  );
  const calls = await sendAtRate(client, options.calls, options.callsPerSecond, (i) =>
    invite(client, callees[i % callees.length], DOMAIN),
  );
  await Promise.all(calls.map((call) => call.final));
  const registerRun = await registers;
  clearInterval(sampler);

  // Transactions end 5 s (tm wait timer) after their last ACK.
  await waitUntil(() => currentTransactions(pusher.rpc) === 0, 30000, "tm.stats current to return to 0");
  await new Promise((done) => setTimeout(done, 500));
  const afterShmBytes = sharedMemoryUsed(pusher.rpc);
  if (process.env.FAULTS_DEBUG)
    console.log(pusher.rpc("core.shmmem"), pusher.rpc("htable.stats"), pusher.rpc("tm.stats"));

  const events: [number, number][] = [];
  for (const call of calls) {
    events.push([call.sentAtMs, 1]);
    const final = call.finals()[0];
    if (final) events.push([final.atMs, -1]);
  }
  events.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let held = 0;
  let peakHeld = 0;
  for (const [, change] of events) peakHeld = Math.max(peakHeld, (held += change));

  const figures: LoadFigures = {
    calls,
    peakHeld,
    registersAnswered: Number(/Successful call\s*\|\s*\d+\s*\|\s*(\d+)/.exec(registerRun.output)?.[1] ?? -1),
    registerRunCode: registerRun.code,
    maxFinalMs: Math.max(...calls.map((call) => (call.finals()[0]?.atMs ?? Infinity) - call.sentAtMs)),
    minFinalMs: Math.min(...calls.map((call) => (call.finals()[0]?.atMs ?? Infinity) - call.sentAtMs)),
    baselineShmBytes,
    peakShmBytes,
    afterShmBytes,
    restarts: {
      helper: helperPid(pusher) !== helperBefore || /helper exited/.test(pusher.output().slice(outputBefore)),
      kamailio: JSON.stringify(kamailioPids(rootPid)) !== JSON.stringify(kamailioBefore),
    },
    strayAnswers: client.strayAnswers,
    leftCallItems: callItems(pusher.rpc),
  };
  client.close();
  return figures;
}

/** The assertions both load tests make. */
// Measured: within a few hundred bytes of the baseline. A leak of 1 KiB per call (or per 25 REGISTERs of the
// short variant) exceeds this.
const SHM_SLACK_BYTES = 64 * 1024;

/** A wake fixture (push-first, t2 = options.t2Ms) started before the file's tests and stopped after them. */
export function useLoadFixture(options: LoadOptions): () => WakeFixture {
  let fixture: WakeFixture | undefined;
  beforeAll(async () => {
    fixture = await startWakeFixture({ calls: { strategy: "push-first" }, timers: { pushWaitMs: options.t2Ms } });
  }, 30000);
  afterAll(async () => {
    await fixture?.stop();
  });
  return () => fixture!;
}

/**
 * Every call got exactly one final answer (t2's 480) within t2 + 1 s, every REGISTER its answer, nothing restarted
 * or stayed behind, shared memory is back at its baseline, and every call was pushed.
 */
export function expectLoadSurvived(figures: LoadFigures, options: LoadOptions, fixture: WakeFixture): void {
  expect(figures.calls).toHaveLength(options.calls);
  // Exactly one final answer per call, and it is t2's 480.
  expect(figures.calls.filter((call) => call.finals().length === 1 && call.finals()[0].status === 480)).toHaveLength(
    options.calls,
  );
  expect(figures.strayAnswers).toBe(0);
  expect(figures.maxFinalMs).toBeLessThanOrEqual(options.t2Ms + 1000);
  // Held the whole t2: a push that failed would have answered its caller early.
  expect(figures.minFinalMs).toBeGreaterThanOrEqual(options.t2Ms - 500);
  expect(figures.registerRunCode).toBe(0);
  expect(figures.registersAnswered).toBe(options.registersPerSecond * options.registerSeconds);
  expect(figures.restarts).toEqual({ helper: false, kamailio: false });
  expect(figures.leftCallItems).toEqual([]);
  expect(Math.abs(figures.afterShmBytes - figures.baselineShmBytes)).toBeLessThanOrEqual(SHM_SLACK_BYTES);
  // Every call was pushed, and APNs accepted the push (an unknown token would have been dropped as dead).
  const accepted = new Set(
    fixture.apns.requests
      .filter((request) => request.status === 200)
      .map((request) => (request.body as { "call-id"?: string } | undefined)?.["call-id"]),
  );
  expect(figures.calls.filter((call) => !accepted.has(call.callId)).map((call) => call.callId)).toEqual([]);
  expect(
    fixture.apns.requests
      .filter((request) => request.status !== 200)
      .map((request) => `${request.token} ${request.status}`),
  ).toEqual([]);
}

export function describeLoad(name: string, figures: LoadFigures, options: LoadOptions): string {
  const kib = (bytes: number) => `${Math.round(bytes / 1024)} KiB`;
  return (
    `[faults] ${name}: ${options.calls} calls (peak ${figures.peakHeld} held at once) + ${figures.registersAnswered} REGISTERs ` +
    `(${options.registersPerSecond}/s for ${options.registerSeconds} s): ${options.calls}/${options.calls} got exactly one 480, ` +
    `latest ${figures.maxFinalMs} ms after its INVITE (t2 ${options.t2Ms}); shm real_used baseline ${kib(figures.baselineShmBytes)}, ` +
    `peak ${kib(figures.peakShmBytes)}, after ${kib(figures.afterShmBytes)} (${figures.afterShmBytes - figures.baselineShmBytes >= 0 ? "+" : ""}` +
    `${figures.afterShmBytes - figures.baselineShmBytes} bytes); restarts: none`
  );
}
