// The INVITE side: decide invite-first or hold, prepare the hold, send the pushes, forget ended calls.
// JS only decides and records; kamailio/pusher.cfg acts (relay, suspend, reply) on what it sets:
//   $var(pusher_action)  "none" | "invite-first" | "hold" | "unavailable"
//   $var(pusher_invite_first_ms), $var(pusher_wait_ms)   timers for t_set_fr
//   $avp(pusher_aor)     the callee AOR, kept with the transaction for its failure routes

import { PushDevice, PushRequest } from "../protocol";
import { pickCallerId, CALLER_ID_HEADERS } from "./caller-id";
import { DeviceRecord, devicesOf } from "./device-store";
import { HeldCall, callRefOf, endHeldCall, findHeldCall, findHeldCallByCallId, holdCall } from "./hold-call";
import { logError, logInfo, maskToken } from "./log";
import { currentConfig } from "./settings";
import { STATE_TABLE, firstTimeIn, getNumber } from "./shared-state";
import { aorOf, header, pvString, setVar } from "./sip-message";

function currentCallRef(): string {
  return callRefOf(Number(pvString("$T(id_index)")), Number(pvString("$T(id_label)")));
}

function helperConnected(): boolean {
  return getNumber(STATE_TABLE, "helper_connections") > 0;
}

/** request_route, INVITE without To-tag: does the callee have push devices, and are they registered? */
export function onInvite(): void {
  setVar("pusher_action", "none");
  const aor = aorOf(pvString("$rU"), pvString("$rd"));
  const devices = devicesOf(aor);
  if (!devices.length) return;
  KSR.pv.sets("$avp(pusher_aor)", aor);
  const config = currentConfig();
  if (KSR.registrar.registered("location") > 0) {
    setVar("pusher_invite_first_ms", config.timers.inviteFirstMs);
    setVar("pusher_action", "invite-first");
    return;
  }
  if (KSR.tm.t_newtran() < 0) {
    logError("cannot create a transaction for call " + pvString("$ci"));
    return;
  }
  prepareHold(aor, devices);
}

/** failure_route after invite-first: the registered contacts did not answer in t1, so push. */
export function onInviteFirstFailed(): void {
  setVar("pusher_action", "none");
  const aor = pvString("$avp(pusher_aor)");
  if (!aor) return;
  const devices = devicesOf(aor);
  if (!devices.length) return;
  prepareHold(aor, devices);
}

function prepareHold(aor: string, devices: DeviceRecord[]): void {
  if (!helperConnected()) {
    if (firstTimeIn("no-helper", 60)) {
      logError("no push helper is connected (evapi): calls to sleeping phones get 480 at once; start pusher-helper");
    }
    setVar("pusher_action", "unavailable");
    return;
  }
  const config = currentConfig();
  const callerHeaders: { [name: string]: string | null } = {};
  for (let i = 0; i < CALLER_ID_HEADERS.length; i++) callerHeaders[CALLER_ID_HEADERS[i]] = header(CALLER_ID_HEADERS[i]);
  const now = Date.now();
  const pushed: PushDevice[] = devices.map(function (device: DeviceRecord): PushDevice {
    return { instance: device.instance, appId: device.appId, provider: device.provider, token: device.token };
  });
  const call: HeldCall = {
    callRef: currentCallRef(),
    tindex: Number(pvString("$T(id_index)")),
    tlabel: Number(pvString("$T(id_label)")),
    aor: aor,
    callId: pvString("$ci"),
    fromTag: pvString("$ft"),
    caller: pickCallerId(callerHeaders),
    proxy: devices[devices.length - 1].proxy,
    devices: pushed,
    failedInstances: [],
    heldAtMs: now,
    ringsUntilMs: now + config.timers.pushWaitMs,
  };
  holdCall(call);
  setVar("pusher_wait_ms", config.timers.pushWaitMs);
  setVar("pusher_action", "hold");
}

/** After t_suspend: one push request per device to the helper. Never waits on the network (evapi relay). */
export function sendPushes(): void {
  const call = findHeldCall(currentCallRef());
  if (!call) return;
  for (let i = 0; i < call.devices.length; i++) {
    const device = call.devices[i];
    const request: PushRequest = {
      type: "push",
      callRef: call.callRef,
      callId: call.callId,
      aor: call.aor,
      device: device,
      caller: call.caller,
      proxy: call.proxy,
      ringsUntilMs: call.ringsUntilMs,
    };
    KSR.evapi.relay(JSON.stringify(request));
    logInfo("push requested call-id=" + call.callId + " aor=" + call.aor + " app=" + device.appId + " token=" + maskToken(device.token));
  }
}

/** failure_route of a held or delivered call: forget it (timeout, cancel, or the woken phone failed). */
export function onCallEnded(): void {
  endHeldCall(currentCallRef());
}

/**
 * request_route, CANCEL: a held call has no branch for tm to cancel, so the plugin ends it and cfg answers:
 * $var(pusher_cancel)=1 with $var(pusher_tindex|tlabel) → 200 to the CANCEL, 487 to the INVITE.
 */
export function onCancel(): void {
  setVar("pusher_cancel", 0);
  const call = findHeldCallByCallId(pvString("$ci"), pvString("$ft"));
  if (!call || !endHeldCall(call.callRef)) return;
  logInfo("caller cancelled held call-id=" + call.callId + " aor=" + call.aor);
  setVar("pusher_tindex", call.tindex);
  setVar("pusher_tlabel", call.tlabel);
  setVar("pusher_cancel", 1);
}
