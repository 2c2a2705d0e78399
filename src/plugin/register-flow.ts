// The REGISTER side, run after a successful save("location"): store push devices, then hand every call
// waiting for this AOR to its contacts, the one that just registered among them. Sets for kamailio/pusher.cfg:
//   $var(pusher_resume) 1 when a held call is to be continued, with $var(pusher_tindex)/$var(pusher_tlabel);
//   $var(pusher_after_wake_ms) its ring timer (t3).
// More than one waiting call: cfg calls pusher_next_held_call after each t_continue.

import { DeviceRecord, saveDevice } from "./device-store";
import { endCall, takeCallsToFork, takeHeldCalls } from "./hold-call";
import { logInfo, maskToken } from "./log";
import { parseContacts, ParsedContact } from "./parse-contact";
import { deviceInstance, parsePushParams } from "./parse-push-params";
import { repairContact } from "./repair-contact";
import { currentConfig } from "./settings";
import { firstTimeIn } from "./shared-state";
import { matchUserAgent } from "./user-agent-rules";
import { aorOf, header, pvString, receivingProxyUri, setVar } from "./sip-message";

/** Expires of one contact: its `expires` param, else the Expires header, else the registrar default (>0). */
function contactExpires(contact: ParsedContact): number {
  const param = contact.headerParams["expires"];
  const value = param !== undefined ? param : header("Expires");
  if (value === null || value === undefined || value === "") return 3600;
  const seconds = parseInt(value, 10);
  return isNaN(seconds) ? 3600 : seconds;
}

/** Before save("location"): sets $var(pusher_contact) to a repaired Contact value, or "" (see repair-contact). */
export function repairContactHeader(): void {
  const contactHeader = header("Contact");
  const repaired = contactHeader ? repairContact(contactHeader) : null;
  setVar("pusher_contact", repaired || "");
}

export function onRegister(): void {
  setVar("pusher_resume", 0);
  setVar("pusher_resume_queue", "");
  const contactHeader = header("Contact");
  if (!contactHeader) return;
  const contacts = parseContacts(contactHeader).filter(function (contact) {
    return contactExpires(contact) > 0;
  });
  if (!contacts.length) return;
  const aor = aorOf(pvString("$tU"), pvString("$td"));
  storeDevices(aor, contacts);
  const instance = deviceInstance(contacts[contacts.length - 1]);
  forkRingingCalls(aor, instance);
  deliverHeldCalls(aor, instance);
}

function storeDevices(aor: string, contacts: ParsedContact[]): void {
  const config = currentConfig();
  const userAgent = pvString("$ua");
  for (let i = 0; i < contacts.length; i++) {
    const binding = parsePushParams(contacts[i]);
    if (!binding) continue;
    if (!matchUserAgent(config.userAgents, userAgent)) {
      if (firstTimeIn("no-ua-rule:" + userAgent, 3600)) {
        logInfo("push params from User-Agent '" + userAgent + "' ignored: no User-Agent rule matches it (pusher ua add)");
      }
      continue;
    }
    const record: DeviceRecord = {
      aor: aor,
      instance: binding.instance,
      appId: binding.appId,
      provider: binding.provider,
      token: binding.token,
      userAgent: userAgent,
      proxy: receivingProxyUri(),
      registeredAtMs: Date.now(),
    };
    if (saveDevice(record)) {
      logInfo("device stored aor=" + aor + " instance=" + binding.instance + " app=" + binding.appId + " token=" + maskToken(binding.token));
    }
  }
}

/**
 * A phone registering while a call to its AOR already rings elsewhere (another phone woke first) gets a
 * branch of that call too: tsilo appends the AOR's new contacts to the running transaction (never to a
 * suspended one: those are continued by deliverHeldCalls). Each phone gets one branch per call.
 */
function forkRingingCalls(aor: string, instance: string): void {
  const calls = takeCallsToFork(aor, instance);
  for (let i = 0; i < calls.length; i++) {
    const appended = KSR.tsilo.ts_append_to_uri(calls[i].tindex, calls[i].tlabel, "location", "sip:" + aor);
    if (appended > 0) {
      logInfo("device registered, forking call-id=" + calls[i].callId + " aor=" + aor + " to it");
    } else if (appended === -2 || appended === -3) {
      endCall(calls[i].callRef); // cancelled or already answered: nothing left to fork
    }
  }
}

function deliverHeldCalls(aor: string, instance: string): void {
  const calls = takeHeldCalls(aor, instance);
  if (!calls.length) return;
  setVar("pusher_after_wake_ms", currentConfig().timers.afterWakeMs);
  const refs: string[] = [];
  for (let i = 0; i < calls.length; i++) {
    logInfo("device registered, delivering call-id=" + calls[i].callId + " aor=" + aor);
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
