// Child process for benchmark 4: the fleet's mock APNs (production and sandbox ports) on its own core, so the client
// being measured has the other. argv: the test CA directory, the directory of the fleet's AuthKey .p8 files.
// Tells its parent {hosts} once listening; answers {type:"stats"} with what the last client did (pushes, refusals,
// connections as the server saw them) and starts counting afresh.
import { FleetApns } from "../lib/fleet-apns";

const apns = await FleetApns.start(process.argv[2], process.argv[3]);
process.on("message", (message: { type: string }) => {
  if (message.type === "stats") process.send!({ type: "stats", stats: apns.takeStats() });
  if (message.type === "stop") void apns.close().then(() => process.disconnect());
});
process.send!({ type: "listening", hosts: apns.hosts });
