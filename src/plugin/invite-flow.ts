// The INVITE side: decide invite-first or hold, prepare the hold, send the pushes, follow the call to its end
// (answered, cancelled, timed out) and tell the pushed phones when it ended without them.
// JS only decides and records; kamailio/pusher.cfg acts (relay, suspend, reply) on what it sets:
//   $var(pusher_action)  "none" | "invite-first" | "parallel" | "hold" | "unavailable"
//   $var(pusher_invite_first_ms), $var(pusher_wait_ms)   timers for t_set_fr
//   $var(pusher_provisional_code|reason)                 the reply while pushing (code 0: none)
//   $avp(pusher_aor), $avp(pusher_after_wake_ms)  the callee AOR and t3, kept with the transaction for its
//                        failure and resumed routes

import { CallEndReason, PushDevice, PushRequest } from "../protocol";
import { pickCallerId, CALLER_ID_HEADERS } from "./caller-id";
import { DeviceRecord } from "../device-record";
import { devicesOf, pushDeviceOf } from "./device-store";
import { CallStrategy, UserAgentRule } from "../config";
import { CallState, PushedCall, callRefOf, endCall, findCall, findCallByCallId, holdCall, holdRingingCall } from "./hold-call";
import { CallTimers, readKazooCall } from "./kazoo-headers";
import { instanceAt } from "./answering-device";
import { countCall, countCallEnded } from "./call-metrics";
import { issueRegistrationToken } from "./registration-token";
import { logError, logInfo, maskToken } from "./log";
import { currentConfig } from "./settings";
import { STATE_TABLE, firstTimeIn, getNumber } from "./shared-state";
import { aorOf, header, headerText, pvString, setVar } from "./sip-message";

const PROVISIONAL_REASONS: { [code: string]: string } = {
  "110": "Push sent",
  "180": "Ringing",
  "182": "sending push notification",
};

function currentCallRef(): string {
  return callRefOf(Number(pvString("$T(id_index)")), Number(pvString("$T(id_label)")));
}

function helperConnected(): boolean {
  return getNumber(STATE_TABLE, "helper_connections") > 0;
}

interface CallPlan {
  aor: string;
  devices: DeviceRecord[];
  timers: CallTimers;
  strategy: CallStrategy;
  accountRef: string | null;
}

function ruleOfNewestDevice(devices: DeviceRecord[], rules: UserAgentRule[]): UserAgentRule | null {
  let newest: DeviceRecord | null = null;
  for (let i = 0; i < devices.length; i++) {
    if (devices[i].rule && (!newest || devices[i].registeredAtMs > newest.registeredAtMs)) newest = devices[i];
  }
  for (let i = 0; newest && i < rules.length; i++) if (rules[i].name === newest.rule) return rules[i];
  return null;
}

/** Who to push for this INVITE and how: stored devices, or Kazoo's headers from a trusted source. */
function planCall(): CallPlan | null {
  const config = currentConfig();
  const kazoo = readKazooCall(config.kazoo.trustedSources);
  const aor = (kazoo && kazoo.aor) || aorOf(pvString("$rU"), pvString("$rd"));
  const devices = kazoo && kazoo.device ? [kazoo.device] : devicesOf(aor);
  if (!devices.length) return null;
  const timers: CallTimers = {
    inviteFirstMs: config.timers.inviteFirstMs,
    pushWaitMs: config.timers.pushWaitMs,
    afterWakeMs: config.timers.afterWakeMs,
  };
  // The User-Agent rule the most recently registered device came through may set its own strategy and timers;
  // Kazoo's per-call headers override both.
  const rule = ruleOfNewestDevice(devices, config.userAgents);
  if (rule && rule.timers) Object.assign(timers, rule.timers);
  if (kazoo) Object.assign(timers, kazoo.timers);
  const strategy = (rule && rule.strategy) || config.calls.strategy;
  return {
    aor: aor,
    devices: devices,
    timers: timers,
    strategy: kazoo && kazoo.forcePush ? "push-first" : strategy,
    accountRef: kazoo ? kazoo.accountRef : null,
  };
}

/**
 * request_route, INVITE without To-tag: does the callee have push devices, and are they registered?
 * invite-first: the registered contacts get the INVITE first, pushed if silent for t1 (Kazoo).
 * parallel: the registered contacts get the INVITE while the phones are pushed (Flexisip).
 * push-first, or nobody registered: push and hold until a phone registers (RFC 8599 §5.6.2).
 */
export function onInvite(): void {
  setVar("pusher_action", "none");
  const plan = planCall();
  if (!plan) return;
  KSR.pv.sets("$avp(pusher_aor)", plan.aor);
  KSR.pv.seti("$avp(pusher_after_wake_ms)", plan.timers.afterWakeMs);
  const registered = plan.strategy !== "push-first" && KSR.registrar.registered_uri("location", "sip:" + plan.aor) > 0;
  if (registered && plan.strategy === "invite-first") {
    setVar("pusher_invite_first_ms", plan.timers.inviteFirstMs);
    setVar("pusher_action", "invite-first");
    return;
  }
  if (KSR.tm.t_newtran() < 0) {
    logError("cannot create a transaction for call " + pvString("$ci"));
    return;
  }
  if (!recordPushedCall(plan, registered ? "ringing" : "held")) return;
  setVar("pusher_wait_ms", plan.timers.pushWaitMs);
  setVar("pusher_action", registered ? "parallel" : "hold");
}

/** failure_route after invite-first: the registered contacts did not answer in t1, so push. */
export function onInviteFirstFailed(): void {
  setVar("pusher_action", "none");
  const plan = planCall();
  if (!plan || !recordPushedCall(plan, "held")) return;
  setVar("pusher_wait_ms", plan.timers.pushWaitMs);
  setVar("pusher_action", "hold");
}

/**
 * failure_route of a parallel call: the registered contacts failed (dead socket) before any phone woke.
 * The call is held for what is left of t2; its pushes are already on their way.
 */
export function onParallelFailed(): void {
  setVar("pusher_action", "none");
  const call = holdRingingCall(currentCallRef());
  if (!call) return;
  const leftMs = call.ringsUntilMs - Date.now();
  if (leftMs < 100) {
    endCall(call.callRef);
    return;
  }
  setVar("pusher_wait_ms", leftMs);
  setVar("pusher_action", "hold");
}

function recordPushedCall(plan: CallPlan, state: CallState): boolean {
  if (!helperConnected()) {
    if (firstTimeIn("no-helper", 60)) {
      logError("no push helper is connected (evapi): calls to sleeping phones get 480 at once; start pusher-helper");
    }
    setVar("pusher_action", "unavailable");
    return false;
  }
  const config = currentConfig();
  const callerHeaders: { [name: string]: string | null } = {};
  for (let i = 0; i < CALLER_ID_HEADERS.length; i++) callerHeaders[CALLER_ID_HEADERS[i]] = headerText(CALLER_ID_HEADERS[i]);
  const now = Date.now();
  const call: PushedCall = {
    callRef: currentCallRef(),
    tindex: Number(pvString("$T(id_index)")),
    tlabel: Number(pvString("$T(id_label)")),
    state: state,
    aor: plan.aor,
    callId: pvString("$ci"),
    fromTag: pvString("$ft"),
    caller: pickCallerId(callerHeaders),
    proxy: plan.devices[plan.devices.length - 1].proxy,
    accountRef: plan.accountRef,
    devices: plan.devices.map(function (device: DeviceRecord): PushDevice {
      return pushDeviceOf(device);
    }),
    failedInstances: [],
    forkedInstances: [],
    heldAtMs: now,
    ringsUntilMs: now + plan.timers.pushWaitMs,
    registrationToken: issueRegistrationToken(plan.aor),
  };
  holdCall(call);
  countCall("held");
  const provisional = config.calls.provisional;
  setVar("pusher_provisional_code", provisional === "none" ? 0 : Number(provisional));
  setVar("pusher_provisional_reason", provisional === "none" ? "" : PROVISIONAL_REASONS[provisional]);
  return true;
}

function relayPush(call: PushedCall, device: PushDevice, endReason?: CallEndReason): void {
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
  if (call.accountRef) request.accountRef = call.accountRef;
  if (!endReason && call.registrationToken) request.registrationToken = call.registrationToken;
  if (endReason) {
    request.purpose = "call-ended";
    request.endReason = endReason;
  }
  // evapi hands the frame to its dispatcher process over a socketpair: the SIP worker never waits on the network.
  KSR.evapi.relay(JSON.stringify(request));
  logInfo(
    (endReason ? "call-ended push (" + endReason + ")" : "push") + " requested call-id=" + call.callId +
      " aor=" + call.aor + " app=" + device.appId + " token=" + maskToken(device.token),
  );
}

/** After t_suspend: one push request per device to the helper. */
export function sendPushes(): void {
  const call = findCall(currentCallRef());
  if (!call) return;
  for (let i = 0; i < call.devices.length; i++) relayPush(call, call.devices[i]);
}

/**
 * A pushed phone has told iOS CallKit a call is ringing; it must learn at once that the call is over, or it
 * shows a ghost call. Every pushed device with no branch of the call gets an alert push (never VoIP); those
 * with a branch get tm's CANCEL instead.
 */
function tellPushedPhonesCallEnded(call: PushedCall, reason: CallEndReason, answeredBy?: string | null): void {
  const config = currentConfig();
  if (reason === "cancelled" && !config.calls.missedCallPush) return;
  if (reason === "answered-elsewhere" && !config.calls.answeredElsewherePush) return;
  for (let i = 0; i < call.devices.length; i++) {
    const device = call.devices[i];
    if (device.instance === answeredBy) continue;
    if (call.forkedInstances.indexOf(device.instance) >= 0 || call.failedInstances.indexOf(device.instance) >= 0) continue;
    // A Web Push subscription known without keys (RFC 8599) only gets messages without payload: one would read as
    // another call, not as its end.
    if (device.provider === "webpush" && !device.webpush) continue;
    relayPush(call, device, reason);
  }
}

/** onreply_route of a delivered call, 2xx: the call is answered; the other pushed phones are told. */
export function onAnswered(): void {
  const call = endCall(currentCallRef());
  if (call) tellPushedPhonesCallEnded(call, "answered-elsewhere", instanceAt(call.aor, pvString("$si"), pvString("$sp")));
}

/** failure_route of a held or delivered call: forget it (timeout, cancel, or the woken phone failed). */
export function onCallEnded(): void {
  countCallEnded(endCall(currentCallRef()));
}

/**
 * request_route, CANCEL. A held call has no branch for tm to cancel, so the plugin ends it and cfg answers:
 * $var(pusher_cancel)=1 with $var(pusher_tindex|tlabel) → 200 to the CANCEL, 487 to the INVITE.
 * A ringing call is cancelled by tm as usual; either way the pushed phones get a missed-call push unless the
 * CANCEL says the call was completed elsewhere (Reason: SIP;cause=200).
 */
export function onCancel(): void {
  setVar("pusher_cancel", 0);
  const found = findCallByCallId(pvString("$ci"), pvString("$ft"));
  const call = found ? endCall(found.callRef) : null;
  if (!call) return;
  countCall("cancelled");
  logInfo("caller cancelled call-id=" + call.callId + " aor=" + call.aor + " (" + call.state + ")");
  const reason = header("Reason") || "";
  tellPushedPhonesCallEnded(call, /cause\s*=\s*200\b/i.test(reason) ? "answered-elsewhere" : "cancelled");
  if (call.state !== "held") return;
  setVar("pusher_tindex", call.tindex);
  setVar("pusher_tlabel", call.tlabel);
  setVar("pusher_cancel", 1);
}
