// The helper's evapi connections as Kamailio sees them: the challenge and response of src/link-auth.ts, and
// which connection push requests go to. All of it runs in evapi's dispatcher (pusher.cfg sets evapi's workers to
// 0), one process handling each connection's events in order, so each connection's state (`link:<conidx>` in
// pusher_state) has one writer.
// kamailio/pusher.cfg tags every new connection `pusher-link-<conidx>` (evapi 5.6 would otherwise hand a new
// client the tag its slot's last client had) and calls pusher_on_link_open; a connection that proves the link
// secret is tagged HELPER_TAG, and push requests and stats reports go to that tag only (evapi_relay_unicast).
// A connection that fails is not closed: evapi_close() outside evapi:connection-new leaves evapi's watcher on the
// descriptor (src/modules/evapi/evapi_dispatch.c in Kamailio 5.6 has no ev_io_stop there), and the next client
// given that descriptor stalls the dispatcher (seen with 5.6.3). It is marked refused instead: it gets nothing,
// and every frame it sends is ignored until its client closes it.

import { hmacSha256Hex } from "../hmac-sha256";
import { LINK_HANDSHAKE_MS, linkProofText, linkSecretOf, sameProof } from "../link-auth";
import { HelperMessage, LinkChallenge, LinkProof } from "../protocol";
import { logError, logInfo, logWarn } from "./log";
import { STATE_TABLE, firstTimeIn, getJson, getNumber, getString, remove, setJson } from "./shared-state";
import { pvString, setVar } from "./sip-message";

/** The evapi tag of the authenticated helper's connection: the only one push requests are relayed to. */
export const HELPER_TAG = "pusher-helper";
/** How often a repeated refusal is logged (a local process can open connections in a loop). */
const REFUSAL_LOG_SECONDS = 10;

type LinkStage = "challenged" | "proved" | "authenticated" | "refused";

interface LinkState {
  stage: LinkStage;
  kamailioNonce: string;
  helperNonce?: string;
  openedAtMs: number;
}

function linkKey(connection: string): string {
  return "link:" + connection;
}

/** The tag pusher.cfg gives a connection before it is authenticated: one per evapi slot. */
function connectionTag(connection: string): string {
  return "pusher-link-" + connection;
}

function peer(): string {
  return pvString("$evapi(srcaddr)") + ":" + pvString("$evapi(srcport)");
}

/** The link secret, read at each use so a new file takes effect at the next connection; null (logged) if unusable. */
function linkSecret(): string | null {
  const path = getString(STATE_TABLE, "link_secret_file") || "";
  const text = path ? KSR.corex.file_read(path) : null;
  const read = typeof text === "string" && text !== "" ? linkSecretOf(text) : { problem: "cannot be read" };
  if ("secret" in read) return read.secret;
  if (firstTimeIn("link-secret", REFUSAL_LOG_SECONDS)) {
    logError(
      "link secret file " +
        JSON.stringify(path) +
        " (PUSHER_LINK_SECRET_FILE) " +
        read.problem +
        ": the helper cannot connect; `pusher start` writes it, docs/security.md says how for your own Kamailio",
    );
  }
  return null;
}

function refuse(connection: string, state: LinkState, why: string): void {
  state.stage = "refused";
  setJson(STATE_TABLE, linkKey(connection), state);
  // A connection pusher.cfg never tagged may still carry its slot's previous tag, the helper's among them.
  KSR.evapi.set_tag(connectionTag(connection));
  if (firstTimeIn("link-refused", REFUSAL_LOG_SECONDS))
    logWarn("evapi connection from " + peer() + " refused: " + why + "; it gets nothing until it closes");
}

/**
 * event_route[evapi:connection-new], after pusher.cfg tagged the connection: sends Kamailio's challenge. Sets
 * $var(pusher_link_refused) 1 when cfg must close the connection at once (the only place evapi_close() is safe):
 * an authenticated helper is already connected, or there is no usable link secret.
 */
export function onLinkOpen(): void {
  setVar("pusher_link_refused", 0);
  const connection = pvString("$evapi(conidx)");
  remove(STATE_TABLE, linkKey(connection));
  if (getNumber(STATE_TABLE, "helper_connections") > 0) {
    // One helper per Kamailio: while it is connected nobody else may hold a slot that evapi could not free.
    if (firstTimeIn("link-busy", REFUSAL_LOG_SECONDS))
      logWarn("evapi connection from " + peer() + " closed: the helper is connected and authenticated");
    setVar("pusher_link_refused", 1);
    return;
  }
  // Two random (version 4) UUIDs from the uuid module: 244 random bits, from the system's random source.
  const nonce = (pvString("$uuid(r)") + pvString("$uuid(r)")).replace(/-/g, "").toLowerCase();
  if (!/^[0-9a-f]{64}$/.test(nonce)) {
    if (firstTimeIn("link-nonce", REFUSAL_LOG_SECONDS))
      logError("no random nonce from $uuid(r) (load the uuid module): the helper cannot connect");
    setVar("pusher_link_refused", 1);
    return;
  }
  if (linkSecret() === null) {
    setVar("pusher_link_refused", 1);
    return;
  }
  const state: LinkState = { stage: "challenged", kamailioNonce: nonce, openedAtMs: Date.now() };
  setJson(STATE_TABLE, linkKey(connection), state);
  const challenge: LinkChallenge = { type: "link-challenge", nonce: nonce };
  KSR.evapi.relay_unicast(JSON.stringify(challenge), connectionTag(connection));
}

/** event_route[evapi:connection-closed]: forgets the connection; the helper's link is down if it was the helper. */
export function onLinkClosed(): void {
  const connection = pvString("$evapi(conidx)");
  if (connection === "") return;
  const state = getJson<LinkState>(STATE_TABLE, linkKey(connection));
  remove(STATE_TABLE, linkKey(connection));
  if (!state || state.stage !== "authenticated") return;
  if (getNumber(STATE_TABLE, "helper_connections") > 0) KSR.htable.sht_dec(STATE_TABLE, "helper_connections");
  logWarn("helper link down (" + peer() + ")");
}

function answerChallenge(connection: string, state: LinkState, challenge: LinkChallenge): void {
  const secret = linkSecret();
  if (secret === null) return refuse(connection, state, "no link secret");
  state.stage = "proved";
  state.helperNonce = challenge.nonce;
  setJson(STATE_TABLE, linkKey(connection), state);
  const proof: LinkProof = {
    type: "link-proof",
    proof: hmacSha256Hex(secret, linkProofText("kamailio", state.kamailioNonce, challenge.nonce)),
  };
  KSR.evapi.relay_unicast(JSON.stringify(proof), connectionTag(connection));
}

function checkProof(connection: string, state: LinkState, proof: LinkProof): void {
  const secret = linkSecret();
  if (secret === null) return refuse(connection, state, "no link secret");
  const expected = hmacSha256Hex(secret, linkProofText("helper", state.kamailioNonce, state.helperNonce || ""));
  if (!sameProof(expected, proof.proof))
    return refuse(connection, state, "its link-proof does not match the link secret");
  state.stage = "authenticated";
  setJson(STATE_TABLE, linkKey(connection), state);
  KSR.evapi.set_tag(HELPER_TAG);
  KSR.htable.sht_inc(STATE_TABLE, "helper_connections");
  logInfo("helper link up from " + peer() + " (authenticated)");
}

/**
 * event_route[evapi:message-received]: true when `message` comes from the authenticated helper and may be obeyed.
 * Handshake frames are answered here; anything else from another connection is ignored (and the connection
 * refused), whatever it says.
 */
export function fromAuthenticatedHelper(message: HelperMessage | null): boolean {
  const connection = pvString("$evapi(conidx)");
  // evapi runs the route for the rest of a read even after the connection went: nothing to answer then.
  if (connection === "") return false;
  const state = getJson<LinkState>(STATE_TABLE, linkKey(connection));
  if (state && state.stage === "authenticated") return true;
  if (!state) {
    refuse(
      connection,
      { stage: "refused", kamailioNonce: "", openedAtMs: 0 },
      "it was never challenged (route(PUSHER_EVAPI_CONNECTION_NEW) did not run for it)",
    );
    return false;
  }
  if (state.stage === "refused") return false;
  if (Date.now() - state.openedAtMs > LINK_HANDSHAKE_MS) {
    refuse(connection, state, "no link-proof within " + LINK_HANDSHAKE_MS / 1000 + " s");
  } else if (message && message.type === "link-challenge" && state.stage === "challenged") {
    answerChallenge(connection, state, message);
  } else if (message && message.type === "link-proof" && state.stage === "proved") {
    checkProof(connection, state, message);
  } else {
    refuse(
      connection,
      state,
      "it sent " + (message ? message.type : "a malformed frame") + " before the link was authenticated",
    );
  }
  return false;
}

/** Relays one message to the authenticated helper (evapi drops it when no connection has the tag). */
export function relayToHelper(text: string): void {
  KSR.evapi.relay_unicast(text, HELPER_TAG);
}
