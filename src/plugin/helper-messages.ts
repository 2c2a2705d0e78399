// Messages from the helper, read in event_route[evapi:message-received] (the evapi dispatcher process). Only the
// authenticated helper's are obeyed (helper-link.ts); a push result changes something only when it answers a push
// the plugin sent for a call it still holds.
// A failed push for the last device of a call sets $var(pusher_fail)=1 with $var(pusher_tindex|tlabel):
// cfg then continues the call into route PUSHER_INTERNAL_PUSH_FAILED, which answers the caller at once.

import { parseHelperMessage, PushResult, StatsReport } from "../protocol";
import { kamailioStatsKeys } from "../kamailio-stats";
import { CallDevice, devicesOf, removeDevice } from "./device-store";
import { findCall, recordPushFailure } from "./hold-call";
import { countCall, countTokenPurged } from "./call-metrics";
import { fromAuthenticatedHelper, relayToHelper } from "./helper-link";
import { getNumber, STATE_TABLE, STATS_TABLE } from "./shared-state";
import { logError, logInfo, logWarn } from "./log";
import { pvString, setVar } from "./sip-message";
import { DeviceRecord } from "../device-record";

export function onHelperMessage(): void {
  setVar("pusher_fail", 0);
  const text = pvString("$evapi(msg)");
  const message = parseHelperMessage(text);
  if (!fromAuthenticatedHelper(message)) return;
  if (!message) {
    logError("malformed message from the helper ignored (" + text.length + " bytes)");
    return;
  }
  if (message.type === "hello") {
    logInfo("helper connected (pid " + message.pid + ", protocol " + message.version + ")");
    return;
  }
  if (message.type === "stats-request") {
    relayToHelper(JSON.stringify(statsReport(message.id)));
    return;
  }
  if (message.type === "push-result") onPushResult(message);
}

/** The helper's /metrics was scraped: Kamailio's counters, read from htable (one read per item). */
function statsReport(id: number): StatsReport {
  const keys = kamailioStatsKeys();
  const values: { [key: string]: number } = {};
  for (let i = 0; i < keys.length; i++) {
    // wake_latency_sum_us is a string item (a float beyond int range): Number() reads both kinds.
    const value = KSR.htable.sht_get(STATS_TABLE, keys[i]);
    values[keys[i]] = Number(value) || 0;
  }
  return { type: "stats", id: id, values: values, helperConnections: getNumber(STATE_TABLE, "helper_connections") };
}

/**
 * The device a push result answers for: its call is still held or ringing, and callRef, callId, AOR, instance and
 * the pushed token are what the plugin sent for it. Null otherwise (a call that ended, or a result nobody asked for).
 */
function pushedDevice(result: PushResult): CallDevice | null {
  const call = findCall(result.callRef);
  if (!call || call.callId !== result.callId || call.aor !== result.aor || result.token === undefined) return null;
  for (let i = 0; i < call.devices.length; i++) {
    const device = call.devices[i];
    if (device.instance === result.instance && (device.token === result.token || device.alertToken === result.token))
      return device;
  }
  return null;
}

function dropDeadToken(result: PushResult, device: CallDevice, token: string): void {
  // removeDevice leaves a record that holds another token by now (the phone registered again between the push and
  // the provider's answer), or that was registered again after APNs found the token invalid.
  if (removeDevice(result.aor, result.instance, device.provider + ":" + token, result.tokenInvalidSinceMs)) {
    countTokenPurged();
    logInfo(
      "device removed aor=" + result.aor + " instance=" + result.instance + ": the provider says its token is dead",
    );
    return;
  }
  const since = result.tokenInvalidSinceMs;
  const devices = devicesOf(result.aor);
  let record: DeviceRecord | null = null;
  for (let i = 0; i < devices.length; i++) if (devices[i].instance === result.instance) record = devices[i];
  if (
    record &&
    since !== undefined &&
    (record.token === token || record.alertToken === token) &&
    record.registeredAtMs > since
  ) {
    // Apple's 410 onset is delayed on purpose: the phone registered the same token again since.
    logInfo(
      "device kept aor=" +
        result.aor +
        " instance=" +
        result.instance +
        ": APNs found its token invalid at " +
        new Date(since).toISOString() +
        ", but it was registered again after that",
    );
  }
}

function onPushResult(result: PushResult): void {
  if (result.outcome === "sent") return;
  logWarn(
    "push failed call-id=" +
      result.callId +
      " aor=" +
      result.aor +
      " code=" +
      (result.code || "") +
      " reason=" +
      (result.reason || ""),
  );
  const device = pushedDevice(result);
  if (!device) {
    if (result.dropToken)
      logInfo(
        "dead token of aor=" +
          result.aor +
          " instance=" +
          result.instance +
          " kept: its push was for no call the plugin holds (the call ended)",
      );
    return;
  }
  if (result.dropToken) dropDeadToken(result, device, result.token as string);
  const call = recordPushFailure(result.aor, result.callRef, result.instance);
  if (!call) return;
  countCall("unreachable");
  setVar("pusher_tindex", call.tindex);
  setVar("pusher_tlabel", call.tlabel);
  setVar("pusher_fail", 1);
}
