// The HTTP/2 + TLS server under the FCM and Web Push mocks: 127.0.0.1, a free port, the test CA's server
// certificate (trusted by the code under test only through NODE_EXTRA_CA_CERTS), sessions tracked so close()
// ends them at once.
import { readFileSync } from "node:fs";
import http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { join } from "node:path";

export type StreamHandler = (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) => void;

export class MockHttp2Server {
  private readonly sessions = new Set<http2.ServerHttp2Session>();

  private constructor(private readonly server: http2.Http2SecureServer, onStream: StreamHandler) {
    server.on("session", (session) => {
      this.sessions.add(session);
      session.on("close", () => this.sessions.delete(session));
      session.on("error", () => {});
    });
    server.on("stream", onStream);
  }

  static async listen(caDir: string, onStream: StreamHandler): Promise<MockHttp2Server> {
    const server = http2.createSecureServer({
      key: readFileSync(join(caDir, "server.key")),
      cert: readFileSync(join(caDir, "server.pem")),
      allowHTTP1: true,
    });
    const mock = new MockHttp2Server(server, onStream);
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    return mock;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  async close(): Promise<void> {
    for (const session of this.sessions) session.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
