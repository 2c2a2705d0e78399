// Per-AOR limits on pushed calls, so that one caller looping INVITEs can neither hold a callee's calls without
// end nor ring its phone with push after push until APNs throttles the pushes of its real calls:
//   calls.maxHeldPerAor             calls pushed and not ended yet (held or ringing); one more gets 486 Busy Here
//   calls.maxPushesPerAorPerMinute  calls that pushed the AOR's phones in the last 60 s (sliding); one more gets 480
//                                   and no push
// The push times live in htable pusher_limits as `pushes:<aor>` → JSON list of epoch ms, at most the limit long
// (the table's autoexpire drops it a minute after the AOR's last push). hold-call.ts decides under the AOR's lock
// of pusher_calls, so concurrent INVITEs cannot all pass.

import { LIMITS_TABLE, getJson, setJson } from "./shared-state";

export interface CallLimits {
  maxHeld: number;
  maxPushesPerMinute: number;
}

/** Whether one more pushed call may go ahead: admitted, or refused and why. */
export type Admission = "admitted" | "busy" | "push-limited";

const WINDOW_MS = 60000;

function pushesKey(aor: string): string {
  return "pushes:" + aor;
}

/**
 * Decides for one more pushed call of `aor`, which has `heldNow` calls held or ringing; an admitted call's push
 * time is recorded. Call under the AOR's lock of pusher_calls (hold-call.ts).
 */
export function admitPushedCall(aor: string, heldNow: number, nowMs: number, limits: CallLimits): Admission {
  if (heldNow >= limits.maxHeld) return "busy";
  const recent = (getJson<number[]>(LIMITS_TABLE, pushesKey(aor)) || []).filter(function (atMs) {
    return typeof atMs === "number" && nowMs - atMs < WINDOW_MS;
  });
  if (recent.length >= limits.maxPushesPerMinute) return "push-limited";
  recent.push(nowMs);
  setJson(LIMITS_TABLE, pushesKey(aor), recent);
  return "admitted";
}
