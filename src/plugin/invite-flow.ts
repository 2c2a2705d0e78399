// The INVITE side: decide invite-first or hold, prepare the hold, send the pushes, follow the call to its end
// (answered, cancelled, timed out) and tell the pushed phones when it ended without them.
// JS only decides and records; kamailio/pusher.cfg acts (relay, suspend, reply) on what it sets:
//   $var(pusher_action)  "none" | "invite-first" | "parallel" | "hold" | "unavailable"
//   $var(pusher_invite_first_ms), $var(pusher_wait_ms)   timers for t_set_fr
//   $var(pusher_provisional_code|reason)                 the reply while pushing (code 0: none)
//   $avp(pusher_aor), $avp(pusher_after_wake_ms)  the callee AOR and t3, kept with the transaction for its
//                        failure and resumed routes
//   $avp(pusher_plan)    the whole plan of the call (JSON), decided once from the initial INVITE: after lookup()
//                        the R-URI is a phone's Contact URI, no longer the callee's AOR

import { CallEndReason, PushDevice, PushKind, PushRequest } from "../protocol";
import { pickCallerId, CALLER_ID_HEADERS } from "./caller-id";
import { DeviceRecord } from "../device-record";
import { CallDevice, devicesOf, pushDeviceOf } from "./device-store";
import { CallStrategy, UserAgentRule } from "../config";
import {
  CallState,
  PushedCall,
  callRefOf,
  endCall,
  findCall,
  findCallByCallId,
  holdCall,
  holdRingingCall,
} from "./hold-call";
import { CallTimers, readKazooCall } from "./kazoo-headers";
import { instanceAt } from "./answering-device";
import { countCall, countCallEnded } from "./call-metrics";
import { relayToHelper } from "./helper-link";
import { relayRememberedPush } from "./sent-pushes";
import { forgetRegistrationToken, issueRegistrationToken } from "./register-token";
import { Admission } from "./call-limits";
import { logError, logInfo, logWarn } from "./log";
import { currentConfig } from "./settings";
import { STATE_TABLE, firstTimeIn, getNumber } from "./shared-state";
import { aorOf, header, headerText, pvString, setVar } from "./sip-message";
import { has } from "./own-key";
import { isInCidrList } from "../ip-match";
import { maskToken } from "../mask-token";

// Refusals over an AOR's limits are logged once a minute per AOR: a loop of INVITEs must not flood the log.
const LIMIT_LOG_INTERVAL_S = 60;

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
  /** Kazoo mode: the one device its headers named (the AOR's stored devices otherwise). */
  kazooDevice: DeviceRecord | null;
}

const PLAN_AVP = "$avp(pusher_plan)";

function ruleOfNewestDevice(devices: DeviceRecord[], rules: UserAgentRule[]): UserAgentRule | null {
  let newest: DeviceRecord | null = null;
  for (let i = 0; i < devices.length; i++) {
    if (devices[i].rule && (!newest || devices[i].registeredAtMs > newest.registeredAtMs)) newest = devices[i];
  }
  for (let i = 0; newest && i < rules.length; i++) if (rules[i].name === newest.rule) return rules[i];
  return null;
}

/**
 * Who to push for this initial INVITE and how: stored devices, or Kazoo's headers from a trusted source. Only
 * here is the R-URI the callee's AOR; the plan is kept with the transaction (keepPlan) for every later step.
 */
function planCall(): CallPlan | null {
  const config = currentConfig();
  const kazoo = readKazooCall(config.kazoo.trustedSources);
  const aor = (kazoo && kazoo.aor) || aorOf(pvString("$rU"), pvString("$rd"));
  const kazooDevice = kazoo && kazoo.device ? kazoo.device : null;
  const devices = kazooDevice ? [kazooDevice] : devicesOf(aor);
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
    kazooDevice: kazooDevice,
  };
}

/** Keeps the plan with the transaction: AVPs of the INVITE move to it (failure and resumed routes read them). */
function keepPlan(plan: CallPlan): void {
  const kept: { [key: string]: unknown } = {};
  for (const key in plan)
    if (has(plan, key) && key !== "devices") kept[key] = (plan as unknown as { [key: string]: unknown })[key];
  KSR.pv.sets(PLAN_AVP, JSON.stringify(kept));
  KSR.pv.sets("$avp(pusher_aor)", plan.aor);
  KSR.pv.seti("$avp(pusher_after_wake_ms)", plan.timers.afterWakeMs);
}

/** The plan onInvite kept, with the AOR's devices as they are now; null without one (not a pushed call). */
function keptPlan(): CallPlan | null {
  const text = pvString(PLAN_AVP);
  if (!text) return null;
  let plan: CallPlan;
  try {
    plan = JSON.parse(text) as CallPlan;
  } catch (e) {
    logError("unreadable call plan of call-id " + pvString("$ci") + " ignored");
    return null;
  }
  plan.devices = plan.kazooDevice ? [plan.kazooDevice] : devicesOf(plan.aor);
  return plan.devices.length ? plan : null;
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
  keepPlan(plan);
  // No branch of this call may open a connection towards a phone: a TCP/TLS phone whose connection is gone sleeps
  // (iOS closes it), and a new connection would not reach a phone behind NAT anyway. Set before the transaction
  // exists, so its copy of the INVITE (tsilo's late forks, the delivered held call) keeps it.
  KSR.set_forward_no_connect();
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

/**
 * failure_route after invite-first, or request_route when no branch could be sent (a TCP/TLS phone's connection
 * is gone): the registered contacts did not answer in t1, so push.
 */
export function onInviteFirstFailed(): void {
  setVar("pusher_action", "none");
  const plan = keptPlan();
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
    const ended = endCall(call.callRef);
    if (ended) tellPushedPhonesCallEnded(ended, "cancelled");
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
  // Asserted identities count only from calls.trustedSources or kazoo.trustedSources (caller-id.ts): from
  // anyone else only From is read.
  const source = pvString("$si");
  const trustedSource =
    isInCidrList(source, config.calls.trustedSources) || isInCidrList(source, config.kazoo.trustedSources);
  const callerHeaders: { [name: string]: string | null } = {};
  for (let i = trustedSource ? 0 : CALLER_ID_HEADERS.length - 1; i < CALLER_ID_HEADERS.length; i++)
    callerHeaders[CALLER_ID_HEADERS[i]] = headerText(CALLER_ID_HEADERS[i]);
  const now = Date.now();
  const call: PushedCall = {
    callRef: currentCallRef(),
    tindex: Number(pvString("$T(id_index)")),
    tlabel: Number(pvString("$T(id_label)")),
    state: state,
    aor: plan.aor,
    callId: pvString("$ci"),
    fromTag: pvString("$ft"),
    caller: pickCallerId(callerHeaders, trustedSource),
    proxy: plan.devices[plan.devices.length - 1].proxy,
    accountRef: plan.accountRef,
    devices: plan.devices.map(function (device: DeviceRecord): CallDevice {
      return pushDeviceOf(device);
    }),
    failedInstances: [],
    forkedInstances: [],
    heldAtMs: now,
    ringsUntilMs: now + plan.timers.pushWaitMs,
    registrationToken: issueRegistrationToken(plan.aor),
  };
  const admission = holdCall(call, {
    maxHeld: config.calls.maxHeldPerAor,
    maxPushesPerMinute: config.calls.maxPushesPerAorPerMinute,
  });
  if (admission !== "admitted") {
    refuseOverLimit(call, admission);
    return false;
  }
  countCall("held");
  const provisional = config.calls.provisional;
  setVar("pusher_provisional_code", provisional === "none" ? 0 : Number(provisional));
  setVar("pusher_provisional_reason", provisional === "none" ? "" : PROVISIONAL_REASONS[provisional]);
  return true;
}

/** A call over its callee's limits (call-limits.ts): 486 when too many are held, 480 without a push when pushed too often. */
function refuseOverLimit(call: PushedCall, admission: Admission): void {
  if (call.registrationToken) forgetRegistrationToken(call.registrationToken);
  const busy = admission === "busy";
  countCall(busy ? "busy" : "push_limited");
  setVar("pusher_action", busy ? "busy" : "unavailable");
  if (firstTimeIn("call-limit:" + call.aor, LIMIT_LOG_INTERVAL_S)) {
    const config = currentConfig();
    logWarn(
      "call-id=" +
        call.callId +
        " to aor=" +
        call.aor +
        " refused: " +
        (busy
          ? "calls.maxHeldPerAor (" + config.calls.maxHeldPerAor + ") calls are held for it (486)"
          : "its phones were pushed calls.maxPushesPerAorPerMinute (" +
            config.calls.maxPushesPerAorPerMinute +
            ") times in the last minute (480, no push)") +
        "; such refusals of this AOR are logged once a minute",
    );
  }
}

/** What a push request names of a device: the protocol's fields only (a call's devices also keep an alert token). */
function requestDevice(device: CallDevice, token: string, pushKind: PushKind | undefined): PushDevice {
  const named = Object.assign({}, device) as CallDevice;
  delete named.alertToken;
  named.token = token;
  if (pushKind) named.pushKind = pushKind;
  else delete named.pushKind;
  return named;
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
  // A call-ended push outlives its call: it is remembered on its own, so that its result can drop a dead token.
  if (endReason) relayRememberedPush(request);
  else relayToHelper(JSON.stringify(request));
  logInfo(
    (endReason ? "call-ended push (" + endReason + ")" : "push") +
      " requested call-id=" +
      call.callId +
      " aor=" +
      call.aor +
      " app=" +
      device.appId +
      " token=" +
      maskToken(device.token),
  );
}

/** After t_suspend: one push request per device to the helper. */
export function sendPushes(): void {
  const call = findCall(currentCallRef());
  if (!call) return;
  for (let i = 0; i < call.devices.length; i++)
    relayPush(call, requestDevice(call.devices[i], call.devices[i].token, call.devices[i].pushKind));
}

/**
 * Where a call-ended notice for `device` goes, or null for none. Apple: an alert push to an alert token only (an
 * alert push to a PushKit token is refused by APNs with DeviceTokenNotForTopic): the device's own when it
 * registered only one, else the `:remote` token of Linphone's two-token form. A device with only a PushKit token
 * gets none: a second VoIP push makes an app that ignores `event` (older Kazoo apps) ring a ghost call. Its app
 * may ask for one with apple.callEndedVoipPush (the app reports that VoIP push to CallKit and ends it at once, as
 * iOS 13+ requires of every VoIP push). A Web Push subscription known without keys (RFC 8599) only gets messages
 * without payload: one would read as another call, not as its end.
 */
function callEndedTarget(device: CallDevice): PushDevice | null {
  if (device.provider === "webpush") return device.webpush ? requestDevice(device, device.token, undefined) : null;
  if (device.provider !== "apple") return requestDevice(device, device.token, device.pushKind);
  if (device.pushKind === "alert") return requestDevice(device, device.token, "alert");
  if (device.alertToken) return requestDevice(device, device.alertToken, "alert");
  const config = currentConfig();
  const app = has(config.apps, device.appId) ? config.apps[device.appId] : null;
  return app && app.apple && app.apple.callEndedVoipPush ? requestDevice(device, device.token, "voip") : null;
}

/**
 * A pushed phone has told iOS CallKit a call is ringing; it must learn at once that the call is over, or it
 * shows a ghost call. Every pushed device with no branch of the call gets a call-ended push where it can take
 * one (callEndedTarget); those with a branch get tm's CANCEL instead, those whose push failed (or whose REGISTER
 * failed: register-after-save.ts) nothing.
 */
export function tellPushedPhonesCallEnded(call: PushedCall, reason: CallEndReason, answeredBy?: string | null): void {
  const config = currentConfig();
  if (reason === "cancelled" && !config.calls.missedCallPush) return;
  if (reason === "answered-elsewhere" && !config.calls.answeredElsewherePush) return;
  for (let i = 0; i < call.devices.length; i++) {
    const device = call.devices[i];
    if (device.instance === answeredBy) continue;
    if (call.forkedInstances.indexOf(device.instance) >= 0 || call.failedInstances.indexOf(device.instance) >= 0)
      continue;
    const target = callEndedTarget(device);
    if (target) relayPush(call, target, reason);
  }
}

/** onreply_route of a delivered call, 2xx: the call is answered; the other pushed phones are told. */
export function onAnswered(): void {
  const call = endCall(currentCallRef());
  if (call)
    tellPushedPhonesCallEnded(call, "answered-elsewhere", instanceAt(call.aor, pvString("$si"), pvString("$sp")));
}

/**
 * failure_route of a held or delivered call, or a held call whose delivery could not be sent: forget it. A call still
 * known here ended unanswered, and not by a CANCEL (onCancel forgot those): t2 passed with no REGISTER, t3 with no
 * answer, the woken phone declined or could not be reached. Its pushed phones may show it ringing, so they are told
 * as for a cancel (`call-cancelled`, calls.missedCallPush). `before-pushes`: t_suspend() failed, nothing was pushed.
 */
export function onCallEnded(when?: string): void {
  const call = endCall(currentCallRef());
  countCallEnded(call);
  if (call && when !== "before-pushes") tellPushedPhonesCallEnded(call, "cancelled");
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
