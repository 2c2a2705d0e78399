// Held calls: INVITEs suspended in tm while their callee's phones are pushed. The state lives in htable
// (any process may resume a call): `call:<callRef>` → HeldCall, `wait:<aor>` → callRefs waiting for that AOR.
// Every change happens under the AOR's slot lock, so a REGISTER and a push failure cannot both take a call.

import { Caller, CallRef, PushDevice } from "../protocol";
import { CALLS_TABLE, getJson, getString, remove, setJson, withLock } from "./shared-state";

export interface HeldCall {
  callRef: CallRef;
  tindex: number;
  tlabel: number;
  aor: string;
  callId: string;
  /** From tag of the INVITE: a CANCEL must match Call-ID and From tag to end the held call. */
  fromTag: string;
  caller: Caller;
  proxy: string;
  devices: PushDevice[];
  /** Instances whose push failed for good; when every device has failed the caller is answered at once. */
  failedInstances: string[];
  heldAtMs: number;
  ringsUntilMs: number;
}

function callKey(callRef: CallRef): string {
  return "call:" + callRef;
}

function waitKey(aor: string): string {
  return "wait:" + aor;
}

function callIdKey(callId: string): string {
  return "callid:" + callId;
}

export function callRefOf(tindex: number, tlabel: number): CallRef {
  return tindex + ":" + tlabel;
}

export function findHeldCall(callRef: CallRef): HeldCall | null {
  return getJson<HeldCall>(CALLS_TABLE, callKey(callRef));
}

export function holdCall(call: HeldCall): void {
  withLock(CALLS_TABLE, waitKey(call.aor), function () {
    setJson(CALLS_TABLE, callKey(call.callRef), call);
    KSR.htable.sht_sets(CALLS_TABLE, callIdKey(call.callId), call.callRef);
    const waiting = getJson<CallRef[]>(CALLS_TABLE, waitKey(call.aor)) || [];
    if (waiting.indexOf(call.callRef) < 0) waiting.push(call.callRef);
    setJson(CALLS_TABLE, waitKey(call.aor), waiting);
  });
}

function forget(aor: string, callRef: CallRef, callId: string): void {
  remove(CALLS_TABLE, callKey(callRef));
  remove(CALLS_TABLE, callIdKey(callId));
  const waiting = getJson<CallRef[]>(CALLS_TABLE, waitKey(aor));
  if (!waiting) return;
  const left = waiting.filter(function (ref) {
    return ref !== callRef;
  });
  if (left.length) setJson(CALLS_TABLE, waitKey(aor), left);
  else remove(CALLS_TABLE, waitKey(aor));
}

/** Takes every call waiting for `aor`: each is handed to exactly one REGISTER. */
export function takeWaitingCalls(aor: string): HeldCall[] {
  return withLock(CALLS_TABLE, waitKey(aor), function () {
    const waiting = getJson<CallRef[]>(CALLS_TABLE, waitKey(aor));
    const calls: HeldCall[] = [];
    if (!waiting) return calls;
    for (let i = 0; i < waiting.length; i++) {
      const call = findHeldCall(waiting[i]);
      if (!call) continue;
      calls.push(call);
      remove(CALLS_TABLE, callKey(call.callRef));
      remove(CALLS_TABLE, callIdKey(call.callId));
    }
    remove(CALLS_TABLE, waitKey(aor));
    return calls;
  });
}

/** Forgets a call that ended (timeout, cancel, failure). Returns false when it was already gone. */
export function endHeldCall(callRef: CallRef): boolean {
  const call = findHeldCall(callRef);
  if (!call) return false;
  return withLock(CALLS_TABLE, waitKey(call.aor), function () {
    if (!findHeldCall(callRef)) return false;
    forget(call.aor, callRef, call.callId);
    return true;
  });
}

/** The held call a CANCEL (Call-ID + From tag) is for, or null. */
export function findHeldCallByCallId(callId: string, fromTag: string): HeldCall | null {
  const callRef = getString(CALLS_TABLE, callIdKey(callId));
  const call = callRef ? findHeldCall(callRef) : null;
  return call && call.fromTag === fromTag ? call : null;
}

/**
 * Records that the push to one device failed for good. Returns the call when that was the last device
 * still able to ring: the call is then forgotten and the caller must be answered now.
 */
export function recordPushFailure(aor: string, callRef: CallRef, instance: string): HeldCall | null {
  return withLock(CALLS_TABLE, waitKey(aor), function () {
    const call = findHeldCall(callRef);
    if (!call) return null;
    if (call.failedInstances.indexOf(instance) < 0) call.failedInstances.push(instance);
    if (call.failedInstances.length < call.devices.length) {
      setJson(CALLS_TABLE, callKey(callRef), call);
      return null;
    }
    forget(aor, callRef, call.callId);
    return call;
  });
}
