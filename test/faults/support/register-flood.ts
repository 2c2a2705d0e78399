// The REGISTER flood shared by register-limits.test.ts (npm test, 5 000 REGISTERs) and register-limits.long.test.ts
// (npm run test:faults, 100 000): one subscriber's client invents a new User-Agent and a new instance id for every
// REGISTER, as a hostile or broken client would. Half the REGISTERs carry RFC 8599 params (no User-Agent rule
// needed: each stores a device with its own token), half Kazoo-style params from a User-Agent no rule matches
// (each logs "no User-Agent rule matches it" once, behind a "log once" mark). Kamailio's shared memory must end
// where it started: devices.maxPerAor records per AOR, a token index entry per record, marks gone after their
// lifetime (knob PUSHER_LOG_MARK_SECONDS, short here).
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, expect } from "vitest";
import { DOMAIN } from "../../support/topology";
import { APP_ID, WakeFixture, startWakeFixture } from "../../support/wake-fixture";
import { waitUntil } from "../../support/wait-until";
import { sharedMemoryUsed } from "./processes";
import { SipClient, register } from "./sip-client";

/** The marks' lifetime for these tests; htable's timer (every 20 s) then removes them. */
export const LOG_MARK_SECONDS = 2;
const TEAM_ID = "ABCDE12345";
/** REGISTERs in flight at once: as fast as Kamailio answers, without piling up retransmissions. */
const IN_FLIGHT = 50;
// Measured: after the flood, within a few hundred bytes of the baseline (the records hold new ids of the same lengths).
const SHM_SLACK_BYTES = 64 * 1024;
/** The most "log once" marks there can be (src/plugin/shared-state.ts LOG_MARK_SLOTS). */
const MAX_LOG_MARKS = 1024;

/** A fixture with the marks' lifetime shortened, started before the file's tests and stopped after them. */
export function useFloodFixture(): () => WakeFixture {
  let fixture: WakeFixture | undefined;
  beforeAll(async () => {
    fixture = await startWakeFixture({
      calls: { strategy: "push-first" },
      kamailio: { defines: { PUSHER_LOG_MARK_SECONDS: LOG_MARK_SECONDS } },
    });
  }, 30000);
  afterAll(async () => {
    await fixture?.stop();
  });
  return () => fixture!;
}

function hex(bytes: number): string {
  return randomBytes(bytes).toString("hex");
}

/** Every id and token has the same length as the ones it replaces, so records replacing records take the same memory. */
function randomUserAgent(): string {
  return `Flood/${hex(8)}`;
}

/** RFC 8599 params of a PushKit binding (RFC 8599 needs no User-Agent rule); new instance id and token by default. */
export function rfc8599Params(token = hex(32), instance = hex(16)): string {
  return `;+sip.instance="<urn:uuid:${instance}>";pn-provider=apns;pn-param=${TEAM_ID}.${APP_ID}.voip;pn-prid=${token}`;
}

/** Kazoo-style params from a User-Agent no rule matches: ignored, logged once per User-Agent. */
function unmatchedParams(): string {
  return `;app-id=${APP_ID};pn-tok=${hex(32)};pn-type=apple`;
}

export function floodAors(count: number): string[] {
  return Array.from({ length: count }, (_, i) => `flood_${i}`);
}

/**
 * Sends `count` REGISTERs for `users` in turn, IN_FLIGHT at a time, every one with a new User-Agent and (for the
 * RFC 8599 half, or all with `rfc8599Only`) a new instance id and token. Resolves with the statuses answered.
 */
export async function flood(
  client: SipClient,
  users: string[],
  count: number,
  rfc8599Only = false,
): Promise<Map<number, number>> {
  const statuses = new Map<number, number>();
  let next = 0;
  const worker = async () => {
    while (next < count) {
      const i = next++;
      const rfc8599 = rfc8599Only || i % 2 === 0;
      const raw = register(client, users[i % users.length], DOMAIN, rfc8599 ? rfc8599Params() : unmatchedParams(), {
        userAgent: randomUserAgent(),
      });
      const status = (await client.send(raw, { timeoutMs: 20000 }).final)?.status ?? 0;
      statuses.set(status, (statuses.get(status) ?? 0) + 1);
    }
  };
  await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
  return statuses;
}

/** Items of one htable, from `kamcmd htable.stats`. */
export function htableItems(rpc: (...command: string[]) => string, table: string): number {
  const block =
    rpc("htable.stats")
      .split(/\{/)
      .find((part) => new RegExp(`name:\\s*${table}\\b`).test(part)) ?? "";
  return Number(/\ball:\s*(\d+)/.exec(block)?.[1] ?? NaN);
}

/** Devices of each AOR in pusher_devices (its item: marks, then the JSON object instance → record); 0 without one. */
export function devicesPerAor(rpc: (...command: string[]) => string, aors: string[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const aor of aors) {
    let value = "";
    try {
      value = /value: (.*)/.exec(rpc("htable.get", "pusher_devices", aor))?.[1] ?? "";
    } catch {
      // htable.get fails for a missing item
    }
    counts.set(aor, value ? Object.keys(JSON.parse(value.slice(value.indexOf("{")))).length : 0);
  }
  return counts;
}

/**
 * usrloc's bindings of `users` removed (ul.rm): each new instance id made one, which the registrar keeps until it
 * expires; they are the registrar's memory, not the plugin's, and would hide what this measures. With its DB
 * (WITH_USRLOCDB, write-back) usrloc frees a binding it already wrote only when it next syncs: ul.flush does now.
 */
export function dropBindingsOf(rpc: (...command: string[]) => string, users: string[]): void {
  for (const user of users) {
    try {
      rpc("ul.rm", "location", `${user}@${DOMAIN}`);
    } catch {
      // no binding left
    }
  }
  rpc("ul.flush");
}

/** Waits until htable's timer removed every log mark (PUSHER_LOG_MARK_SECONDS, then up to its 20 s interval). */
export async function marksExpired(rpc: (...command: string[]) => string): Promise<void> {
  await waitUntil(
    () => htableItems(rpc, "pusher_log_marks") === 0,
    40000,
    () =>
      `the log marks to expire; some left:\n${[...rpc("htable.dump", "pusher_log_marks").matchAll(/name: (\S+)/g)]
        .slice(0, 3)
        .map((m) => rpc("htable.get", "pusher_log_marks", m[1]))
        .join("\n")}`,
    200,
  );
}

export interface FloodFigures {
  statuses: Map<number, number>;
  devicesPerAor: Map<string, number>;
  tokenIndexItems: number;
  peakMarks: number;
  baselineShmBytes: number;
  afterShmBytes: number;
}

/**
 * The whole case: every AOR first gets devices.maxPerAor devices (the plugin's steady state, part of the baseline),
 * then `count` REGISTERs flood them; figures are read right after the flood, and shared memory once the marks
 * expired (usrloc's bindings of the flood removed both times).
 */
export async function runFlood(
  fixture: WakeFixture,
  aorCount: number,
  count: number,
  maxPerAor: number,
): Promise<FloodFigures> {
  const { pusher } = fixture;
  const users = floodAors(aorCount);
  const client = await SipClient.open(pusher.sipPort);
  try {
    await flood(client, users, aorCount * maxPerAor, true);
    dropBindingsOf(pusher.rpc, users);
    await marksExpired(pusher.rpc);
    const baselineShmBytes = sharedMemoryUsed(pusher.rpc);
    const statuses = await flood(client, users, count);
    const figures = {
      devicesPerAor: devicesPerAor(
        pusher.rpc,
        users.map((user) => `${user}@${DOMAIN}`),
      ),
      tokenIndexItems: htableItems(pusher.rpc, "pusher_tokens"),
      peakMarks: htableItems(pusher.rpc, "pusher_log_marks"),
    };
    dropBindingsOf(pusher.rpc, users);
    await marksExpired(pusher.rpc);
    return { statuses, ...figures, baselineShmBytes, afterShmBytes: sharedMemoryUsed(pusher.rpc) };
  } finally {
    client.close();
  }
}

export function describeFlood(name: string, figures: FloodFigures, count: number): string {
  return (
    `[faults] ${name}: ${count} REGISTERs with new User-Agents and instance ids, answers ${JSON.stringify(Object.fromEntries(figures.statuses))}; ` +
    `devices per AOR at most ${Math.max(...figures.devicesPerAor.values())}, ${figures.tokenIndexItems} token index entries, ${figures.peakMarks} log marks; ` +
    `shm real_used baseline ${figures.baselineShmBytes}, after the marks' lifetime ${figures.afterShmBytes} (${figures.afterShmBytes - figures.baselineShmBytes >= 0 ? "+" : ""}${figures.afterShmBytes - figures.baselineShmBytes} bytes)`
  );
}

/**
 * What both flood tests assert: every REGISTER answered 200, each AOR at devices.maxPerAor, one token index entry per
 * record (the flood's AORs are the only ones so far), never more marks than their slots, and shared memory back within
 * 64 KiB of its baseline.
 */
export function expectFloodBounded(figures: FloodFigures, aors: number, maxPerAor: number): void {
  expect([...figures.statuses.keys()]).toEqual([200]);
  expect([...figures.devicesPerAor.values()].filter((count) => count !== maxPerAor)).toEqual([]);
  expect(figures.devicesPerAor.size).toBe(aors);
  expect(figures.tokenIndexItems).toBe(aors * maxPerAor);
  expect(figures.peakMarks).toBeLessThanOrEqual(MAX_LOG_MARKS);
  expect(Math.abs(figures.afterShmBytes - figures.baselineShmBytes)).toBeLessThanOrEqual(SHM_SLACK_BYTES);
}
