// Messages from the helper, read in event_route[evapi:message-received] (the evapi dispatcher process). Only the
// authenticated helper's are obeyed (helper-link.ts); a push result changes something only when it answers a push
// the plugin sent: for a call it still holds, or one it remembers (sent-pushes.ts: call-ended, message and refresh
// pushes, and the pushes of a call that ended before their results came), whose dead tokens are dropped as a call
// push's are.
// A failed push for the last device of a call sets $var(pusher_fail)=1 with $var(pusher_tindex|tlabel):
// cfg then continues the call into route PUSHER_INTERNAL_PUSH_FAILED, which answers the caller at once.

import { parseHelperMessage, PushProvider, PushResult, StatsReport } from "../protocol";
import { kamailioStatsKeys } from "../kamailio-stats";
import { CallDevice, devicesOf, dropDeadToken } from "./device-store";
import { findCall, recordPushFailure } from "./hold-call";
import { countCall, countTokenPurged } from "./call-metrics";
import { fromAuthenticatedHelper, relayToHelper } from "./helper-link";
import { getNumber, STATE_TABLE, STATS_TABLE } from "./shared-state";
import { logError, logInfo, logWarn } from "./log";
import { pvString, setVar } from "./sip-message";
import { takeEndedCallPush, takeSentPush } from "./sent-pushes";
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
 * the pushed token are what the plugin sent for it. Null otherwise (a call that ended: takeEndedCallPush, or a
 * result nobody asked for).
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

function dropToken(result: PushResult, provider: PushProvider, token: string): void {
  // dropDeadToken leaves a record that holds another token by now (the phone registered again between the push and
  // the provider's answer), or that was registered again after APNs found the token invalid. A dead Apple alert
  // token (call-ended, message, refresh pushes) costs the device only that token: its VoIP token still takes calls.
  const dropped = dropDeadToken(result.aor, result.instance, provider + ":" + token, result.tokenInvalidSinceMs);
  if (dropped === "device") {
    countTokenPurged();
    logInfo(
      "device removed aor=" + result.aor + " instance=" + result.instance + ": the provider says its token is dead",
    );
    return;
  }
  if (dropped === "alert token") {
    logInfo(
      "alert token dropped aor=" +
        result.aor +
        " instance=" +
        result.instance +
        ": the provider says it is dead; the device keeps its VoIP token for calls",
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
  // A call-ended, message or refresh push is forgotten at its result, whatever it says.
  const sent = takeSentPush(result);
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
  if (sent) {
    if (result.dropToken) dropToken(result, sent.provider, sent.token);
    return;
  }
  const device = pushedDevice(result);
  if (!device) {
    if (!result.dropToken) return;
    // Its call ended before this result came (the caller cancelled, another phone answered): the token is as dead.
    const ended = takeEndedCallPush(result);
    if (ended) dropToken(result, ended.provider, ended.token);
    else
      logInfo(
        "dead token of aor=" +
          result.aor +
          " instance=" +
          result.instance +
          " kept: its push was for no call the plugin holds and no push it remembers",
      );
    return;
  }
  if (result.dropToken) dropToken(result, device.provider, result.token as string);
  const call = recordPushFailure(result.aor, result.callRef, result.instance);
  if (!call) return;
  countCall("unreachable");
  setVar("pusher_tindex", call.tindex);
  setVar("pusher_tlabel", call.tlabel);
  setVar("pusher_fail", 1);
}
