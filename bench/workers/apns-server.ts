// Child process for benchmark 4: the bench mock APNs on its own core, so the client being measured has the other.
// Tells its parent {port} once listening; answers {type:"stats"} with how many pushes came and how the
// connections authenticated (bearer token or client certificate).
import { BenchApns } from "../lib/bench-apns";

const apns = await BenchApns.start({ caDir: process.argv[2], record: false });
process.on("message", (message: { type: string }) => {
  if (message.type === "stats") process.send!({ type: "stats", pushes: apns.count, auth: { ...apns.auth } });
  if (message.type === "stop") void apns.close().then(() => process.disconnect());
});
process.send!({ type: "listening", port: apns.port });
