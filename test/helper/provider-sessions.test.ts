// ProviderSessions against a bare HTTP/2 server on loopback: which connection a request goes on when another
// request on it times out or the connection is replaced. Found by benchmark 4 (helper throughput, 1 000 tokens
// across 10 apps): on a loaded machine one slow answer replaced its connection, the replaced connection's hundreds
// of in-flight pushes were cut off after a second and sent again (delivered twice), and each later timeout on the
// old connection replaced the new one: 51 connections instead of 20.
import http2 from "node:http2";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { silentLogger } from "../../src/helper/provider-sender";
import { ProviderSessions, type SessionTarget } from "../../src/helper/provider-sessions";
import { TransportError } from "../../src/helper/provider-errors";
import { testCaDir } from "../support/mock-apns";
import { MockHttp2Server } from "../support/mock-http2-server";

let server: MockHttp2Server;
let sessions: ProviderSessions;
/** Streams the server never answered (`/stall`), ended when the test is over. */
const stalled = new Set<http2.ServerHttp2Stream>();
/** Requests the server received, by path. */
let received: string[] = [];

beforeAll(async () => {
  // `/stall` is never answered, `/slow/<ms>` after that many ms, anything else at once.
  server = await MockHttp2Server.listen(testCaDir(), (stream, headers) => {
    const path = String(headers[":path"]);
    stream.on("error", () => {});
    stream.resume();
    stream.on("end", () => {
      received.push(path);
      if (path === "/stall") return void stalled.add(stream);
      const slow = /^\/slow\/(\d+)$/.exec(path);
      const answer = () => {
        if (!stream.destroyed) stream.respond({ ":status": 200 }, { endStream: true });
      };
      if (slow) setTimeout(answer, Number(slow[1])).unref();
      else answer();
    });
  });
});

afterEach(async () => {
  await sessions?.close();
  for (const stream of stalled) stream.close(http2.constants.NGHTTP2_CANCEL);
  stalled.clear();
  received = [];
});

afterAll(async () => {
  await server?.close();
});

function target(): SessionTarget {
  return { key: "test\nkey", authority: `https://${server.host}` };
}

function get(path: string, timeoutMs: number) {
  return sessions.request(target(), { ":method": "POST", ":path": path }, "{}", timeoutMs);
}

/** Until the server has the request: a connection replaced before its request left would refuse it (GOAWAY). */
async function serverReceived(path: string): Promise<void> {
  for (let i = 0; i < 200 && !received.includes(path); i++) await new Promise((resolve) => setTimeout(resolve, 5));
  expect(received).toContain(path);
}

describe("ProviderSessions", () => {
  it("keeps a connection that answers other requests while one of them times out: a slow server is not a dead connection", async () => {
    sessions = new ProviderSessions({ name: "test", logger: silentLogger });
    const first = await get("/", 5000);
    const timedOut = get("/stall", 300);
    const answered = await get("/", 5000);
    await expect(timedOut).rejects.toMatchObject({ kind: "timeout" });
    const after = await get("/", 5000);

    expect(answered.sessionId).toBe(first.sessionId);
    expect(after.sessionId).toBe(first.sessionId);
    expect(sessions.opened).toBe(1);
  });

  it("replaces a connection that answered nothing since a timed-out request was sent", async () => {
    sessions = new ProviderSessions({ name: "test", logger: silentLogger });
    const first = await get("/", 5000);
    await expect(get("/stall", 300)).rejects.toBeInstanceOf(TransportError);
    const after = await get("/", 5000);

    expect(after.sessionId).not.toBe(first.sessionId);
    expect(sessions.opened).toBe(2);
  });

  it("does not replace a connection's replacement when a request on the old connection times out", async () => {
    sessions = new ProviderSessions({ name: "test", logger: silentLogger });
    const old = await get("/", 5000);
    const timedOut = get("/stall", 400);
    timedOut.catch(() => {});
    await serverReceived("/stall");
    sessions.retire(target().key, "test: replaced");
    const replacement = await get("/", 5000);
    await expect(timedOut).rejects.toMatchObject({ kind: "timeout" });
    const after = await get("/", 5000);

    expect(replacement.sessionId).not.toBe(old.sessionId);
    expect(after.sessionId).toBe(replacement.sessionId);
    expect(sessions.opened).toBe(2);
  });

  it("lets the requests on a replaced connection finish within their own timeout, even beyond a second", async () => {
    sessions = new ProviderSessions({ name: "test", logger: silentLogger });
    const old = await get("/", 5000);
    const slow = get("/slow/1500", 5000);
    await serverReceived("/slow/1500");
    sessions.retire(target().key, "test: replaced");

    const answer = await slow;
    expect(answer.status).toBe(200);
    expect(answer.sessionId).toBe(old.sessionId);
  });
});
