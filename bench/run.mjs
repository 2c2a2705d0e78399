// Bundles the benchmark (TypeScript, like the rest of the project; no tsx here) into build/bench/ with esbuild and
// runs it. `node bench/run.mjs [--quick] [--only wake,register,helper,memory,hostile,cluster,restart,storm]`; bench/run.sh prepares the machine.
import { build } from "esbuild";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const outdir = join(root, "build", "bench");
await build({
  entryPoints: [
    join(root, "bench", "main.ts"),
    join(root, "bench", "workers", "apns-server.ts"),
    join(root, "bench", "workers", "push-client.ts"),
  ],
  outdir,
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node20",
  // Packages (esbuild) stay in node_modules.
  packages: "external",
  logLevel: "warning",
});
await import(pathToFileURL(join(outdir, "main.js")).href);
