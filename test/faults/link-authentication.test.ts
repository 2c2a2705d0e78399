// The link between Kamailio and the helper (evapi on 127.0.0.1) against other local users: a client without the
// link secret gets no push request and is obeyed in nothing, connections cannot lock the helper out, and the
// helper gives a process squatting the port nothing but a random nonce (docs/security.md). Kamailio and the
// helper run as the two services do, so either can be killed under the other.
import { afterAll, beforeAll, expect, it } from "vitest";
import { createHmac, randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import net from "node:net";
import { join } from "node:path";
import { encodeNetstring, NetstringDecoder } from "../../src/helper/netstring";
import { MockApns } from "../support/mock-apns";
import { TEST_CA_DIR } from "../support/pusher-process";
import { DOMAIN } from "../support/topology";
import { APP_ID, pushParams } from "../support/wake-fixture";
import { SipClient, cancel, invite, register } from "./support/sip-client";
import { SeparateServices, separateServices, waitUntil } from "./support/processes";

/** evapi's default max_clients (its README): the slots a lock-out would have to fill. */
const EVAPI_MAX_CLIENTS = 8;
const ALICE_TOKEN = "a11ce1111111111111111111111111aa";
const ALICE = `alice@${DOMAIN}`;
const BOB_TOKEN = "b0b22222222222222222222222222bb";

let apns: MockApns;
let services: SeparateServices;
let phone: SipClient;

/** A local process on the link port: what it received, and whether the other side closed it. */
interface LinkPeer {
  frames: { [key: string]: unknown }[];
  closed: boolean;
  socket: net.Socket;
  send(message: unknown): void;
}

function linkPeer(socket: net.Socket): LinkPeer {
  const decoder = new NetstringDecoder();
  const peer: LinkPeer = {
    frames: [],
    closed: false,
    socket,
    send: (message) => socket.write(encodeNetstring(JSON.stringify(message))),
  };
  socket.on("data", (chunk) => peer.frames.push(...decoder.push(chunk).map((text) => JSON.parse(text))));
  socket.on("close", () => (peer.closed = true));
  socket.on("error", () => {});
  return peer;
}

async function connectToKamailio(): Promise<LinkPeer> {
  const socket = net.connect(services.linkPort, "127.0.0.1");
  await new Promise<void>((done, fail) => socket.once("connect", done).once("error", fail));
  return linkPeer(socket);
}

function devices(): string {
  return services.rpc("htable.dump", "pusher_devices");
}

function helperConnections(): number {
  return (services.kamailioOutput().match(/pusher: helper connected/g) ?? []).length;
}

/** Kills the helper and waits until Kamailio has seen its link go down. */
async function killHelper(): Promise<void> {
  const downs = (services.kamailioOutput().match(/pusher: helper link down/g) ?? []).length;
  services.helper!.kill("SIGKILL");
  await waitUntil(
    () => (services.kamailioOutput().match(/pusher: helper link down/g) ?? []).length > downs,
    5000,
    "Kamailio to see the helper go",
  );
}

async function restartHelper(): Promise<void> {
  const before = helperConnections();
  services.startHelper();
  await waitUntil(() => helperConnections() > before, 10000, "the restarted helper's hello");
}

/** Calls alice (asleep: push-first) and waits for her push; returns the held call's item from pusher_calls. */
async function callAlice(): Promise<{ [key: string]: any }> {
  const pushes = apns.requestsFor(ALICE_TOKEN).length;
  phone.send(invite(phone, "alice", DOMAIN));
  await waitUntil(() => apns.requestsFor(ALICE_TOKEN).length > pushes, 5000, "alice's push");
  const held = [...services.rpc("htable.dump", "pusher_calls").matchAll(/name: call:\S+\s+value: (.*)\n/g)].map(
    (match) => JSON.parse(match[1]),
  );
  expect(held.length).toBeGreaterThan(0);
  return held[held.length - 1];
}

beforeAll(async () => {
  apns = await MockApns.start({ caDir: TEST_CA_DIR });
  apns.addDevice(ALICE_TOKEN, { bundle: APP_ID, kind: "voip" });
  services = await separateServices({
    userAgents: [{ name: "MyMobileApp", regex: "^MyMobileApp" }],
    apps: { [APP_ID]: { apple: apns.appleConfig({ certificateFile: join(TEST_CA_DIR, "apple-app.pem") }) } },
    calls: { strategy: "push-first" },
    timers: { pushWaitMs: 4000 },
  });
  await services.startKamailio();
  services.startHelper();
  await waitUntil(() => helperConnections() === 1, 10000, "the helper");
  phone = await SipClient.open(services.sipPort);
  expect((await phone.send(register(phone, "alice", DOMAIN, pushParams(ALICE_TOKEN))).final)?.status).toBe(200);
  expect((await phone.send(register(phone, "bob", DOMAIN, pushParams(BOB_TOKEN))).final)?.status).toBe(200);
  expect(devices()).toContain(ALICE_TOKEN);
}, 30000);

afterAll(async () => {
  phone?.close();
  await services?.stop();
  await apns?.close();
});

it("sends a local client without the link secret no push request, and obeys none of its frames", async () => {
  await killHelper();
  // Connected while no helper is: it gets Kamailio's challenge, and nothing it can answer without the secret.
  const intruder = await connectToKamailio();
  await restartHelper();
  const call = await callAlice();
  // The push request went to the helper alone (evapi writes each copy in the same dispatch).
  expect(intruder.frames.filter((frame) => frame.type === "push")).toEqual([]);
  const before = devices();
  // It forges the helper's answer for that very call (as if it could read pusher_calls) and asks for the stats.
  intruder.send({ type: "link-challenge", nonce: "ab".repeat(32) });
  intruder.send({ type: "link-proof", proof: "cd".repeat(32) });
  const device = call.devices[0];
  intruder.send({
    type: "push-result",
    callRef: call.callRef,
    callId: call.callId,
    aor: call.aor,
    instance: device.instance,
    outcome: "failed",
    code: "PUSHER_ERR_APNS_UNREGISTERED",
    dropToken: true,
    token: device.token,
  });
  intruder.send({ type: "stats-request", id: 7 });
  const refused = () =>
    /"stage":"refused"/.test(services.rpc("htable.dump", "pusher_state")) && intruder.frames.length >= 2;
  await waitUntil(
    () => refused() || !devices().includes(ALICE_TOKEN),
    5000,
    "Kamailio to answer and refuse the intruder",
  );
  // Nothing it sent changed anything: alice keeps her device, her call is still held (not failed at once).
  expect(devices()).toEqual(before);
  expect(refused()).toBe(true);
  expect(devices()).toContain(ALICE_TOKEN);
  expect(services.rpc("htable.dump", "pusher_calls")).toContain(`call:${call.callRef}`);
  // It got the challenge and Kamailio's proof for its own nonce, never a push request or a stats report.
  expect(intruder.frames.map((frame) => frame.type)).toEqual(["link-challenge", "link-proof"]);
  expect(JSON.stringify(intruder.frames)).not.toContain(ALICE_TOKEN);
  intruder.socket.destroy();
}, 30000);

it("closes every other connection while the helper is connected, so none can lock it out", async () => {
  const others = await Promise.all(Array.from({ length: EVAPI_MAX_CLIENTS }, () => connectToKamailio()));
  await waitUntil(() => others.every((other) => other.closed), 3000, "Kamailio to close the other connections");
  expect(others.flatMap((other) => other.frames)).toEqual([]);
  // A second helper-impersonator connected while the helper is down holds one slot, and no more: the restarted
  // helper authenticates in another, and alice's next push goes to it.
  await killHelper();
  const impostor = await connectToKamailio();
  await restartHelper();
  await callAlice();
  expect(impostor.frames.map((frame) => frame.type)).toEqual(["link-challenge"]);
  impostor.socket.destroy();
}, 30000);

it("gives a process squatting the link port nothing but a random nonce, and comes back to Kamailio", async () => {
  await services.killKamailio();
  await waitUntil(
    () => /link: connection to Kamailio closed/.test(services.helperOutput()),
    5000,
    "the helper to see the link drop",
  );
  const squatted: LinkPeer[] = [];
  const squatter = net.createServer((socket) => {
    const peer = linkPeer(socket);
    squatted.push(peer);
    // Every other connection it skips the handshake and asks for a push at once.
    if (squatted.length % 2 === 0) {
      peer.send({
        type: "push",
        callRef: "1:2",
        callId: "squat",
        aor: ALICE,
        device: { instance: "i", appId: APP_ID, provider: "apple", token: ALICE_TOKEN },
        caller: { number: "1", name: "x" },
        proxy: "sip:x",
        ringsUntilMs: Date.now() + 10000,
      });
      return;
    }
    // It has no secret: it challenges like Kamailio, then answers the helper's challenge with a guess.
    peer.send({ type: "link-challenge", nonce: "12".repeat(32) });
    socket.on("data", () => peer.send({ type: "link-proof", proof: "34".repeat(32) }));
  });
  await new Promise<void>((done) => squatter.listen(services.linkPort, "127.0.0.1", done));
  const pushes = apns.requests.length;
  try {
    await waitUntil(
      () => squatted.length >= 3 && (services.helperOutput().match(/PUSHER_ERR_LINK_AUTH/g) ?? []).length >= 3,
      15000,
      "the helper to try the squatter three times",
    );
  } finally {
    for (const peer of squatted) peer.socket.destroy();
    await new Promise((done) => squatter.close(done));
  }
  // The helper sent it its own nonce (nothing it could replay) and nothing else: no hello, no result, no pid.
  const sent = squatted.flatMap((peer) => peer.frames);
  expect(sent.length).toBeGreaterThan(0);
  for (const frame of sent)
    expect(Object.keys(frame).sort().join(",") + " " + frame.type).toBe("nonce,type link-challenge");
  expect(apns.requests.length).toBe(pushes);
  // Kamailio back on its port: the helper reconnects by itself and is obeyed again.
  const connections = helperConnections();
  await services.startKamailio();
  await waitUntil(() => helperConnections() > connections, 10000, "the helper to reconnect to Kamailio");
  expect((await phone.send(register(phone, "alice", DOMAIN, pushParams(ALICE_TOKEN))).final)?.status).toBe(200);
  await callAlice();
}, 60000);

/** A client that knows the link secret and answers Kamailio's challenge as the helper does (written with node:crypto). */
async function connectAsHelper(): Promise<LinkPeer> {
  const secret = readFileSync(join(services.dir, "state", "link.secret"), "utf8").trim();
  const proof = (role: string, kamailioNonce: string, helperNonce: string) =>
    createHmac("sha256", secret)
      .update(`kamailio-pusher link v1 ${role} ${kamailioNonce} ${helperNonce}`)
      .digest("hex");
  const connected = helpersConnected();
  const peer = await connectToKamailio();
  await waitUntil(() => peer.frames.length >= 1, 3000, "Kamailio's challenge");
  const kamailioNonce = peer.frames[0].nonce as string;
  const helperNonce = randomBytes(32).toString("hex");
  peer.send({ type: "link-challenge", nonce: helperNonce });
  await waitUntil(() => peer.frames.length >= 2, 3000, "Kamailio's proof");
  expect(peer.frames[1]).toEqual({ type: "link-proof", proof: proof("kamailio", kamailioNonce, helperNonce) });
  peer.send({ type: "link-proof", proof: proof("helper", kamailioNonce, helperNonce) });
  peer.send({ type: "hello", version: 1, pid: 1 });
  await waitUntil(() => helpersConnected() > connected, 3000, "Kamailio to take it as the helper");
  return peer;
}

/** How many stand-ins (pid 1) Kamailio has taken as the helper so far. */
function helpersConnected(): number {
  return (services.kamailioOutput().match(/pusher: helper connected \(pid 1,/g) ?? []).length;
}

/** The result of `request` (a push frame) that says its token is dead, as the helper would send it. */
function deadTokenResult(request: { [key: string]: any }) {
  return {
    type: "push-result",
    callRef: request.callRef,
    callId: request.callId,
    aor: request.aor,
    instance: request.device.instance,
    outcome: "failed",
    code: "PUSHER_ERR_APNS_UNREGISTERED",
    dropToken: true,
    token: request.device.token,
  };
}

/** Resolves once Kamailio handled every frame `helper` sent before: a stats request is answered after them, in order. */
async function handledSoFar(helper: LinkPeer, id: number): Promise<void> {
  helper.send({ type: "stats-request", id });
  await waitUntil(
    () => helper.frames.some((frame) => frame.type === "stats" && frame.id === id),
    3000,
    "the stats report",
  );
}

it("obeys a push result only when it names the call, AOR, instance and token of a push it sent", async () => {
  await killHelper();
  const helper = await connectAsHelper();
  try {
    phone.send(invite(phone, "alice", DOMAIN));
    await waitUntil(() => helper.frames.some((frame) => frame.type === "push"), 5000, "alice's push request");
    const request = helper.frames.find((frame) => frame.type === "push") as { [key: string]: any };
    const result = deadTokenResult(request);
    const before = devices();
    // Each names something Kamailio did not send for that call: bob's AOR, another token, another call, no token.
    const { token: _token, ...withoutToken } = result;
    for (const forged of [
      { ...result, aor: `bob@${DOMAIN}` },
      { ...result, token: BOB_TOKEN },
      { ...result, callRef: "0:0" },
      withoutToken,
    ])
      helper.send(forged);
    // Then a stats request, answered only after the four were handled (one connection, one dispatcher, in order).
    await handledSoFar(helper, 42);
    expect(devices()).toEqual(before);
    expect(devices()).toContain(BOB_TOKEN);
    expect(services.rpc("htable.dump", "pusher_calls")).toContain(`call:${request.callRef}`);
    // The true answer: alice's dead token goes, and her call is answered at once.
    helper.send(result);
    await waitUntil(() => !devices().includes(ALICE_TOKEN), 3000, "alice's dead token to go");
    expect(services.rpc("htable.dump", "pusher_calls")).not.toContain(`call:${request.callRef}`);
    expect(devices()).toContain(BOB_TOKEN);
  } finally {
    helper.socket.destroy();
  }
}, 30000);

it("obeys a result that comes after its call ended only when it names that call's Call-ID and AOR too", async () => {
  // Run alone, the real helper holds the link; after the previous test its stand-in is gone and alice too.
  if (services.helper && services.helper.exitCode === null && services.helper.signalCode === null) await killHelper();
  expect((await phone.send(register(phone, "alice", DOMAIN, pushParams(ALICE_TOKEN))).final)?.status).toBe(200);
  const helper = await connectAsHelper();
  try {
    const placed = invite(phone, "alice", DOMAIN);
    phone.send(placed);
    await waitUntil(() => helper.frames.some((frame) => frame.type === "push"), 5000, "alice's push request");
    const request = helper.frames.find((frame) => frame.type === "push") as { [key: string]: any };
    // The caller gives up before the result comes: the call is forgotten, its push remembered (sent-pushes.ts).
    phone.send(cancel(placed));
    await waitUntil(
      () => !services.rpc("htable.dump", "pusher_calls").includes(`call:${request.callRef}`),
      5000,
      "the cancelled call to be forgotten",
    );
    expect(services.rpc("htable.dump", "pusher_calls")).toContain(`sent:${request.callRef}`);
    const result = deadTokenResult(request);
    // The call's ref, instance and token, but another AOR or another call: neither may take the remembered push.
    helper.send({ ...result, aor: `bob@${DOMAIN}` });
    helper.send({ ...result, callId: "another-call@127.0.0.1" });
    await handledSoFar(helper, 43);
    expect(devices()).toContain(ALICE_TOKEN);
    expect(services.rpc("htable.dump", "pusher_calls")).toContain(`sent:${request.callRef}`);
    // The true answer still finds it: alice's dead token goes.
    helper.send(result);
    await waitUntil(() => !devices().includes(ALICE_TOKEN), 3000, "alice's dead token to go");
    expect(services.rpc("htable.dump", "pusher_calls")).not.toContain(`sent:${request.callRef}`);
    expect(devices()).toContain(BOB_TOKEN);
  } finally {
    helper.socket.destroy();
  }
}, 30000);
