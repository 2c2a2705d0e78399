// Messages from the helper, read in event_route[evapi:message-received] (the evapi dispatcher process).
// A failed push for the last device of a call sets $var(pusher_fail)=1 with $var(pusher_tindex|tlabel):
// cfg then continues the call into route PUSHER_INTERNAL_PUSH_FAILED, which answers the caller at once.

import { parseHelperMessage, PushResult, StatsReport } from "../protocol";
import { kamailioStatsKeys } from "../kamailio-stats";
import { devicesOf, removeDevice } from "./device-store";
import { recordPushFailure } from "./hold-call";
import { countCall, countTokenPurged } from "./call-metrics";
import { getNumber, STATE_TABLE, STATS_TABLE } from "./shared-state";
import { logError, logInfo, logWarn } from "./log";
import { pvString, setVar } from "./sip-message";
import { DeviceRecord } from "../device-record";

export function onHelperMessage(): void {
  setVar("pusher_fail", 0);
  const text = pvString("$evapi(msg)");
  const message = parseHelperMessage(text);
  if (!message) {
    logError("malformed message from the helper ignored (" + text.length + " bytes)");
    return;
  }
  if (message.type === "hello") {
    logInfo("helper connected (pid " + message.pid + ", protocol " + message.version + ")");
    return;
  }
  if (message.type === "stats-request") {
    KSR.evapi.relay(JSON.stringify(statsReport(message.id)));
    return;
  }
  onPushResult(message);
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

function deviceOf(result: PushResult): DeviceRecord | null {
  const devices = devicesOf(result.aor);
  for (let i = 0; i < devices.length; i++) if (devices[i].instance === result.instance) return devices[i];
  return null;
}

function dropDeadToken(result: PushResult): void {
  const device = deviceOf(result);
  // With the token the helper names (`<provider>:<token>`), removeDevice leaves a record that holds another token by
  // now (the phone registered again between the push and the provider's answer); without it the record goes
  // whatever it holds.
  const tokenKey = device && result.token !== undefined ? device.provider + ":" + result.token : undefined;
  if (removeDevice(result.aor, result.instance, tokenKey, result.tokenInvalidSinceMs)) {
    countTokenPurged();
    logInfo("device removed aor=" + result.aor + " instance=" + result.instance + ": the provider says its token is dead");
    return;
  }
  const since = result.tokenInvalidSinceMs;
  if (device && since !== undefined && (device.token === result.token || device.alertToken === result.token) && device.registeredAtMs > since) {
    // Apple's 410 onset is delayed on purpose: the phone registered the same token again since.
    logInfo("device kept aor=" + result.aor + " instance=" + result.instance + ": APNs found its token invalid at " + new Date(since).toISOString() + ", but it was registered again after that");
  }
}

function onPushResult(result: PushResult): void {
  if (result.outcome === "sent") return;
  logWarn("push failed call-id=" + result.callId + " aor=" + result.aor + " code=" + (result.code || "") + " reason=" + (result.reason || ""));
  if (result.dropToken) dropDeadToken(result);
  const call = recordPushFailure(result.aor, result.callRef, result.instance);
  if (!call) return;
  countCall("unreachable");
  setVar("pusher_tindex", call.tindex);
  setVar("pusher_tlabel", call.tlabel);
  setVar("pusher_fail", 1);
}
