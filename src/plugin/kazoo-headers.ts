// Kazoo drop-in mode: Kazoo's FreeSWITCH sends the INVITE with the device's push data and per-call timers in
// X-KAZOO-PUSHER-* headers (create_push_endpoint in core/kazoo_endpoint/src/kz_endpoint_v5.erl of
// https://github.com/2600hz/kazoo). They are obeyed only from trusted sources (config kazoo.trustedSources);
// pusher.cfg strips every X-KAZOO-* header before the INVITE leaves Kamailio.

import { isInCidrList } from "../ip-match";
import { PushProvider } from "../protocol";
import { DeviceRecord } from "../device-record";
import { aorOf, header, pvString } from "./sip-message";
import { has } from "./own-key";

export interface CallTimers {
  inviteFirstMs: number;
  pushWaitMs: number;
  afterWakeMs: number;
}

export interface KazooCall {
  /** The callee AOR from X-KAZOO-AOR (user@realm), if given. */
  aor: string | null;
  /** The device to push, from X-KAZOO-PUSHER-Token-*, if complete. */
  device: DeviceRecord | null;
  accountRef: string | null;
  forcePush: boolean;
  timers: Partial<CallTimers>;
}

const PROVIDERS: { [tokenType: string]: PushProvider } = {
  apple: "apple",
  firebase: "firebase",
  google: "firebase",
  android: "firebase",
};

function pusherHeader(name: string): string | null {
  const value = header("X-KAZOO-PUSHER-" + name);
  return value === null ? null : value.trim();
}

/** A timer header in ms, or undefined when absent or not a sane integer (Kazoo's test was once inverted). */
function timerHeader(name: string): number | undefined {
  const value = pusherHeader(name);
  if (value === null || !/^\d{1,6}$/.test(value)) return undefined;
  const ms = Number(value);
  return ms >= 100 && ms <= 600000 ? ms : undefined;
}

/** The Kazoo data of this INVITE, or null when there is none or its source is not trusted. */
export function readKazooCall(trustedSources: string[]): KazooCall | null {
  const hasKazooData =
    header("X-KAZOO-AOR") !== null ||
    header("X-KAZOO-PUSHER-Token-ID") !== null ||
    header("X-KAZOO-PUSHER-Force-Push") !== null;
  if (!hasKazooData || !isInCidrList(pvString("$si"), trustedSources)) return null;
  const aorHeader = header("X-KAZOO-AOR");
  const aorMatch = aorHeader ? /^\s*<?sips?:([^@>;]+)@([^>;:\s]+)/i.exec(aorHeader) : null;
  const aor = aorMatch ? aorOf(aorMatch[1], aorMatch[2]) : null;
  const token = pusherHeader("Token-ID");
  const type = (pusherHeader("Token-Type") || "").toLowerCase();
  const appId = pusherHeader("Token-App");
  let device: DeviceRecord | null = null;
  if (aor && token && appId && has(PROVIDERS, type)) {
    device = {
      aor: aor,
      instance: "kazoo:" + (pusherHeader("Endpoint-ID") || aor),
      appId: appId,
      provider: PROVIDERS[type],
      token: token,
      userAgent: "",
      proxy: pusherHeader("Token-Public-Proxy") || pusherHeader("Token-Proxy") || "",
      registeredAtMs: 0,
    };
  }
  const timers: Partial<CallTimers> = {};
  const inviteFirst = timerHeader("Initial-Invite-Timeout");
  const pushWait = timerHeader("Push-Timeout");
  const afterWake = timerHeader("Invite-Timeout");
  if (inviteFirst !== undefined) timers.inviteFirstMs = inviteFirst;
  if (pushWait !== undefined) timers.pushWaitMs = pushWait;
  if (afterWake !== undefined) timers.afterWakeMs = afterWake;
  return {
    aor: aor,
    device: device,
    accountRef: pusherHeader("Account-Ref"),
    forcePush: (pusherHeader("Force-Push") || "").toLowerCase() === "true",
    timers: timers,
  };
}
