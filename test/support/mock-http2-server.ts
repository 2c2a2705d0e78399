// The HTTP/2 + TLS server under the provider mocks (APNs, FCM, Web Push, the benchmark's APNs): 127.0.0.1, a free
// port, the test CA's server certificate (trusted by the code under test only through NODE_EXTRA_CA_CERTS),
// sessions tracked so close() ends them at once. APNs mocks add client-certificate and SETTINGS options.
import { readFileSync } from "node:fs";
import http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { join } from "node:path";

export type StreamHandler = (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) => void;

export interface MockHttp2Options {
  /** More server options: client certificates (`ca`, `requestCert`), `settings`, `allowHTTP1: false`. */
  server?: http2.SecureServerOptions;
  /** Called for each new session once it is tracked. */
  onSession?: (session: http2.ServerHttp2Session) => void;
}

export class MockHttp2Server {
  /** The open sessions (a mock may send them GOAWAY). */
  readonly sessions = new Set<http2.ServerHttp2Session>();

  private constructor(
    private readonly server: http2.Http2SecureServer,
    onStream: StreamHandler,
    onSession?: (session: http2.ServerHttp2Session) => void,
  ) {
    server.on("session", (session) => {
      this.sessions.add(session);
      session.on("close", () => this.sessions.delete(session));
      session.on("error", () => {}); // the client went away mid-request: nothing to assert on
      onSession?.(session);
    });
    server.on("stream", onStream);
  }

  static async listen(
    caDir: string,
    onStream: StreamHandler,
    options: MockHttp2Options = {},
  ): Promise<MockHttp2Server> {
    const server = http2.createSecureServer({
      key: readFileSync(join(caDir, "server.key")),
      cert: readFileSync(join(caDir, "server.pem")),
      allowHTTP1: true,
      ...options.server,
    });
    const mock = new MockHttp2Server(server, onStream, options.onSession);
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    return mock;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  /** `host:port` as the helper's config wants it. */
  get host(): string {
    return `127.0.0.1:${this.port}`;
  }

  async close(): Promise<void> {
    for (const session of this.sessions) session.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
