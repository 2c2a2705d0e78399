// Benchmark 9, a registration storm after a restart: `pusher start` restarted with N phones' device records on disk
// (seeded straight into sqlite, bench/lib/seeded-restart.ts; their bindings are gone), and all N re-register within
// `seconds` at a steady rate (sipp, bench/sipp/register.xml, from one address), while the records still load. During
// the storm 100 calls go to other sleeping phones (held and pushed), which then wake and register: the wake and
// dispatch latencies as benchmarks 1 and 2 measure them. A loopback capture of Kamailio's SIP port gives the kernel's
// timestamps: each storm REGISTER's response time (REGISTER in → 200 out), which got none (lost), the wake latency
// (wake-up REGISTER in → INVITE out to that phone); dispatch is INVITE in → push at the mock APNs. CPU per REGISTER is
// Kamailio's CPU over the storm, less what the worker loading the records spent meanwhile, over N.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BenchApns } from "./lib/bench-apns";
import { firstByCallId, LoopbackCapture } from "./lib/capture";
import { cpuMsOf, kamailioCpuMs } from "./lib/kamailio-direct";
import { TEST_CA_DIR } from "./lib/paths";
import { loaderPid, restartWithSeededDevices, type SeedGroup } from "./lib/seeded-restart";
import { startSippLoad, writeInjectionFile, type SippLoad } from "./lib/sipp-load";
import { distribution, round, type Distribution } from "./lib/stats";
import { registerKeys } from "./register-cost";
import { seededPhone } from "../test/support/seed-devices";
import { nextAddress } from "../test/support/topology";

export interface RegistrationStormOptions {
  /** Phones whose records are on disk and which all register again. */
  phones: number;
  /** …within this many seconds, at phones / seconds REGISTERs per second. */
  seconds: number;
  /** Calls to other sleeping phones during the storm (then those phones wake). */
  calls: number;
  /** Calls (and wake-up REGISTERs) started per second. */
  callRate: number;
  sharedMemoryMb: number;
  /** PUSHER_DEVICES_HTABLE_SIZE and PUSHER_TOKENS_HTABLE_SIZE. */
  htableSize: number;
}

export interface RegistrationStormResult {
  phones: number;
  seconds: number;
  /** REGISTERs per second sent. */
  rate: number;
  registersAnswered: number;
  /** Storm REGISTERs that got no 200 at all (retransmissions included). */
  registersLost: number;
  /** Storm REGISTERs sent again by sipp (no answer within its 500 ms timer). */
  registerRetransmissions: number;
  /** REGISTER on the wire to Kamailio → its 200 on the wire (first of each). */
  registerResponseMs: Distribution;
  /** The same for the REGISTERs that came while the records loaded, and after. */
  registerResponseWhileLoadingMs: Distribution;
  registerResponseAfterLoadMs: Distribution;
  /** Kamailio CPU over the storm, less the loading worker's meanwhile, per storm REGISTER. */
  cpuUsPerRegister: number;
  /** Storm REGISTERs whose device record the plugin wrote again (`device stored` in the log; the log kept is its last
   * 500 KB at most): 0 when each found its phone's record unchanged, as known phones should. */
  recordsStored: number;
  /** `pusher start` spawned → every record loaded; the storm began when it was up. */
  loadSeconds: number;
  /** The storm's start → every record loaded. */
  loadedIntoStormSeconds: number;
  calls: number;
  callRate: number;
  /** Calls whose push the mock got (INVITE matched in the capture): the dispatch samples. */
  callsPushed: number;
  /** Calls delivered to their woken phone (wake-up REGISTER and INVITE out matched): the wake samples. */
  callsWoken: number;
  wakeLatencyMs: Distribution;
  dispatchLatencyMs: Distribution;
}

const LOADED = /device records loaded from the database: \d+ devices of \d+ AORs/;

export async function benchRegistrationStorm(
  options: RegistrationStormOptions,
  log: (line: string) => void = () => {},
): Promise<RegistrationStormResult> {
  const runId = `${process.pid}x${Date.now().toString(36)}`;
  const storm: SeedGroup = { prefix: "storm", count: options.phones };
  const sleeping: SeedGroup = { prefix: "sleep", count: options.calls };
  const dir = mkdtempSync(join(tmpdir(), "pusher-bench-storm-"));
  const apns = await BenchApns.start({ caDir: TEST_CA_DIR, record: true });
  let capture: LoopbackCapture | null = null;
  const loads: SippLoad[] = [];
  let cleanUp = () => {};
  let stop = async () => {};
  let finished = false;
  try {
    const restart = await restartWithSeededDevices(
      // t2/t3 far beyond the run: no call ends on a timer.
      {
        groups: [storm, sleeping],
        sharedMemoryMb: options.sharedMemoryMb,
        htableSize: options.htableSize,
        apnsHost: apns.host,
        timers: { inviteFirstMs: 2000, pushWaitMs: 120_000, afterWakeMs: 60_000 },
      },
      log,
    );
    const { pusher, restartedAt } = restart;
    cleanUp = restart.cleanUp;
    stop = () => pusher.stop();
    const sipPort = pusher.sipPort;
    const stormPhones = Array.from({ length: storm.count }, (_, i) => seededPhone(storm.prefix, i + 1));
    const sleepingPhones = Array.from({ length: sleeping.count }, (_, i) => seededPhone(sleeping.prefix, i + 1));
    const stormFile = writeInjectionFile(dir, "storm.csv", stormPhones);
    const sleepingFile = writeInjectionFile(dir, "sleeping.csv", sleepingPhones);
    capture = await LoopbackCapture.start(dir, sipPort);

    const loader = await loaderPid(pusher);
    const loadedBefore = LOADED.test(pusher.output());
    const cpuBefore = kamailioCpuMs(pusher.pid);
    const loaderCpuBefore = cpuMsOf(loader);
    const stormAddress = nextAddress();
    const rate = options.phones / options.seconds;
    const stormStartedAt = performance.now();
    const stormLoad = await startSippLoad({
      scenario: "register.xml",
      remotePort: sipPort,
      injectionFile: stormFile,
      calls: options.phones,
      rate,
      keys: registerKeys("3600"),
      localIp: stormAddress,
      timeoutSeconds: options.seconds + 60,
    });
    loads.push(stormLoad);
    log(
      `storm: ${options.phones} REGISTERs at ${round(rate, 0)}/s from ${stormAddress}${loadedBefore ? " (records loaded already)" : ", the records still loading"}`,
    );
    // The load's end, and the loading worker's CPU by then (it serves no SIP before: route PUSHER_WORKER_INIT).
    const loaded = (async () => {
      while (!LOADED.test(pusher.output()) && !finished) await new Promise((resolve) => setTimeout(resolve, 20));
      return { at: performance.now(), loaderCpuMs: cpuMsOf(loader) };
    })();

    // The calls begin a tenth into the storm; the phones wake once every call is pushed.
    await new Promise((resolve) => setTimeout(resolve, (options.seconds * 1000) / 10));
    const callIdPattern = `storm-${runId}-%u@bench`;
    const phonesAddress = nextAddress();
    const callers = await startSippLoad({
      scenario: "call.xml",
      remotePort: sipPort,
      injectionFile: sleepingFile,
      calls: options.calls,
      rate: options.callRate,
      keys: registerKeys("600"),
      callIdPattern,
      localIp: nextAddress(),
    });
    loads.push(callers);
    const callPushes = () => apns.pushes.filter((push) => push.callId?.startsWith(`storm-${runId}-`)).length;
    // A proxy the storm overloads may hold some calls late or never: what came is measured, the rest counted.
    const pushDeadline = performance.now() + options.seconds * 1000 + 30_000;
    while (callPushes() < options.calls && performance.now() < pushDeadline)
      await new Promise((resolve) => setTimeout(resolve, 20));
    const phones = await startSippLoad({
      scenario: "wake-and-answer.xml",
      remotePort: sipPort,
      injectionFile: sleepingFile,
      calls: options.calls,
      rate: options.callRate,
      keys: registerKeys("600"),
      callIdPattern,
      timeoutSeconds: 60,
      localIp: phonesAddress,
    });
    loads.push(phones);
    const [woken, called] = await Promise.all([phones.done, callers.done]);
    if (called.code !== 0 || woken.code !== 0)
      log(
        `storm: callers' sipp exited with ${called.code}, phones' with ${woken.code}: not every call was pushed, or woken, in time`,
      );
    log(`storm: ${callPushes()} of ${options.calls} calls pushed during the storm`);
    const stormDone = await stormLoad.done;
    const cpuAfter = kamailioCpuMs(pusher.pid);
    // Until its load ends the loading worker serves no SIP: its CPU to the storm's end, at most, is the load's.
    const loaderCpuAfter = cpuMsOf(loader);
    const loadDeadline = performance.now() + 300_000;
    while (!LOADED.test(pusher.output()) && performance.now() < loadDeadline)
      await new Promise((resolve) => setTimeout(resolve, 100));
    finished = true;
    const load = loadedBefore ? { at: restart.readyAt, loaderCpuMs: loaderCpuBefore } : await loaded;
    if (!LOADED.test(pusher.output())) load.at = NaN;
    log(
      `storm: sipp done in ${round(stormDone.elapsedMs / 1000, 1)} s (exit ${stormDone.code}); records loaded ${round((load.at - restartedAt) / 1000, 1)} s after the restart`,
    );
    const packets = await capture.stop();
    capture = null;

    const stormIn = packets.filter(
      (p) => p.method === "REGISTER" && p.destinationPort === sipPort && p.sourceHost === stormAddress,
    );
    const registersIn = firstByCallId(stormIn, () => true);
    const answers = firstByCallId(
      packets,
      (p) => p.status === 200 && p.sourcePort === sipPort && p.destinationHost === stormAddress,
    );
    const responseSamples: number[] = [];
    const whileLoading: number[] = [];
    const afterLoad: number[] = [];
    // Capture times are epoch ms; the load's end is on this process's clock.
    const loadedAtEpochMs = performance.timeOrigin + load.at;
    for (const [callId, register] of registersIn) {
      const answer = answers.get(callId);
      if (!answer) continue;
      responseSamples.push(answer.timeMs - register.timeMs);
      (register.timeMs >= loadedAtEpochMs ? afterLoad : whileLoading).push(answer.timeMs - register.timeMs);
    }
    const answered = [...answers.keys()].filter((callId) => registersIn.has(callId)).length;

    const invitesIn = firstByCallId(packets, (p) => p.method === "INVITE" && p.destinationPort === sipPort);
    const invitesOut = firstByCallId(packets, (p) => p.method === "INVITE" && p.sourcePort === sipPort);
    const wakeRegisters = firstByCallId(
      packets,
      (p) => p.method === "REGISTER" && p.destinationPort === sipPort && p.callId.startsWith(`storm-${runId}-`),
    );
    const wakeSamples: number[] = [];
    for (const [callId, register] of wakeRegisters) {
      const invite = invitesOut.get(callId);
      if (invite) wakeSamples.push(invite.timeMs - register.timeMs);
    }
    const firstPushes = new Map<string, number>();
    for (const push of apns.pushes)
      if (push.callId?.startsWith(`storm-${runId}-`) && !firstPushes.has(push.callId))
        firstPushes.set(push.callId, push.receivedAtMs);
    const dispatchSamples: number[] = [];
    for (const [callId, receivedAtMs] of firstPushes) {
      const invite = invitesIn.get(callId);
      if (invite) dispatchSamples.push(receivedAtMs - invite.timeMs);
    }
    // The loading worker's CPU during the storm is the load's, not the REGISTERs'.
    const loaderCpuInStorm = Math.max(0, Math.min(load.loaderCpuMs, loaderCpuAfter) - loaderCpuBefore);
    return {
      phones: options.phones,
      seconds: options.seconds,
      rate: round(rate, 1),
      registersAnswered: answered,
      registersLost: options.phones - answered,
      registerRetransmissions: stormIn.length - registersIn.size,
      registerResponseMs: distribution(responseSamples),
      registerResponseWhileLoadingMs: distribution(whileLoading),
      registerResponseAfterLoadMs: distribution(afterLoad),
      cpuUsPerRegister: round(((cpuAfter - cpuBefore - loaderCpuInStorm) * 1000) / options.phones, 1),
      recordsStored: (pusher.output().match(new RegExp(`device stored aor=${storm.prefix}\\d`, "g")) ?? []).length,
      loadSeconds: round((load.at - restartedAt) / 1000, 2),
      loadedIntoStormSeconds: round(Math.max(0, load.at - stormStartedAt) / 1000, 2),
      calls: options.calls,
      callRate: options.callRate,
      callsPushed: dispatchSamples.length,
      callsWoken: wakeSamples.length,
      wakeLatencyMs: distribution(wakeSamples),
      dispatchLatencyMs: distribution(dispatchSamples),
    };
  } finally {
    finished = true;
    if (capture) await capture.stop().catch(() => []);
    for (const load of loads) if (load.child.exitCode === null) load.child.kill();
    await stop();
    cleanUp();
    await apns.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
