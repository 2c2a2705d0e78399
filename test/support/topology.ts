// The test network, shaped like a deployment rather than like a laptop:
//   - SIP domains are names that never resolve (RFC 2606/6761: example.com, *.test), never the proxy's address;
//     requests are addressed to sip:<user>@<domain> and Kamailio is reached only as the next hop;
//   - Kamailio listens on 127.0.0.1; each phone and caller sits on its own loopback address (127.0.0.2, .3, …),
//     so a Contact host is never the proxy's address and never another phone's;
//   - a phone's Contact user is not its AOR user (sip:c-…@127.0.0.7 registered as alice@example.com);
//   - a phone "behind NAT" names in its Contact and Via an address nobody listens on (NAT_PRIVATE_ADDRESS) while
//     its packets come from its own loopback address and port, as a phone on a mobile network does.
// 127.0.1.x stays free for cluster nodes; nothing here ever leaves 127.0.0.0/8.
import { createSocket, type Socket } from "node:dgram";
import { freePort } from "./free-port";

/** The SIP domain of most users. */
export const DOMAIN = "example.com";
/** A second domain, for tests where two domains share the proxy. */
export const SECOND_DOMAIN = "voip.example.test";
/** What a NATed phone writes in its Contact and Via: an address and port nothing listens on (no RFC 1918 address:
 * tests send nothing off loopback). */
export const NAT_PRIVATE_ADDRESS = "127.0.0.99:5999";

// 127.0.0.1 is Kamailio's, 127.0.0.99 the NATed phones' "private" address.
const FIRST_HOST = 2;
const LAST_HOST = 254;
let nextHost = FIRST_HOST + (process.pid % (LAST_HOST - FIRST_HOST));

/** The next loopback address for a phone or a caller (127.0.0.2 … 127.0.0.254, never .1 or .99). */
export function nextAddress(): string {
  for (;;) {
    const host = nextHost;
    nextHost = host >= LAST_HOST ? FIRST_HOST : host + 1;
    if (host !== 99) return `127.0.0.${host}`;
  }
}

let counter = 0;

/** A name no other test (or test file running beside this one) uses, e.g. `alice_4711_3`. */
export function uniqueName(prefix = "user"): string {
  counter += 1;
  return `${prefix}_${process.pid}_${counter}`;
}

export type Transport = "udp" | "tcp";

export interface PhoneOptions {
  /** The AOR's user; default a unique one. */
  user?: string;
  domain?: string;
  transport?: Transport;
  /** Behind NAT: Contact and Via name NAT_PRIVATE_ADDRESS, packets come from the phone's own address. */
  nat?: boolean;
  /** Another socket of the same device (a woken phone): keeps user, domain and Contact user. */
  sameDeviceAs?: Phone;
}

/**
 * One SIP phone (one socket of a device): where it sends from (`address`:`port`), what it says in Contact and
 * Via, and its AOR. A phone that wakes from a push comes back on a new socket: `phone.newSocket()`.
 */
export class Phone {
  private constructor(
    readonly user: string,
    readonly domain: string,
    /** The Contact URI's user part: never the AOR's user. */
    readonly contactUser: string,
    readonly address: string,
    readonly port: number,
    readonly transport: Transport,
    readonly nat: boolean,
  ) {}

  static async create(options: PhoneOptions = {}): Promise<Phone> {
    const same = options.sameDeviceAs;
    const user = options.user ?? same?.user ?? uniqueName("user");
    const domain = options.domain ?? same?.domain ?? DOMAIN;
    const contactUser = same?.contactUser ?? uniqueName("c");
    const address = same?.address ?? nextAddress();
    return new Phone(
      user,
      domain,
      contactUser,
      address,
      await freePort(address),
      options.transport ?? same?.transport ?? "udp",
      options.nat ?? same?.nat ?? false,
    );
  }

  /** The same device on a new socket (new port, same address and Contact user), as after a wake-up. */
  newSocket(options: { transport?: Transport } = {}): Promise<Phone> {
    return Phone.create({ sameDeviceAs: this, transport: options.transport });
  }

  /** user@domain as the plugin keys it: the user as is, the domain lower-cased (RFC 3261 §19.1.4). */
  get aor(): string {
    return `${this.user}@${this.domain.toLowerCase()}`;
  }

  /** host:port the phone writes in Contact and Via. */
  get advertisedAddress(): string {
    return this.nat ? NAT_PRIVATE_ADDRESS : `${this.address}:${this.port}`;
  }

  /** The Contact value of its REGISTER: its Contact URI, then `params` (header params such as Kazoo's, or URI
   * params when they start inside the brackets: use `uriParams`). */
  contact(params = "", uriParams = ""): string {
    return `<sip:${this.contactUser}@${this.advertisedAddress};transport=${this.transport}${uriParams}>${params}`;
  }

  /** sipp keys of the phone-side scenarios (register*.xml, answer*.xml, ring-until-cancelled.xml). */
  keys(extra: Record<string, string> = {}): Record<string, string> {
    return {
      user: this.user,
      domain: this.domain,
      via: this.advertisedAddress,
      contact_user: this.contactUser,
      contact_addr: this.advertisedAddress,
      contact: this.contact(),
      user_agent: "MyMobileApp iOS 1.0",
      expires: "600",
      ...extra,
    };
  }
}

/**
 * An expired NAT binding: the phone's address and port still take datagrams but nothing ever answers (the
 * usual way a sleeping UDP phone looks to the proxy). Close it when the phone wakes.
 */
export async function silentSocket(phone: Phone): Promise<{ received: () => number; close: () => Promise<void> }> {
  const socket: Socket = createSocket("udp4");
  let received = 0;
  socket.on("message", () => (received += 1));
  await new Promise<void>((resolve, reject) => {
    socket.once("error", reject);
    socket.bind(phone.port, phone.address, () => resolve());
  });
  return { received: () => received, close: () => new Promise((done) => socket.close(() => done())) };
}
