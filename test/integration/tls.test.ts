// SIP over TLS with the reference cfg: `pusher start` with a tls: listen address writes tls.cfg from sip.tls
// and defines WITH_TLS; a phone's REGISTER over TLS stores its push device. (Debian's sipp is built without
// TLS, so the phone here is a Node TLS socket sending a plain REGISTER.)
import { readFileSync } from "node:fs";
import { join } from "node:path";
import tls from "node:tls";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../support/free-port";
import { PusherProcess, startPusher, TEST_CA_DIR } from "../support/pusher-process";

const APP_ID = "com.app.mymobileapp";
let pusher: PusherProcess;
let tlsPort: number;

/** Sends `request` over a TLS connection verified against the test CA; resolves with the first response. */
function sendOverTls(port: number, request: string): Promise<{ response: string; localPort: number }> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: "127.0.0.1", port, ca: readFileSync(join(TEST_CA_DIR, "ca.pem")), servername: "localhost" }, () => {
      socket.write(request.replace(/LOCALPORT/g, String(socket.localPort)));
    });
    let received = "";
    socket.setEncoding("utf8");
    socket.on("data", (chunk: string) => {
      received += chunk;
      if (/\r\n\r\n/.test(received) && !/^SIP\/2\.0 1\d\d/.test(received)) {
        socket.end();
        resolve({ response: received, localPort: socket.localPort ?? 0 });
      }
    });
    socket.on("error", reject);
    setTimeout(() => reject(new Error(`no final response over TLS; got ${JSON.stringify(received)}`)), 5000).unref();
  });
}

beforeAll(async () => {
  const udpPort = await freePort();
  tlsPort = await freePort();
  pusher = await startPusher({
    sip: {
      listen: [`udp:127.0.0.1:${udpPort}`, `tls:127.0.0.1:${tlsPort}`],
      tls: { certificateFile: join(TEST_CA_DIR, "server.pem"), keyFile: join(TEST_CA_DIR, "server.key") },
    },
    userAgents: [{ name: "MyMobileApp", regex: "^MyMobileApp" }],
    apps: { [APP_ID]: { apple: { certificateFile: join(TEST_CA_DIR, "apple-app.pem"), host: "127.0.0.1:9" } } },
  });
}, 30000);

afterAll(async () => {
  await pusher?.stop();
});

describe("SIP over TLS (WITH_TLS)", () => {
  it("answers a REGISTER over TLS with 200 and stores its push device", async () => {
    const user = `tls_${process.pid}`;
    const token = `tl${process.pid}0123456789abcdef`;
    const request = [
      `REGISTER sip:127.0.0.1 SIP/2.0`,
      `Via: SIP/2.0/TLS 127.0.0.1:LOCALPORT;branch=z9hG4bK-tls-${process.pid};rport`,
      `Max-Forwards: 70`,
      `From: <sip:${user}@127.0.0.1>;tag=tls${process.pid}`,
      `To: <sip:${user}@127.0.0.1>`,
      `Call-ID: tls-${process.pid}@127.0.0.1`,
      `CSeq: 1 REGISTER`,
      `Contact: <sip:${user}@127.0.0.1:LOCALPORT;transport=tls;app-id=${APP_ID};pn-tok=${token};pn-type=apple>`,
      `User-Agent: MyMobileApp iOS 1.0`,
      `Expires: 600`,
      `Content-Length: 0`,
      ``,
      ``,
    ].join("\r\n");
    const { response } = await sendOverTls(tlsPort, request);
    expect(response).toMatch(/^SIP\/2\.0 200 /);
    expect(readFileSync(join(pusher.dir, "state", "tls.cfg"), "utf8")).toContain(join(TEST_CA_DIR, "server.pem"));
    const devices = pusher.rpc("htable.dump", "pusher_devices");
    expect(devices).toContain(`${user}@127.0.0.1`);
    expect(devices).toContain(token);
  });
});
