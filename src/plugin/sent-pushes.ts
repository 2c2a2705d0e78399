// Pushes whose results may come when no held call can match them (helper-messages.ts matches a call push's result
// through its held call while the call lasts). Kept in htable pusher_calls until their result comes (or the item
// expires), so that a result changes a record only when it answers a push the plugin sent, and a dead token it
// reports is dropped as a call push's is (docs/errors.md):
//   sent:<purpose>:<pid>.<time>.<n>  one push for no call: a call-ended notice (its call is forgotten as it goes), a
//                                    message or refresh push; a result must name its ref, Call-ID, AOR, instance
//                                    and token
//   sent:<tindex>:<tlabel>           the pushes of a call that ended while their results may still come (the caller
//                                    cancelled quickly, another phone answered first): written once as the call is
//                                    forgotten (hold-call.ts), nothing per push; a result must name the call's ref,
//                                    Call-ID and AOR, and the instance and token of one of them
import { PushDevice, PushProvider, PushRequest, PushResult } from "../protocol";
import { relayToHelper } from "./helper-link";
import { CALLS_TABLE, getJson, remove } from "./shared-state";
import { pvString } from "./sip-message";

/** What a result must name to be this push's, and the provider of its token (device-store.ts keys tokens by it). */
export interface SentPush {
  callId: string;
  aor: string;
  instance: string;
  token: string;
  provider: PushProvider;
}

// The helper retries a call-ended push up to 30 s after it got it (retry-policy.ts CALL_ENDED_WINDOW_MS), any other
// (a call's push too) until its ringsUntilMs; its last request may take its request timeout (10 s) on top. A result
// later than this margin finds no item and changes nothing.
const CALL_ENDED_WINDOW_MS = 30000;
const MARGIN_S = 60;

/** Per process: with the pid and the time, it makes each push's ref unique. */
let sequence = 0;

function sentKey(ref: string): string {
  return "sent:" + ref;
}

/**
 * Relays a push that belongs to no held call (its callRef is replaced) and remembers it until its result comes.
 * Its ref, `<purpose>:<pid>.<time>.<n>`, never looks like a call's `<tindex>:<tlabel>`.
 */
export function relayRememberedPush(request: PushRequest): void {
  const now = Date.now();
  const ref = (request.purpose || "call") + ":" + pvString("$pp") + "." + now.toString(36) + "." + ++sequence;
  request.callRef = ref;
  const sent: SentPush = {
    callId: request.callId,
    aor: request.aor,
    instance: request.device.instance,
    token: request.device.token,
    provider: request.device.provider,
  };
  const helperWindowMs = Math.max(request.ringsUntilMs - now, CALL_ENDED_WINDOW_MS);
  KSR.htable.sht_setxs(CALLS_TABLE, sentKey(ref), JSON.stringify(sent), Math.ceil(helperWindowMs / 1000) + MARGIN_S);
  relayToHelper(JSON.stringify(request));
}

/**
 * The remembered push `result` answers, forgotten now (a push has one result); null when the plugin remembers none
 * with that ref, Call-ID, AOR, instance and token (a call's push, one past its margin, or a result nobody asked for).
 */
export function takeSentPush(result: PushResult): SentPush | null {
  // A call's ref is `<tindex>:<tlabel>`: its results need no read here.
  if (!/^[a-z]/.test(result.callRef)) return null;
  const key = sentKey(result.callRef);
  const sent = getJson<SentPush>(CALLS_TABLE, key);
  if (
    !sent ||
    sent.callId !== result.callId ||
    sent.aor !== result.aor ||
    sent.instance !== result.instance ||
    sent.token !== result.token
  )
    return null;
  // Results come one at a time, in evapi's dispatcher process: no other process reads or removes this item.
  remove(CALLS_TABLE, key);
  return sent;
}

/** One push of an ended call, as a result must name it (its ref is the item's key). */
interface CallPush {
  instance: string;
  token: string;
  provider: PushProvider;
}

/** The item of an ended call: its Call-ID and AOR, its pushes still without a result, and when it expires (epoch ms). */
interface EndedCallPushes {
  callId: string;
  aor: string;
  untilMs: number;
  pushes: CallPush[];
}

/** What rememberCallPushes reads of a call that ends (hold-call.ts PushedCall). */
export interface EndingCall {
  callRef: string;
  callId: string;
  aor: string;
  devices: PushDevice[];
  failedInstances: string[];
  ringsUntilMs: number;
}

/**
 * The call `call.callRef` ends (under its AOR's lock, before its call item goes: a result the evapi dispatcher
 * cannot match to the call finds this item). Its pushes that have not failed already are remembered, unless the
 * helper is past retrying them. One htable write per ended call, none per push: the push path stays as it was.
 */
export function rememberCallPushes(call: EndingCall): void {
  const now = Date.now();
  if (now > call.ringsUntilMs + MARGIN_S * 1000) return;
  const pushes: CallPush[] = [];
  for (let i = 0; i < call.devices.length; i++) {
    const device = call.devices[i];
    if (call.failedInstances.indexOf(device.instance) < 0)
      pushes.push({ instance: device.instance, token: device.token, provider: device.provider });
  }
  if (!pushes.length) return;
  const ttlS = Math.ceil(Math.max(call.ringsUntilMs - now, 0) / 1000) + MARGIN_S;
  const ended: EndedCallPushes = { callId: call.callId, aor: call.aor, untilMs: now + ttlS * 1000, pushes: pushes };
  KSR.htable.sht_setxs(CALLS_TABLE, sentKey(call.callRef), JSON.stringify(ended), ttlS);
}

/**
 * The push of an ended call that `result` answers, forgotten now; null when the plugin remembers none with that
 * ref, Call-ID, AOR, instance and token (the AOR is the one whose device a dead token removes: a result must not
 * name another). Only a result that drops a token asks: its call is gone, nothing else could change.
 */
export function takeEndedCallPush(result: PushResult): CallPush | null {
  if (/^[a-z]/.test(result.callRef)) return null;
  const key = sentKey(result.callRef);
  const ended = getJson<EndedCallPushes>(CALLS_TABLE, key);
  const pushes = ended && ended.callId === result.callId && ended.aor === result.aor ? ended.pushes : [];
  for (let i = 0; i < pushes.length; i++) {
    if (pushes[i].instance !== result.instance || pushes[i].token !== result.token) continue;
    const push = pushes.splice(i, 1)[0];
    // Only evapi's dispatcher process reads or changes the item once it is written (see takeSentPush). Rewritten
    // with what is left of its time (sht_sets would give it the table's autoexpire).
    const ttlS = Math.ceil(((ended as EndedCallPushes).untilMs - Date.now()) / 1000);
    if (pushes.length && ttlS > 0) KSR.htable.sht_setxs(CALLS_TABLE, key, JSON.stringify(ended), ttlS);
    else remove(CALLS_TABLE, key);
    return push;
  }
  return null;
}
