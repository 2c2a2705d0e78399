// Free loopback ports for tests that run side by side: the OS picks, we check UDP and TCP both fit.
import { createSocket } from "node:dgram";
import { createServer } from "node:net";

function freeTcpPort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on("error", reject);
    server.listen(0, host, () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

function udpPortIsFree(port: number, host = "127.0.0.1"): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createSocket("udp4");
    socket.on("error", () => resolve(false));
    socket.bind(port, host, () => socket.close(() => resolve(true)));
  });
}

// Ports this process handed out: the OS may give a port that was just closed again to the next bind(0), so two
// calls in a row (a SIP port, then a link port, neither bound yet) could return the same one. Seen once in a run.
const handedOut = new Set<number>();

/**
 * A port free for both TCP and UDP on `host` (default 127.0.0.1; phones sit on their own loopback addresses),
 * never one this process got before.
 */
export async function freePort(host = "127.0.0.1"): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = await freeTcpPort(host);
    if (handedOut.has(port) || !(await udpPortIsFree(port, host))) continue;
    handedOut.add(port);
    return port;
  }
  throw new Error("no free port found on 127.0.0.1");
}

/**
 * A UDP port p on `host` with p..p+3 all free: sipp binds its media sockets at -mp (audio) and -mp + 2
 * (video), each with the port after it for RTCP. Taken below Linux's ephemeral range (32768+), where every
 * port-0 bind of every test lands, so only other media blocks can collide; random, so those rarely do.
 */
export async function freeMediaPort(host = "127.0.0.1"): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = 20000 + 4 * Math.floor(Math.random() * 3000);
    let free = true;
    for (let offset = 0; offset < 4 && free; offset++) free = await udpPortIsFree(port + offset, host);
    if (free) return port;
  }
  throw new Error(`no free block of 4 UDP ports found on ${host}`);
}
