// A lean APNs stand-in for benchmarks: HTTP/2 over TLS on 127.0.0.1 with the test CA's server certificate. It
// asks for a client certificate but accepts connections without one (token auth), answers every POST to
// /3/device/<token> with 200 and an apns-id, and records the receive time on a monotonic clock converted to
// epoch ms (performance.timeOrigin + performance.now(): sub-millisecond, comparable with capture timestamps).
// test/support/mock-apns.ts validates like APNs does; this one stays out of the measurement's way: it knows no
// devices and checks neither topic nor environment, so any token the helper sends is accepted (one host serves
// as production and sandbox both).
import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import type http2 from "node:http2";
import { join } from "node:path";
import type { TLSSocket } from "node:tls";
import { MockHttp2Server } from "../../test/support/mock-http2-server";

export interface BenchPush {
  token: string;
  /** The push body's call-id (the SIP Call-ID of the held call), when the body is JSON with one. */
  callId: string | null;
  /** aps.alert.loc-key when there is one: tells a call push from a follow-up alert. */
  alertKey: string | null;
  receivedAtMs: number;
}

export interface BenchApnsOptions {
  caDir: string;
  /** Keep each push (token, call-id, time); off for throughput runs. */
  record: boolean;
}

export class BenchApns {
  readonly pushes: BenchPush[] = [];
  count = 0;
  /** Connections by how their first request authenticated. */
  readonly auth = { bearer: 0, certificate: 0, none: 0 };
  private readonly authenticated = new WeakSet<http2.Http2Session>();
  private server!: MockHttp2Server;

  private constructor(private readonly options: BenchApnsOptions) {}

  static async start(options: BenchApnsOptions): Promise<BenchApns> {
    const mock = new BenchApns(options);
    mock.server = await MockHttp2Server.listen(options.caDir, (stream, headers) => mock.onStream(stream, headers), {
      server: {
        ca: readFileSync(join(options.caDir, "ca.pem")),
        requestCert: true,
        rejectUnauthorized: false,
        allowHTTP1: false,
        // APNs allows many concurrent streams per connection; do not let the server's limit be the bottleneck.
        settings: { maxConcurrentStreams: 1000 },
      },
    });
    return mock;
  }

  get port(): number {
    return this.server.port;
  }

  get host(): string {
    return this.server.host;
  }

  close(): Promise<void> {
    return this.server.close();
  }

  private onStream(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders): void {
    const session = stream.session;
    if (session && !this.authenticated.has(session)) {
      this.authenticated.add(session);
      if (typeof headers.authorization === "string" && headers.authorization.startsWith("bearer ")) this.auth.bearer++;
      else if ((session.socket as TLSSocket).getPeerCertificate()?.subject) this.auth.certificate++;
      else this.auth.none++;
    }
    const chunks: Buffer[] = [];
    stream.on("error", () => {});
    stream.on("data", (chunk: Buffer) => chunks.push(chunk));
    stream.on("end", () => {
      const receivedAtMs = performance.timeOrigin + performance.now();
      const path = String(headers[":path"] ?? "");
      if (headers[":method"] !== "POST" || !path.startsWith("/3/device/")) {
        stream.respond({ ":status": 404, "content-type": "application/json" });
        stream.end('{"reason":"BadPath"}');
        return;
      }
      this.count++;
      if (this.options.record) {
        let callId: string | null = null;
        let alertKey: string | null = null;
        try {
          const body = JSON.parse(Buffer.concat(chunks).toString("utf8")) as {
            "call-id"?: unknown;
            aps?: { alert?: { "loc-key"?: unknown } };
          };
          if (typeof body["call-id"] === "string") callId = body["call-id"];
          if (typeof body.aps?.alert?.["loc-key"] === "string") alertKey = body.aps.alert["loc-key"];
        } catch {
          callId = null;
        }
        this.pushes.push({
          token: decodeURIComponent(path.slice("/3/device/".length)),
          callId,
          alertKey,
          receivedAtMs,
        });
      }
      stream.respond({ ":status": 200, "apns-id": randomUUID() }, { endStream: true });
    });
  }
}
