// Benchmarks 1 and 2, from one run of the real product (`pusher start`: Kamailio + helper) with a loopback capture:
//   phones register with push params, then their bindings lapse (`ul.rm`; the device records stay);
//   N callers call N different AORs: each INVITE is held and pushed at once (dispatch latency:
//     INVITE on the wire to Kamailio → push received by the mock APNs);
//   once all N calls are held, the N phones wake and register again (wake latency: REGISTER on the wire to
//     Kamailio → INVITE on the wire from Kamailio to that phone), answer, and the callers ACK (no BYE: see call.xml).
// A warm-up round of the same steps (options.warmUpCalls other phones) runs first and is not measured.
// Capture times are the kernel's; the mock's are performance.timeOrigin + performance.now() in this process.
// Topology as in the tests: AORs <user>@DOMAIN; the phones of a round on one loopback address of their own
// (Contacts c-<user>), registering from one socket and waking on another; the callers on another address.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BenchApns } from "./lib/bench-apns";
import { firstByCallId, LoopbackCapture } from "./lib/capture";
import { TEST_CA_DIR } from "./lib/paths";
import { startPusherRun, type PusherRun } from "./lib/pusher-run";
import {
  checkWakeRound,
  makePhones,
  runSippLoad,
  startSippLoad,
  wakePhonesOf,
  writeInjectionFile,
  type SippLoad,
} from "./lib/sipp-load";
import { distribution, round, type Distribution } from "./lib/stats";
import { BENCH_APP_ID, BENCH_USER_AGENT_REGEX, registerKeys } from "./register-cost";
import { DOMAIN, nextAddress } from "../test/support/topology";
import { waitUntil } from "../test/support/wait-until";

export interface WakeLatencyOptions {
  calls: number;
  /** Calls (and wake-up REGISTERs) started per second. */
  rate: number;
  /** Calls of the same kind run first and not measured. */
  warmUpCalls: number;
}

export interface WakeLatencyResult {
  calls: number;
  rate: number;
  warmUpCalls: number;
  /** Every push the mock got during the run; more than `calls` when the product sends follow-up pushes. */
  pushesReceived: number;
  /** How many pushes had each aps.alert.loc-key. */
  pushAlertKeys: Record<string, number>;
  wakeLatencyMs: Distribution;
  dispatchLatencyMs: Distribution;
}

function countBy(values: string[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const value of values) counts[value] = (counts[value] ?? 0) + 1;
  return counts;
}

export async function benchWakeLatency(
  options: WakeLatencyOptions,
  log: (line: string) => void = () => {},
): Promise<WakeLatencyResult> {
  const dir = mkdtempSync(join(tmpdir(), "pusher-bench-wake-"));
  const runId = `${process.pid}x${Date.now().toString(36)}`;
  const apns = await BenchApns.start({ caDir: TEST_CA_DIR, record: true });
  let pusher: PusherRun | null = null;
  let capture: LoopbackCapture | null = null;
  // In an object: assigned inside wakeRound, read in `finally` (TypeScript does not follow a closure's assignments).
  const sipp: { callers: SippLoad | null } = { callers: null };
  try {
    pusher = await startPusherRun({
      // t1 is not reached (the phones have no binding); t2/t3 far beyond the run so no call ends on a timer.
      timers: { inviteFirstMs: 2000, pushWaitMs: 120_000, afterWakeMs: 60_000 },
      userAgents: [{ name: "MyMobileApp", regex: BENCH_USER_AGENT_REGEX }],
      // Both APNs hosts on the mock: nothing may leave loopback, even if the helper tried the other environment.
      apps: {
        [BENCH_APP_ID]: {
          apple: { certificateFile: join(TEST_CA_DIR, "apple-app.pem"), host: apns.host, sandboxHost: apns.host },
        },
      },
    });
    const running = pusher;
    const keys = registerKeys("600");
    /** `calls` phones register, lapse, are called (held, pushed) and wake; resolves once every call was answered. */
    const wakeRound = async (name: string, calls: number, callIdPattern: string): Promise<void> => {
      const phones = makePhones(`${name}${runId}u`, calls);
      const injectionFile = writeInjectionFile(dir, `${name}.csv`, phones);
      const phonesAddress = nextAddress();
      await runSippLoad({
        scenario: "register.xml",
        remotePort: running.sipPort,
        injectionFile,
        calls,
        rate: 500,
        keys,
        localIp: phonesAddress,
      });
      // The bindings lapse, the device records stay (as in test/integration): each call is held and pushed at once.
      for (const phone of phones) running.rpc("ul.rm", "location", `${phone.user}@${DOMAIN}`);
      const pushesBefore = apns.pushes.length;
      const callers = await startSippLoad({
        scenario: "call.xml",
        remotePort: running.sipPort,
        injectionFile,
        calls,
        rate: options.rate,
        keys,
        callIdPattern,
        localIp: nextAddress(),
      });
      sipp.callers = callers;
      await waitUntil(
        () => apns.pushes.length >= pushesBefore + calls,
        30_000,
        () =>
          `${calls} pushes (got ${apns.pushes.length - pushesBefore}); pusher output:\n${running.output().slice(-3000)}`,
      );
      log(`wake (${name}): ${calls} calls held and pushed`);
      // Woken, the phones come back from a new socket on their address.
      const woken = await wakePhonesOf(callers, {
        scenario: "wake-and-answer.xml",
        remotePort: running.sipPort,
        injectionFile,
        calls,
        rate: options.rate,
        keys,
        callIdPattern,
        timeoutSeconds: 60,
        localIp: phonesAddress,
      });
      sipp.callers = null;
      checkWakeRound(woken);
      log(`wake (${name}): ${calls} phones woke and answered in ${round(woken.wake.elapsedMs, 0)} ms`);
    };

    // A proxy in service is warm: a few calls first, not measured, so that the figures are not those of the first
    // calls after a start (V8's and Duktape's first runs of each code path, the mock's first requests: 5–9 ms).
    await wakeRound("warmup", options.warmUpCalls, `warmup-${runId}-%u@bench`);
    capture = await LoopbackCapture.start(dir, pusher.sipPort);
    // Caller call n and phone call n share the Call-ID: sipp's %u is the call number, in injection-file order.
    await wakeRound("wake", options.calls, `wake-${runId}-%u@bench`);
    const packets = await capture.stop();
    capture = null;

    const sipPort = pusher.sipPort;
    const invitesIn = firstByCallId(packets, (p) => p.method === "INVITE" && p.destinationPort === sipPort);
    const invitesOut = firstByCallId(packets, (p) => p.method === "INVITE" && p.sourcePort === sipPort);
    const registersIn = firstByCallId(packets, (p) => p.method === "REGISTER" && p.destinationPort === sipPort);
    const wakeSamples: number[] = [];
    for (const [callId, register] of registersIn) {
      const invite = invitesOut.get(callId);
      if (invite) wakeSamples.push(invite.timeMs - register.timeMs);
    }
    // The first push per call: later ones for the same call (e.g. an "answered elsewhere" alert) are not dispatch.
    const firstPushes = new Map<string, number>();
    for (const push of apns.pushes)
      if (push.callId?.startsWith(`wake-${runId}-`) && !firstPushes.has(push.callId))
        firstPushes.set(push.callId, push.receivedAtMs);
    const dispatchSamples: number[] = [];
    for (const [callId, receivedAtMs] of firstPushes) {
      const invite = invitesIn.get(callId);
      if (invite) dispatchSamples.push(receivedAtMs - invite.timeMs);
    }
    if (wakeSamples.length !== options.calls || dispatchSamples.length !== options.calls) {
      const unmatched = [...firstPushes.keys()].filter((callId) => !invitesIn.has(callId)).slice(0, 5);
      throw new Error(
        `bench: no captured INVITE for the pushes of ${JSON.stringify(unmatched)}; matched ${wakeSamples.length} wake-ups and ${dispatchSamples.length} pushes of ${options.calls} calls (${packets.length} SIP packets captured)`,
      );
    }
    return {
      calls: options.calls,
      rate: options.rate,
      warmUpCalls: options.warmUpCalls,
      pushesReceived: apns.pushes.length,
      pushAlertKeys: countBy(apns.pushes.map((push) => push.alertKey ?? "(none)")),
      wakeLatencyMs: distribution(wakeSamples),
      dispatchLatencyMs: distribution(dispatchSamples),
    };
  } finally {
    if (capture) await capture.stop().catch(() => []);
    if (sipp.callers && sipp.callers.child.exitCode === null) sipp.callers.child.kill();
    await pusher?.stop();
    await apns.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
