// REGISTER, after save("location") (register-before-save.ts stored the device records before it): after a
// successful save (route PUSHER_REGISTER_AFTER_SAVE), hand every call waiting for this AOR to its contacts, the one
// that just registered among them; after a REGISTER the cfg answered with an error (route
// PUSHER_REGISTER_AFTER_ERROR), end the held calls of a pushed phone at once.
// Sets for kamailio/pusher.cfg:
//   $var(pusher_resume) 1 when a held call is to be continued, with $var(pusher_tindex)/$var(pusher_tlabel).
// More than one waiting call: cfg calls pusher_next_held_call after each t_continue.

import { readClusterMessage, tellNodesHoldingCalls, waitForBinding } from "./cluster";
import {
  RegisteringPhone,
  endCall,
  hasRingingCalls,
  endHeldCallsPushedTo,
  takeCallsToFork,
  takeHeldCalls,
} from "./hold-call";
import { tellPushedPhonesCallEnded } from "./invite-flow";
import { logInfo } from "./log";
import { CLUSTER_MESSAGE_VERSION } from "../protocol";
import { contactExpires, ParsedContact, parseContacts } from "./parse-contact";
import { deviceInstance, readPushParams } from "./parse-push-params";
import { aorOf, header, pvString, setVar } from "./sip-message";

export function onRegister(): void {
  setVar("pusher_resume", 0);
  setVar("pusher_resume_queue", "");
  const registering = registeringPhone();
  if (!registering) return;
  forkRingingCalls(registering.aor, registering.phone);
  deliverHeldCalls(registering.aor, registering.phone);
}

interface Registering {
  aor: string;
  phone: RegisteringPhone;
  /** The Contact URI of the binding that registers (the last one with an expiry). */
  uri: string;
}

/** The phone this REGISTER registers, or null for a fetch or a de-REGISTER. */
function registeringPhone(): Registering | null {
  const contactHeader = header("Contact");
  if (!contactHeader) return null;
  const expiresHeader = header("Expires");
  const contacts = parseContacts(contactHeader).filter(function (contact) {
    return contactExpires(contact, expiresHeader) > 0;
  });
  if (!contacts.length) return null;
  const registering = contacts[contacts.length - 1];
  return {
    aor: aorOf(pvString("$tU"), pvString("$td")),
    phone: { instance: deviceInstance(registering), tokens: tokensOf(contacts) },
    uri: registering.uri,
  };
}

/**
 * REGISTER, before save() and the device records' write (register-before-save.ts, or route
 * PUSHER_INTERNAL_TELL_CLUSTER for one cfg answers alone), when $var(pusher_calls_elsewhere) is 1: another node
 * holds or rings a call for the AOR (cluster.ts). Telling it first saves it the database write and the answer.
 */
export function tellClusterOfRegistration(): void {
  if (pvString("$var(pusher_calls_elsewhere)") !== "1") return;
  const registering = registeringPhone();
  if (!registering) return;
  tellNodesHoldingCalls(registering.aor, {
    v: CLUSTER_MESSAGE_VERSION,
    type: "registered",
    aor: registering.aor,
    instance: registering.phone.instance,
    tokens: registering.phone.tokens,
    contact: registering.uri,
    path: header("Path") || "",
    registeredAt: pvString("$var(pusher_register_at)"),
  });
}

/**
 * request_route, a KDMQ request of peer "pusher" from another node of the cluster. A phone registered there: its
 * calls held here are delivered through that node (route PUSHER_INTERNAL_DELIVER_REMOTE, with the
 * $var(pusher_remote_*) set by readClusterMessage); a call ringing here is forked to it. A pushed phone's REGISTER
 * failed there: its calls held here end (route PUSHER_INTERNAL_PUSH_FAILED, $var(pusher_resume_failed) 1). Sets
 * $var(pusher_resume…) as onRegister does.
 */
export function onClusterMessage(): void {
  setVar("pusher_resume", 0);
  setVar("pusher_resume_queue", "");
  setVar("pusher_resume_failed", 0);
  const message = readClusterMessage();
  if (!message) return;
  if (message.type === "register-failed") {
    setVar("pusher_resume_failed", 1);
    endCallsOfFailedRegister(message.aor, message.tokens, message.code + " on another node");
    return;
  }
  // tsilo forks a ringing call to the phones this node's usrloc holds: the new binding must be there first. It comes
  // by dmq_usrloc, which this KDMQ request can overtake.
  if (hasRingingCalls(message.aor)) waitForBinding(message.aor, message.contact);
  const phone: RegisteringPhone = { instance: message.instance, tokens: message.tokens };
  forkRingingCalls(message.aor, phone);
  deliverHeldCalls(message.aor, phone);
}

/** The push tokens a REGISTER's contacts carry (whatever their dialect). */
function tokensOf(contacts: ParsedContact[]): string[] {
  const tokens: string[] = [];
  for (let i = 0; i < contacts.length; i++) {
    const reading = readPushParams(contacts[i]);
    if (reading.kind !== "binding") continue;
    tokens.push(reading.binding.token);
    if (reading.binding.alertToken) tokens.push(reading.binding.alertToken);
  }
  return tokens;
}

/**
 * A phone registering while a call to its AOR already rings elsewhere (another phone woke first) gets a
 * branch of that call too: tsilo appends the AOR's new contacts to the running transaction (never to a
 * suspended one: those are continued by deliverHeldCalls). Each phone gets one branch per call.
 */
function forkRingingCalls(aor: string, phone: RegisteringPhone): void {
  const calls = takeCallsToFork(aor, phone);
  for (let i = 0; i < calls.length; i++) {
    const appended = KSR.tsilo.ts_append_to_uri(calls[i].tindex, calls[i].tlabel, "location", "sip:" + aor);
    if (appended > 0) {
      logInfo("device registered, forking call-id=" + calls[i].callId + " aor=" + aor + " to it");
    } else if (appended === -2 || appended === -3) {
      endCall(calls[i].callRef); // cancelled or already answered: nothing left to fork
    }
  }
}

function deliverHeldCalls(aor: string, phone: RegisteringPhone): void {
  const calls = takeHeldCalls(aor, phone);
  if (!calls.length) return;
  const refs: string[] = [];
  for (let i = 0; i < calls.length; i++) {
    logInfo("device registered, delivering call-id=" + calls[i].callId + " aor=" + aor);
    refs.push(calls[i].callRef);
  }
  setVar("pusher_resume_queue", refs.join(","));
  nextHeldCall();
}

/**
 * request_route, after the cfg answered a REGISTER with an error (`code`, the first jsdt_run parameter: the
 * code sent, or any text when unknown).
 * RFC 8599 §5.6.2: when the REGISTER of a pushed phone (same token) fails other than with a 401/407 challenge,
 * its held calls get their final reply at once instead of at t2. Sets the same $var(pusher_resume…) as
 * onRegister, for cfg to continue each call into PUSHER_INTERNAL_PUSH_FAILED.
 */
export function onRegisterFailed(code: string): void {
  setVar("pusher_resume", 0);
  setVar("pusher_resume_queue", "");
  if (code === "401" || code === "407" || /^2/.test(code || "")) return;
  const contactHeader = header("Contact");
  const tokens = tokensOf(contactHeader ? parseContacts(contactHeader) : []);
  if (!tokens.length) return;
  const aor = aorOf(pvString("$tU"), pvString("$td"));
  // In a cluster the pushed phone's calls may be held on another node (cluster.ts): it ends its own.
  tellNodesHoldingCalls(aor, {
    v: CLUSTER_MESSAGE_VERSION,
    type: "register-failed",
    aor: aor,
    tokens: tokens,
    code: code,
  });
  endCallsOfFailedRegister(aor, tokens, code);
}

/** Queues the held calls of `aor` pushed to one of `tokens` for cfg to end (RFC 8599 §5.6.2). */
function endCallsOfFailedRegister(aor: string, tokens: string[], code: string): void {
  const calls = endHeldCallsPushedTo(aor, tokens);
  if (!calls.length) return;
  const refs: string[] = [];
  for (let i = 0; i < calls.length; i++) {
    logInfo(
      "REGISTER of a pushed phone failed with " + code + ": ending held call-id=" + calls[i].callId + " aor=" + aor,
    );
    // Its other pushed phones may show the call ringing: told as when t2 passes (that phone got the error).
    tellPushedPhonesCallEnded(calls[i], "cancelled");
    refs.push(calls[i].callRef);
  }
  setVar("pusher_resume_queue", refs.join(","));
  nextHeldCall();
}

/** Pops the next call of $var(pusher_resume_queue) into $var(pusher_tindex|tlabel); pusher_resume 0 when done. */
export function nextHeldCall(): void {
  const queue = pvString("$var(pusher_resume_queue)");
  if (!queue) {
    setVar("pusher_resume", 0);
    return;
  }
  const refs = queue.split(",");
  const ref = refs.shift() as string;
  const parts = ref.split(":");
  setVar("pusher_tindex", Number(parts[0]));
  setVar("pusher_tlabel", Number(parts[1]));
  setVar("pusher_resume_queue", refs.join(","));
  setVar("pusher_resume", 1);
}
