// Calls the plugin looks after, in htable (any process may resume or fork a call):
//   call:<callRef>    → PushedCall: a call whose callee's phones were pushed
//   wait:<aor>        → callRefs held (tm-suspended) until a phone of that AOR registers
//   ringing:<aor>     → callRefs delivered and still ringing: a phone registering later is forked to them
//   callid:<Call-ID>  → callRef, so a CANCEL finds its call
// Every change happens under the AOR's slot lock, so a REGISTER, a CANCEL and a push failure cannot both
// take the same call.

import { Caller, CallRef } from "../protocol";
import { Admission, admitPushedCall, CallLimits } from "./call-limits";
import { markCallsOf, markedAors } from "./cluster";
import { CallDevice } from "./device-store";
import { forgetRegistrationToken } from "./register-token";
import { rememberCallPushes } from "./sent-pushes";
import { CALLS_TABLE, getJson, getString, remove, setJson, withLock } from "./shared-state";

export type CallState = "held" | "ringing";

export interface PushedCall {
  callRef: CallRef;
  tindex: number;
  tlabel: number;
  state: CallState;
  aor: string;
  callId: string;
  /** From tag of the INVITE: a CANCEL must match Call-ID and From tag to end the call. */
  fromTag: string;
  caller: Caller;
  proxy: string;
  /** Kazoo's account reference (Kazoo mode), passed on in the push. */
  accountRef: string | null;
  devices: CallDevice[];
  /** Instances whose push failed for good; when every device has failed a held call is answered at once. */
  failedInstances: string[];
  /** Instances that registered and got a branch of this call: each gets exactly one. */
  forkedInstances: string[];
  heldAtMs: number;
  ringsUntilMs: number;
  /** The one-time token its pushes carry (see register-token.ts). */
  registrationToken?: string;
}

function callKey(callRef: CallRef): string {
  return "call:" + callRef;
}

function waitKey(aor: string): string {
  return "wait:" + aor;
}

function ringingKey(aor: string): string {
  return "ringing:" + aor;
}

function callIdKey(callId: string): string {
  return "callid:" + callId;
}

/** A phone that registers: its device instance and the push tokens its REGISTER carries. */
export interface RegisteringPhone {
  instance: string;
  tokens: string[];
}

/**
 * The instances of `call` that are this phone: its own instance, and any pushed device with one of its tokens
 * (a phone without +sip.instance or reg-id is keyed by its contact URI, which changes with its socket).
 */
function instancesOf(call: PushedCall, phone: RegisteringPhone): string[] {
  const instances = [phone.instance];
  for (let i = 0; i < call.devices.length; i++) {
    if (phone.tokens.indexOf(call.devices[i].token) >= 0 && instances.indexOf(call.devices[i].instance) < 0) {
      instances.push(call.devices[i].instance);
    }
  }
  return instances;
}

/** Records that `phone` has a branch of `call`; false when it already had one. */
function markForked(call: PushedCall, phone: RegisteringPhone): boolean {
  const instances = instancesOf(call, phone);
  for (let i = 0; i < instances.length; i++) if (call.forkedInstances.indexOf(instances[i]) >= 0) return false;
  for (let i = 0; i < instances.length; i++) call.forkedInstances.push(instances[i]);
  return true;
}

export function callRefOf(tindex: number, tlabel: number): CallRef {
  return tindex + ":" + tlabel;
}

export function findCall(callRef: CallRef): PushedCall | null {
  return getJson<PushedCall>(CALLS_TABLE, callKey(callRef));
}

function addToList(key: string, callRef: CallRef): void {
  const list = getJson<CallRef[]>(CALLS_TABLE, key) || [];
  if (list.indexOf(callRef) < 0) list.push(callRef);
  setJson(CALLS_TABLE, key, list);
}

function removeFromList(key: string, callRef: CallRef): void {
  const list = getJson<CallRef[]>(CALLS_TABLE, key);
  if (!list) return;
  const left = list.filter(function (ref) {
    return ref !== callRef;
  });
  if (left.length) setJson(CALLS_TABLE, key, left);
  else remove(CALLS_TABLE, key);
}

function forget(call: PushedCall): void {
  // Results of its pushes may still come (the helper retries until ringsUntilMs): one that says a token is dead
  // drops it all the same (sent-pushes.ts). Written before the call item goes: a result always finds one of them.
  rememberCallPushes(call);
  remove(CALLS_TABLE, callKey(call.callRef));
  if (call.registrationToken) forgetRegistrationToken(call.registrationToken);
  remove(CALLS_TABLE, callIdKey(call.callId));
  removeFromList(waitKey(call.aor), call.callRef);
  removeFromList(ringingKey(call.aor), call.callRef);
  markCluster(call.aor);
}

/** In a cluster, the other nodes learn whether this node still holds or rings calls for `aor` (cluster.ts). */
function markCluster(aor: string): void {
  markCallsOf(aor, getString(CALLS_TABLE, waitKey(aor)) !== null || getString(CALLS_TABLE, ringingKey(aor)) !== null);
}

/**
 * Drops this node's cluster marks of AORs it holds and rings no call for any more (a node that died with calls
 * held gets its marks back by DMQ sync when it restarts; each would cost every REGISTER of its AOR a useless KDMQ
 * request until it expired). The timer runs it every minute; each AOR under its lock, as every change of a mark.
 */
export function dropStaleMarks(): void {
  const aors = markedAors();
  for (let i = 0; i < aors.length; i++) {
    const aor = aors[i];
    withLock(CALLS_TABLE, waitKey(aor), function () {
      markCluster(aor);
    });
  }
}

/**
 * Records a call whose callee's phones are pushed: held (about to be suspended) or already ringing, unless the
 * AOR's limits refuse it (call-limits.ts): then nothing is recorded.
 */
export function holdCall(call: PushedCall, limits: CallLimits): Admission {
  return withLock(CALLS_TABLE, waitKey(call.aor), function () {
    const heldNow =
      (getJson<CallRef[]>(CALLS_TABLE, waitKey(call.aor)) || []).length +
      (getJson<CallRef[]>(CALLS_TABLE, ringingKey(call.aor)) || []).length;
    const admission = admitPushedCall(call.aor, heldNow, call.heldAtMs, limits);
    if (admission !== "admitted") return admission;
    setJson(CALLS_TABLE, callKey(call.callRef), call);
    KSR.htable.sht_sets(CALLS_TABLE, callIdKey(call.callId), call.callRef);
    addToList(call.state === "held" ? waitKey(call.aor) : ringingKey(call.aor), call.callRef);
    markCluster(call.aor);
    return admission;
  });
}

/** Whether this node has calls ringing for `aor` (a phone that registers gets a branch of each). */
export function hasRingingCalls(aor: string): boolean {
  return getString(CALLS_TABLE, ringingKey(aor)) !== null;
}

/** A ringing call whose branches all failed goes back to waiting for a phone to register. */
export function holdRingingCall(callRef: CallRef): PushedCall | null {
  const found = findCall(callRef);
  if (!found) return null;
  return withLock(CALLS_TABLE, waitKey(found.aor), function () {
    const call = findCall(callRef);
    if (!call || call.state !== "ringing") return null;
    call.state = "held";
    setJson(CALLS_TABLE, callKey(callRef), call);
    removeFromList(ringingKey(call.aor), callRef);
    addToList(waitKey(call.aor), callRef);
    return call;
  });
}

/**
 * Takes every call held for `aor`: each is handed to exactly one REGISTER, that of `phone`, and from now on
 * rings (later REGISTERs of other phones are forked to it).
 */
export function takeHeldCalls(aor: string, phone: RegisteringPhone): PushedCall[] {
  return withLock(CALLS_TABLE, waitKey(aor), function () {
    const waiting = getJson<CallRef[]>(CALLS_TABLE, waitKey(aor));
    const calls: PushedCall[] = [];
    if (!waiting) return calls;
    for (let i = 0; i < waiting.length; i++) {
      const call = findCall(waiting[i]);
      if (!call || call.state !== "held") continue;
      call.state = "ringing";
      markForked(call, phone);
      setJson(CALLS_TABLE, callKey(call.callRef), call);
      addToList(ringingKey(aor), call.callRef);
      calls.push(call);
    }
    remove(CALLS_TABLE, waitKey(aor));
    markCluster(aor);
    return calls;
  });
}

/**
 * Ends the calls held for `aor` that pushed one of `tokens`: their phone's REGISTER failed (RFC 8599 §5.6.2). In
 * each one returned, that phone's devices count as failed: it got the REGISTER's error, so no call-ended push.
 */
export function endHeldCallsPushedTo(aor: string, tokens: string[]): PushedCall[] {
  return withLock(CALLS_TABLE, waitKey(aor), function () {
    const waiting = getJson<CallRef[]>(CALLS_TABLE, waitKey(aor)) || [];
    const ended: PushedCall[] = [];
    for (let i = 0; i < waiting.length; i++) {
      const call = findCall(waiting[i]);
      if (!call || call.state !== "held") continue;
      const phoneInstances: string[] = [];
      for (let j = 0; j < call.devices.length; j++)
        if (tokens.indexOf(call.devices[j].token) >= 0) phoneInstances.push(call.devices[j].instance);
      if (!phoneInstances.length) continue;
      forget(call);
      // After forget: the phone's push is remembered as the others are (its result may still come), not as failed.
      call.failedInstances = call.failedInstances.concat(phoneInstances);
      ended.push(call);
    }
    return ended;
  });
}

/** Ringing calls of `aor` that `phone` has no branch of yet; each is marked as forked to it. */
export function takeCallsToFork(aor: string, phone: RegisteringPhone): PushedCall[] {
  return withLock(CALLS_TABLE, waitKey(aor), function () {
    const ringing = getJson<CallRef[]>(CALLS_TABLE, ringingKey(aor));
    const calls: PushedCall[] = [];
    if (!ringing) return calls;
    for (let i = 0; i < ringing.length; i++) {
      const call = findCall(ringing[i]);
      if (!call || !markForked(call, phone)) continue;
      setJson(CALLS_TABLE, callKey(call.callRef), call);
      calls.push(call);
    }
    return calls;
  });
}

/** Forgets a call that ended (answered, timed out, cancelled, failed). Returns it, or null if already gone. */
export function endCall(callRef: CallRef): PushedCall | null {
  const call = findCall(callRef);
  if (!call) return null;
  return withLock(CALLS_TABLE, waitKey(call.aor), function () {
    const current = findCall(callRef);
    if (!current) return null;
    forget(current);
    return current;
  });
}

/** The call a CANCEL (Call-ID + From tag) is for, or null. */
export function findCallByCallId(callId: string, fromTag: string): PushedCall | null {
  const callRef = getString(CALLS_TABLE, callIdKey(callId));
  const call = callRef ? findCall(callRef) : null;
  return call && call.fromTag === fromTag ? call : null;
}

/**
 * Records that the push to one device failed for good. Returns the call when it is held and that was the
 * last device able to wake: the call is then forgotten and the caller must be answered now.
 */
export function recordPushFailure(aor: string, callRef: CallRef, instance: string): PushedCall | null {
  return withLock(CALLS_TABLE, waitKey(aor), function () {
    const call = findCall(callRef);
    if (!call) return null;
    if (call.failedInstances.indexOf(instance) < 0) call.failedInstances.push(instance);
    if (call.state !== "held" || call.failedInstances.length < call.devices.length) {
      setJson(CALLS_TABLE, callKey(callRef), call);
      return null;
    }
    forget(call);
    return call;
  });
}
