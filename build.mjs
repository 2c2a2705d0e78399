// Builds the three artifacts into dist/. Plain esbuild, one block per artifact.
import { build } from "esbuild";
import { readFile, stat, chmod } from "node:fs/promises";
import ts from "typescript";

// Kamailio 5.6's app_jsdt embeds Duktape 2.7: ES5 plus a few ES2015 built-ins. esbuild cannot lower
// let/const/destructuring to ES5, so TypeScript 5.9 (the last with target ES5) transpiles each file first.
const PLUGIN_TARGET = ts.ScriptTarget.ES5;
// app_jsdt 5.6 reads at most 128 KiB of a JS file and silently drops the rest (jsdt_load_file).
const PLUGIN_MAX_BYTES = 128 * 1024;
// The helper and the CLI run on the Node the README asks for.
const NODE_TARGET = "node20";

const transpileToEs5 = {
  name: "transpile-to-es5",
  setup(builder) {
    builder.onLoad({ filter: /\.ts$/ }, async (args) => {
      const source = await readFile(args.path, "utf8");
      const output = ts.transpileModule(source, {
        fileName: args.path,
        reportDiagnostics: true,
        compilerOptions: {
          target: PLUGIN_TARGET,
          module: ts.ModuleKind.ES2015,
          importHelpers: false,
          downlevelIteration: false,
          removeComments: true,
        },
      });
      const errors = (output.diagnostics ?? []).map((d) => ts.flattenDiagnosticMessageText(d.messageText, "\n"));
      if (errors.length) return { errors: errors.map((text) => ({ text })) };
      return { contents: output.outputText, loader: "js" };
    });
  },
};

async function buildPlugin() {
  await build({
    entryPoints: ["src/plugin/index.ts"],
    outfile: "dist/pusher.js",
    bundle: true,
    format: "iife",
    target: "es5",
    minify: true,
    legalComments: "none",
    plugins: [transpileToEs5],
    logLevel: "warning",
  });
  const { size } = await stat("dist/pusher.js");
  if (size >= PLUGIN_MAX_BYTES) {
    throw new Error(`dist/pusher.js is ${size} bytes: app_jsdt in Kamailio 5.6 truncates files at ${PLUGIN_MAX_BYTES}`);
  }
  return size;
}

async function buildNode(entry, outfile) {
  await build({
    entryPoints: [entry],
    outfile,
    bundle: true,
    platform: "node",
    format: "esm",
    target: NODE_TARGET,
    banner: { js: "#!/usr/bin/env node" },
    logLevel: "warning",
  });
  await chmod(outfile, 0o755);
}

const pluginBytes = await buildPlugin();
await buildNode("src/helper/main.ts", "dist/pusher-helper.js");
await buildNode("src/cli/main.ts", "dist/cli.js");
console.log(`built dist/pusher.js (${pluginBytes} bytes), dist/pusher-helper.js, dist/cli.js`);
