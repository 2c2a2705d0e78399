// SIP timestamps from a loopback capture: dumpcap writes every UDP packet to and from Kamailio's port (or several
// ports: a cluster's SIP and DMQ ports) with the kernel's receive timestamp (microseconds), tshark decodes it
// afterwards. Capturing to a file and decoding later
// keeps the capture itself cheap while the benchmark runs. Needs bench/ensure-bench-deps.sh (tshark).
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

export interface SipPacket {
  /** Epoch milliseconds, microsecond resolution. */
  timeMs: number;
  sourceHost: string;
  sourcePort: number;
  destinationHost: string;
  destinationPort: number;
  /** Request method, or "" for a reply. */
  method: string;
  status: number | null;
  callId: string;
  /** A JSON body's members as tshark lists them (`key:value,key:value…`, values unquoted), e.g. a KDMQ request's
   * (htable: `action:2,htname:<table>,cname:<key>,…`); "" without one. */
  jsonMembers: string;
}

export class LoopbackCapture {
  private constructor(
    private readonly child: ChildProcess,
    private readonly file: string,
    private readonly sipPorts: number[],
    private readonly exited: Promise<void>,
  ) {}

  /** Starts capturing UDP on `lo` for `sipPort` (or each of several); resolves once dumpcap says it is capturing. */
  static async start(dir: string, sipPort: number | number[]): Promise<LoopbackCapture> {
    const sipPorts = typeof sipPort === "number" ? [sipPort] : sipPort;
    const file = join(dir, `sip-${sipPorts[0]}.pcapng`);
    const filter = sipPorts.map((port) => `udp port ${port}`).join(" or ");
    const child = spawn("dumpcap", ["-q", "-i", "lo", "-f", filter, "-B", "64", "-w", file], {
      stdio: ["ignore", "ignore", "pipe"],
    });
    let stderr = "";
    const exited = new Promise<void>((resolve) => child.on("exit", () => resolve()));
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`dumpcap did not start capturing within 10 s: ${stderr}`)),
        10_000,
      );
      child.on(
        "error",
        (error) => (
          clearTimeout(timer),
          reject(new Error(`cannot run dumpcap (bash bench/ensure-bench-deps.sh): ${error.message}`))
        ),
      );
      child.stderr!.on("data", (chunk) => {
        stderr += chunk;
        if (/Capturing on/.test(stderr)) {
          clearTimeout(timer);
          resolve();
        }
      });
      void exited.then(() => (clearTimeout(timer), reject(new Error(`dumpcap exited: ${stderr}`))));
    });
    // "Capturing on" comes as the capture opens; give the filter a moment before the first packet that counts.
    await new Promise((resolve) => setTimeout(resolve, 300));
    return new LoopbackCapture(child, file, sipPorts, exited);
  }

  /** Stops the capture and decodes the SIP packets, in capture order. */
  async stop(): Promise<SipPacket[]> {
    // dumpcap flushes its file on SIGINT; give the kernel a moment to hand over the last packets first.
    await new Promise((resolve) => setTimeout(resolve, 300));
    this.child.kill("SIGINT");
    await this.exited;
    const { stdout } = await run(
      "tshark",
      [
        "-r",
        this.file,
        ...this.sipPorts.flatMap((port) => ["-d", `udp.port==${port},sip`]),
        "-Y",
        "sip",
        "-T",
        "fields",
        "-E",
        "separator=|",
        "-e",
        "frame.time_epoch",
        "-e",
        "udp.srcport",
        "-e",
        "udp.dstport",
        "-e",
        "sip.Method",
        "-e",
        "sip.Status-Code",
        "-e",
        "sip.Call-ID",
        "-e",
        "ip.src",
        "-e",
        "ip.dst",
        // Last: its values may hold the separator.
        "-e",
        "json.member_with_value",
      ],
      { maxBuffer: 512 * 1024 * 1024 },
    );
    const packets: SipPacket[] = [];
    for (const line of stdout.split("\n")) {
      if (!line) continue;
      const [time, sourcePort, destinationPort, method, status, callId, sourceHost, destinationHost, ...json] =
        line.split("|");
      // Epoch seconds with 9 decimals: split to keep the microseconds a double would blur.
      const [seconds, fraction = "0"] = time.split(".");
      packets.push({
        timeMs: Number(seconds) * 1000 + Number(`0.${fraction}`) * 1000,
        sourceHost: sourceHost ?? "",
        sourcePort: Number(sourcePort),
        destinationHost: destinationHost ?? "",
        destinationPort: Number(destinationPort),
        method: method ?? "",
        status: status ? Number(status) : null,
        callId: callId ?? "",
        jsonMembers: json.join("|"),
      });
    }
    return packets;
  }
}

/** The first packet per Call-ID matching `filter`. */
export function firstByCallId(packets: SipPacket[], filter: (packet: SipPacket) => boolean): Map<string, SipPacket> {
  const first = new Map<string, SipPacket>();
  for (const packet of packets) if (filter(packet) && !first.has(packet.callId)) first.set(packet.callId, packet);
  return first;
}
