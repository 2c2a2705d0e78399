// Benchmark 8, a restart with many device records on disk: `pusher start` with N rows seeded straight into its device
// database, sqlite or PostgreSQL (bench/lib/seeded-restart.ts). As soon as it is up (its helper connected) a caller
// calls the phone the load reaches last, then calls random sleeping phones at a steady rate until every record is
// loaded. Figures: seconds from the spawn of `pusher start` to that first call's push at the mock APNs, and to the
// log line that every record is loaded (with the loading worker's CPU, the database server's, and the shared memory
// then in use), and how each call sent meanwhile ended: pushed to its own phone's token (then 480 at t2: no phone
// wakes here), refused without a push, pushed to another token (never expected), or unanswered.
import { BenchApns } from "./lib/bench-apns";
import { cpuMsOf } from "./lib/kamailio-direct";
import { TEST_CA_DIR } from "./lib/paths";
import {
  lastLoaded,
  loaderPid,
  restartWithSeededDevices,
  shmUsed,
  type DeviceDatabaseKind,
} from "./lib/seeded-restart";
import { distribution, round, type Distribution } from "./lib/stats";
import { SipClient, invite, type SentRequest } from "../test/faults/support/sip-client";
import { seededPhone, type SeededPhone } from "../test/support/seed-devices";
import { DOMAIN } from "../test/support/topology";

export interface RestartWithDevicesOptions {
  /** Device rows (one AOR, one device each) on disk at the restart. */
  devices: number;
  /** Calls to random sleeping phones per second while the records load. */
  callRate: number;
  sharedMemoryMb: number;
  /** PUSHER_DEVICES_HTABLE_SIZE and PUSHER_TOKENS_HTABLE_SIZE. */
  htableSize: number;
  /** Where the rows are (default sqlite). */
  database?: DeviceDatabaseKind;
}

export interface CallsDuringLoad {
  sent: number;
  /** Pushed to the callee's own token. */
  pushed: number;
  /** A final answer (404, 480…) without any push. */
  refusedWithoutPush: number;
  /** A push to a token that is not the callee's. */
  wrongPush: number;
  /** Neither a push nor a final answer. */
  unanswered: number;
}

export interface RestartWithDevicesResult {
  database: DeviceDatabaseKind;
  devices: number;
  sharedMemoryMb: number;
  htableSize: number;
  /** `pusher start` spawned → its helper connected (Kamailio answers SIP by then). */
  readySeconds: number;
  /** `pusher start` spawned → the push of a call to the phone the load reaches last, sent once it was up. */
  firstPushSeconds: number;
  /** `pusher start` spawned → `device records loaded from the database` in its log. */
  allLoadedSeconds: number;
  /** How many records that line names (the calls' AORs, read through before the load got there, are not counted). */
  devicesLoaded: number;
  /** CPU of the worker that loaded them. */
  loadCpuSeconds: number;
  /** CPU of the database server's sessions of Kamailio from the restart until then (0 for sqlite: Kamailio's own). */
  databaseCpuSeconds: number;
  /** Kamailio's shared memory in use once they are loaded. */
  shmUsedMb: number;
  callsDuringLoad: CallsDuringLoad;
  /** INVITE sent → its push received, for the calls pushed while the records loaded. */
  pushLatencyDuringLoadMs: Distribution;
}

const LOADED = /device records loaded from the database: (\d+) devices of \d+ AORs/;

export async function benchRestartWithDevices(
  options: RestartWithDevicesOptions,
  log: (line: string) => void = () => {},
): Promise<RestartWithDevicesResult> {
  const database = options.database ?? "sqlite";
  const group = { prefix: "seed", count: options.devices };
  const step = (line: string) => log(`restart (${database}): ${line}`);
  const apns = await BenchApns.start({ caDir: TEST_CA_DIR, record: true });
  let caller: SipClient | null = null;
  let cleanUp = () => {};
  let stop = async () => {};
  try {
    const restart = await restartWithSeededDevices(
      {
        groups: [group],
        sharedMemoryMb: options.sharedMemoryMb,
        htableSize: options.htableSize,
        apnsHost: apns.host,
        timers: { inviteFirstMs: 2000, pushWaitMs: 1000, afterWakeMs: 5000 },
        database,
      },
      step,
    );
    const { pusher, restartedAt } = restart;
    cleanUp = restart.cleanUp;
    stop = () => pusher.stop();
    const secondsSinceRestart = (at: number) => round((at - restartedAt) / 1000, 2);
    step(`pusher start up (helper connected) after ${secondsSinceRestart(restart.readyAt)} s`);
    caller = await SipClient.open(pusher.sipPort);
    const client = caller;
    const calls: { phone: SeededPhone; request: SentRequest }[] = [];
    const call = (phone: SeededPhone) =>
      calls.push({ phone, request: client.send(invite(client, phone.user, DOMAIN), { timeoutMs: 15_000 }) });

    const first = lastLoaded(group);
    call(first);
    let firstPushAt = NaN;
    let loadedAt = NaN;
    let loadCpuMs = NaN;
    let databaseCpuMs = NaN;
    const loader = await loaderPid(pusher);
    const callEveryMs = 1000 / options.callRate;
    let nextCallAt = performance.now() + callEveryMs;
    while (Number.isNaN(loadedAt) || Number.isNaN(firstPushAt)) {
      const now = performance.now();
      const firstPush = Number.isNaN(firstPushAt) ? apns.pushes.find((push) => push.token === first.token) : undefined;
      // The mock's receive time, on this process's clock (bench-apns.ts).
      if (firstPush) firstPushAt = firstPush.receivedAtMs - performance.timeOrigin;
      if (Number.isNaN(loadedAt) && LOADED.test(pusher.output())) {
        loadedAt = now;
        loadCpuMs = cpuMsOf(loader);
        databaseCpuMs = restart.database.serverCpuMs();
      }
      if (Number.isNaN(loadedAt) && now >= nextCallAt) {
        call(seededPhone(group.prefix, 1 + Math.floor(Math.random() * group.count)));
        nextCallAt += callEveryMs;
      }
      if (now - restartedAt > 600_000)
        throw new Error(
          `bench: restart (${database}): the records did not load within 10 minutes:\n${pusher.output().slice(-3000)}`,
        );
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    step(
      `first call pushed after ${secondsSinceRestart(firstPushAt)} s, every record loaded after ${secondsSinceRestart(loadedAt)} s`,
    );
    const shmUsedMb = round(shmUsed(pusher) / 1024 / 1024, 0);
    // Each call ends within t2 (1 s) of its push, or at once without one.
    await Promise.all(calls.map(({ request }) => request.final));

    const outcome: CallsDuringLoad = {
      sent: calls.length,
      pushed: 0,
      refusedWithoutPush: 0,
      wrongPush: 0,
      unanswered: 0,
    };
    const latencies: number[] = [];
    for (const { phone, request } of calls) {
      const pushes = apns.pushes.filter((push) => push.callId === request.callId);
      const final = await request.final;
      if (pushes.some((push) => push.token !== phone.token)) outcome.wrongPush++;
      else if (pushes.length) {
        outcome.pushed++;
        // Both epoch ms: the mock's receive time (performance.timeOrigin + performance.now()) and the send's Date.now().
        latencies.push(pushes[0].receivedAtMs - request.sentAtMs);
      } else if (final) outcome.refusedWithoutPush++;
      else outcome.unanswered++;
    }
    return {
      database,
      devices: options.devices,
      sharedMemoryMb: options.sharedMemoryMb,
      htableSize: options.htableSize,
      readySeconds: secondsSinceRestart(restart.readyAt),
      firstPushSeconds: secondsSinceRestart(firstPushAt),
      allLoadedSeconds: secondsSinceRestart(loadedAt),
      devicesLoaded: Number(LOADED.exec(pusher.output())?.[1] ?? NaN),
      loadCpuSeconds: round(loadCpuMs / 1000, 2),
      databaseCpuSeconds: round(databaseCpuMs / 1000, 2),
      shmUsedMb,
      callsDuringLoad: outcome,
      pushLatencyDuringLoadMs: distribution(latencies),
    };
  } finally {
    caller?.close();
    await stop();
    cleanUp();
    await apns.close();
  }
}
