// MESSAGE store-and-wake (docs/messages.md). A MESSAGE to an AOR with push devices is relayed to its registered
// phones first; once no branch can still answer (the failure route, after every branch failed: a late 2xx can no
// longer reach the sender) it is stored on disk, the sender gets 202 Accepted, and every device that can take a push
// other than VoIP gets a message push. When a phone of the AOR registers, its messages go to that phone one at a
// time, oldest first, and each is removed only after the phone's 2xx (uac's event_route[uac:reply]).
// JS decides and records; kamailio/pusher.cfg acts on what it sets:
//   $var(pusher_message_action)  "none" (not ours) | "relay"; $var(pusher_message_wait_ms): how long the
//                                registered phones have to answer; $avp(pusher_message_aor) kept with the transaction
//   $var(pusher_message_code|reason)  the reply to the sender after storing (202, 480, 500, 513)
//   $var(pusher_message_send) 1 with $var(pusher_uac_*): the next stored message to send (route
//                                PUSHER_INTERNAL_SEND_MESSAGE fills $uac_req from them)

import { isInCidrList } from "../ip-match";
import { maskToken } from "../mask-token";
import { PushRequest } from "../protocol";
import { CALLER_ID_HEADERS, pickCallerId } from "./caller-id";
import { devicesOf } from "./device-store";
import { logInfo, logWarn } from "./log";
import { StoredMessage, oldestMessageOf } from "./message-database";
import { bodyPreviewText, deliveredHeaders, previewOf, storeRefusal, withoutTag } from "./message-content";
import { isUtf8Hex } from "./sip-text";
import {
  clearWaitingIfNone,
  ensureMessagesLoaded,
  keepMessage,
  removeDeliveredMessage,
  waitingCount,
} from "./message-store";
import { parseContacts, contactExpires } from "./parse-contact";
import { nonVoipPushDevice } from "./push-targets";
import { relayRememberedPush } from "./sent-pushes";
import { currentConfig } from "./settings";
import { STATE_TABLE, getJson, getNumber, getString, remove, withLock } from "./shared-state";
import { aorOf, header, headerText, pvString, setVar } from "./sip-message";
import { ruleParamNames, withoutPushParams } from "./strip-push-params";
import { bindingAt } from "./usrloc-bindings";

/** Deliveries in progress: `delivery:<aor>` (one at a time per AOR) and `sending:<id>` (the copy on its way). */
export const MESSAGE_SENDS_TABLE = "pusher_message_sends";
/** uac's evparam of a delivered copy: this prefix, then the message id (event_route[uac:reply] tells ours apart). */
export const EVPARAM_PREFIX = "pusher-message:";
const AOR_AVP = "$avp(pusher_message_aor)";
const DAY_S = 24 * 3600;
// A delivery waits at most tm's fr_timer for the phone's reply (30 s in kamailio/kamailio.cfg): past this, a lock
// or a copy on its way is stale (Kamailio restarted in between).
const DELIVERY_LOCK_S = 120;
// The helper retries a message push this long: the message itself waits on disk whatever happens to its push.
const PUSH_RETRY_WINDOW_MS = 60000;
// uac's $uac_req(callid) holds at most 127 bytes: a longer Call-ID gets a new one from tm.
const MAX_CALL_ID_BYTES = 127;

/** Where the copies go: the binding of the phone that registered, as lookup() would reach it. */
interface Delivery {
  aor: string;
  ruri: string;
  nextHop: string;
  socket: string;
}

/**
 * request_route, MESSAGE without To-tag, before lookup(): a callee with push devices is ours (its registered
 * phones get the MESSAGE, with timers.inviteFirstMs to answer), any other is left to the cfg.
 */
export function onMessage(): void {
  setVar("pusher_message_action", "none");
  const aor = aorOf(pvString("$rU"), pvString("$rd"));
  if (!devicesOf(aor).length) return;
  KSR.pv.sets(AOR_AVP, aor);
  // As for calls: a TCP/TLS phone whose connection is gone sleeps; no branch opens a connection towards it.
  KSR.set_forward_no_connect();
  setVar("pusher_message_wait_ms", currentConfig().timers.inviteFirstMs);
  setVar("pusher_message_action", "relay");
}

function answer(code: number, reason: string): void {
  setVar("pusher_message_code", code);
  setVar("pusher_message_reason", reason);
}

/** The sender as a push names it: as for calls, asserted identities only from trusted sources (caller-id.ts). */
function senderOfMessage(): { number: string; name: string } {
  const config = currentConfig();
  const source = pvString("$si");
  const trusted =
    isInCidrList(source, config.calls.trustedSources) || isInCidrList(source, config.kazoo.trustedSources);
  const values: { [name: string]: string | null } = {};
  for (let i = 0; i < CALLER_ID_HEADERS.length; i++) values[CALLER_ID_HEADERS[i]] = headerText(CALLER_ID_HEADERS[i]);
  return pickCallerId(values, trusted);
}

/**
 * request_route (no phone registered, or none could be sent to) or failure_route (every branch failed): stores the
 * MESSAGE and pushes the AOR's devices. Sets $var(pusher_message_code|reason): 202 Accepted once it is on disk.
 */
export function storeMessage(): void {
  answer(500, "Server Internal Error");
  ensureMessagesLoaded();
  const aor = pvString(AOR_AVP) || aorOf(pvString("$rU"), pvString("$rd"));
  const config = currentConfig();
  const from = withoutTag(headerText("From") || "");
  const to = withoutTag(headerText("To") || "");
  const contentType = header("Content-Type") || "";
  const bodyHex = pvString("$(rb{s.encode.hexa})");
  const refusal = storeRefusal(
    pvString("$pr"),
    Number(pvString("$ml")),
    bodyHex.length / 2,
    waitingCount(aor),
    Math.max(from.length, to.length, contentType.length),
    config.messages,
  );
  if (refusal) {
    logWarn(
      "MESSAGE call-id=" +
        pvString("$ci") +
        " to aor=" +
        aor +
        " not stored, answered " +
        refusal.code +
        ": " +
        refusal.why,
    );
    answer(refusal.code, refusal.reason);
    return;
  }
  const nowMs = Date.now();
  const message: StoredMessage = {
    id: pvString("$uuid(g)"),
    aor: aor,
    storedAtUs: nowMs * 1000,
    expiresAtS: Math.floor(nowMs / 1000) + config.messages.retentionDays * DAY_S,
    callId: pvString("$ci"),
    from: from,
    to: to,
    contentType: contentType,
    bodyHex: bodyHex,
  };
  if (!message.id || !keepMessage(message)) return;
  answer(202, "Accepted");
  const pushed = pushMessage(
    message,
    config.messages.previewInPush
      ? previewOf(contentType, isUtf8Hex(bodyHex) ? pvString("$rb") : bodyPreviewText(bodyHex))
      : null,
  );
  logInfo(
    "message stored aor=" +
      aor +
      " id=" +
      message.id +
      " call-id=" +
      message.callId +
      " (" +
      waitingCount(aor) +
      " waiting), " +
      pushed +
      " device(s) pushed",
  );
}

/** One message push per device that can take one (push-targets.ts); returns how many were requested. */
function pushMessage(message: StoredMessage, preview: string | null): number {
  if (getNumber(STATE_TABLE, "helper_connections") <= 0) {
    logWarn(
      "no push helper is connected: the message for aor=" +
        message.aor +
        " waits for the phone's next REGISTER without a push",
    );
    return 0;
  }
  const sender = senderOfMessage();
  const devices = devicesOf(message.aor);
  let pushed = 0;
  for (let i = 0; i < devices.length; i++) {
    const device = nonVoipPushDevice(devices[i]);
    if (!device) continue;
    const request: PushRequest = {
      type: "push",
      purpose: "message",
      callRef: "",
      callId: message.callId,
      aor: message.aor,
      device: device,
      caller: sender,
      proxy: devices[i].proxy,
      ringsUntilMs: Date.now() + PUSH_RETRY_WINDOW_MS,
      messageId: message.id,
      expiresAtMs: message.expiresAtS * 1000,
    };
    if (preview !== null) request.preview = preview;
    relayRememberedPush(request);
    logInfo(
      "message push requested id=" +
        message.id +
        " aor=" +
        message.aor +
        " app=" +
        device.appId +
        " token=" +
        maskToken(device.token),
    );
    pushed++;
  }
  return pushed;
}

/** The binding of the REGISTER's (first live) contact, as a delivery target; null when usrloc has none. */
function registeringPhone(aor: string): Delivery | null {
  const contactHeader = header("Contact");
  const contacts = contactHeader ? parseContacts(contactHeader) : [];
  const expiresHeader = header("Expires");
  for (let i = 0; i < contacts.length; i++) {
    if (contactExpires(contacts[i], expiresHeader) <= 0) continue;
    const binding = bindingAt(aor, contacts[i].uri);
    if (!binding) return null;
    const transport = pvString("$pr");
    // Behind NAT: the address the REGISTER came from (nathelper's received); on TCP/TLS: the connection it came on.
    let nextHop = binding.received;
    if (!nextHop && (transport === "tcp" || transport === "tls"))
      nextHop = "sip:" + pvString("$si") + ":" + pvString("$sp") + ";transport=" + transport;
    return {
      aor: aor,
      ruri: withoutPushParams(binding.addr, ruleParamNames()),
      nextHop: nextHop,
      socket: binding.socket,
    };
  }
  return null;
}

/** Takes the AOR's delivery (one chain per AOR at a time); false when another one runs. */
function claimDelivery(aor: string): boolean {
  const key = "delivery:" + aor;
  return withLock(MESSAGE_SENDS_TABLE, key, function () {
    if (getString(MESSAGE_SENDS_TABLE, key) !== null) return false;
    KSR.htable.sht_setxs(MESSAGE_SENDS_TABLE, key, "1", DELIVERY_LOCK_S);
    return true;
  });
}

function releaseDelivery(aor: string): void {
  remove(MESSAGE_SENDS_TABLE, "delivery:" + aor);
}

/** Hands the AOR's oldest message to cfg to send (the $var(pusher_uac_*)), or ends the delivery when none is left. */
function sendOldest(delivery: Delivery, justDelivered: string): void {
  const nowS = Date.now() / 1000;
  const message = oldestMessageOf(delivery.aor, nowS);
  // The same one again: its delete failed (logged); it goes at the next REGISTER, not in a loop now.
  if (!message || message.id === justDelivered) {
    if (!message && !justDelivered) clearWaitingIfNone(delivery.aor, nowS);
    releaseDelivery(delivery.aor);
    return;
  }
  KSR.htable.sht_setxs(MESSAGE_SENDS_TABLE, "sending:" + message.id, JSON.stringify(delivery), DELIVERY_LOCK_S);
  KSR.htable.sht_setxs(MESSAGE_SENDS_TABLE, "delivery:" + delivery.aor, message.id, DELIVERY_LOCK_S);
  setVar("pusher_uac_ruri", delivery.ruri);
  setVar("pusher_uac_ouri", delivery.nextHop);
  setVar("pusher_uac_sock", delivery.socket);
  setVar("pusher_uac_furi", message.from);
  setVar("pusher_uac_turi", message.to);
  setVar("pusher_uac_callid", message.callId.length <= MAX_CALL_ID_BYTES ? message.callId : "");
  setVar("pusher_uac_hdrs", deliveredHeaders(message.contentType, message.storedAtUs / 1000));
  setVar("pusher_uac_body", message.bodyHex);
  setVar("pusher_uac_evparam", EVPARAM_PREFIX + message.id);
  setVar("pusher_message_send", 1);
}

/**
 * route(PUSHER_REGISTER_AFTER_SAVE), for an AOR with messages waiting: the phone that registered gets them, the
 * oldest first (the next after each 2xx: onMessageReply).
 */
export function deliverMessages(): void {
  setVar("pusher_message_send", 0);
  ensureMessagesLoaded();
  const aor = aorOf(pvString("$tU"), pvString("$td"));
  if (waitingCount(aor) <= 0) return;
  const delivery = registeringPhone(aor);
  if (!delivery || !claimDelivery(aor)) return;
  logInfo("device registered, delivering " + waitingCount(aor) + " stored message(s) aor=" + aor);
  sendOldest(delivery, "");
}

/** The copy on its way whose reply (or send failure) this is: its Delivery, forgotten; null when not ours. */
function takeSending(): { id: string; delivery: Delivery } | null {
  const param = pvString("$uac_req(evparam)");
  if (param.substring(0, EVPARAM_PREFIX.length) !== EVPARAM_PREFIX) return null;
  const id = param.substring(EVPARAM_PREFIX.length);
  const delivery = getJson<Delivery>(MESSAGE_SENDS_TABLE, "sending:" + id);
  remove(MESSAGE_SENDS_TABLE, "sending:" + id);
  return delivery ? { id: id, delivery: delivery } : null;
}

/**
 * event_route[uac:reply] of a delivered copy: a 2xx removes the message and sends the next; anything else (4xx,
 * 5xx, 6xx, or tm's 408 when the phone never answered) keeps it, and the rest, for the next REGISTER.
 */
export function onMessageReply(): void {
  setVar("pusher_message_send", 0);
  const sending = takeSending();
  if (!sending) return;
  const code = Number(pvString("$uac_req(evcode)"));
  const aor = sending.delivery.aor;
  if (code >= 200 && code < 300) {
    if (removeDeliveredMessage(aor, sending.id)) logInfo("message delivered aor=" + aor + " id=" + sending.id);
    sendOldest(sending.delivery, sending.id);
    return;
  }
  const why =
    pvString("$uac_req(evtype)") === "2" ? "the phone did not answer (" + code + ")" : "the phone answered " + code;
  logInfo("message kept aor=" + aor + " id=" + sending.id + ": " + why + "; it waits for the next REGISTER");
  releaseDelivery(aor);
}

/** route(PUSHER_INTERNAL_SEND_MESSAGE) when uac_req_send() failed: the message stays for the next REGISTER. */
export function onMessageNotSent(): void {
  const sending = takeSending();
  if (!sending) return;
  logWarn("message kept aor=" + sending.delivery.aor + " id=" + sending.id + ": uac_req_send() could not send it");
  releaseDelivery(sending.delivery.aor);
}
