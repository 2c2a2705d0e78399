// Flood detection in the reference kamailio.cfg (pike, as Kamailio's default cfg does WITH_ANTIFLOOD): a source
// that is not trusted and sends more than PUSHER_ANTIFLOOD_REQUESTS requests in 2 s is ignored for 5 minutes,
// while other sources and trusted ones go on; PUSHER_ANTIFLOOD 0 turns it off. `pusher start` trusts loopback
// (the rest of the suite and the benchmarks send from 127.0.0.x); here only Kamailio's own 127.0.0.1 is, so
// the flooding client, on its own loopback address, is a stranger.
import { afterAll, beforeAll, expect, it } from "vitest";
import { DOMAIN } from "../support/topology";
import { SipClient, newBranch, newTag } from "./support/sip-client";
import { SeparateServices, separateServices, waitUntil } from "./support/processes";

const REQUESTS = 60;
let services: SeparateServices;
const clients: SipClient[] = [];

beforeAll(async () => {
  services = await separateServices({ kamailio: { defines: { PUSHER_TRUSTED_SOURCES: "127.0.0.1/32" } } });
}, 30000);

afterAll(async () => {
  for (const client of clients) client.close();
  await services?.stop();
});

/** An OPTIONS to a user of the domain: answered after REQINIT (404: nobody is registered), never cached. */
function options(client: SipClient): string {
  return (
    `OPTIONS sip:nobody@${DOMAIN} SIP/2.0\r\nVia: SIP/2.0/UDP ${client.hostPort};branch=${newBranch()};rport\r\nMax-Forwards: 70\r\n` +
    `From: <sip:flood@${DOMAIN}>;tag=${newTag()}\r\nTo: <sip:nobody@${DOMAIN}>\r\nCall-ID: ${newTag()}@${client.address}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n`
  );
}

/** `count` requests at once from a new client; how many got a final answer within 1.5 s. */
async function burst(count: number): Promise<{ answered: number; client: SipClient }> {
  const client = await SipClient.open(services.sipPort);
  clients.push(client);
  const sent = Array.from({ length: count }, () => client.send(options(client), { timeoutMs: 1500 }));
  const finals = await Promise.all(sent.map((request) => request.final));
  return { answered: finals.filter((answer) => answer !== null).length, client };
}

async function restartKamailio(defines: { [name: string]: string } = {}): Promise<void> {
  await services.killKamailio();
  await services.startKamailio(defines);
}

it("ignores a source that floods, while another source is still answered", async () => {
  await restartKamailio();
  const flood = await burst(REQUESTS);
  expect(flood.answered).toBeGreaterThan(0);
  expect(flood.answered).toBeLessThan(REQUESTS / 2);
  // The flooder stays ignored; a quiet neighbour is answered.
  expect(await flood.client.send(options(flood.client), { timeoutMs: 1000 }).final).toBeNull();
  expect((await burst(3)).answered).toBe(3);
  const logged = /pike: flood from 127\.0\.0\.\d+ \(OPTIONS from port \d+\): its requests are ignored for 5 min/;
  await waitUntil(() => logged.test(services.kamailioOutput()), 3000, "Kamailio's log line");
});

it("answers every request with PUSHER_ANTIFLOOD 0", async () => {
  await restartKamailio({ PUSHER_ANTIFLOOD: "0" });
  expect((await burst(REQUESTS)).answered).toBe(REQUESTS);
});
