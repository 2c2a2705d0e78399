// Generates kamailio-jsdt-types/: TypeScript declarations of the KSR object that app_jsdt hands to the plugin,
// one file per tested Kamailio. The list comes from the running Kamailio itself (RPC app_jsdt.api_list), so the
// types match the exact version and module set we deploy instead of a hand-copied doc page.
//   index.d.ts         Kamailio 5.6 (Debian 12, /usr/sbin): the lowest supported, what the plugin is typed against
//   kamailio-6.0.d.ts  Kamailio 6.0 (Debian 13, scripts/kamailio-6.0/ runs it from scripts/ensure-debian13-root.sh's
//                      root): the plugin is type-checked against it too (src/plugin/tsconfig.kamailio-6.0.json)
//
// Usage: npm run types:ksr [-- 5.6|6.0]   (both files unless one version is named)
import { spawn, execFile, execFileSync } from "node:child_process";
import { mkdtemp, writeFile, rm, mkdir } from "node:fs/promises";
import { once } from "node:events";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import dgram from "node:dgram";
import net from "node:net";

const TARGETS = {
  5.6: { kamailio: "/usr/sbin/kamailio", kamcmd: "/usr/sbin/kamcmd", out: "index.d.ts" },
  "6.0": {
    kamailio: fileURLToPath(new URL("kamailio-6.0/kamailio", import.meta.url)),
    kamcmd: fileURLToPath(new URL("kamailio-6.0/kamcmd", import.meta.url)),
    out: "kamailio-6.0.d.ts",
  },
};

// Every module the plugin may call through KSR. Modules without KEMI exports (usrloc, rtimer, db_sqlite…)
// are still loaded so that the ones depending on them start exactly as in production.
const MODULES = [
  "jsonrpcs",
  "kex",
  "corex",
  "tm",
  "tmx",
  "sl",
  "rr",
  "pv",
  "maxfwd",
  "textops",
  "siputils",
  "xlog",
  "sanity",
  "htable",
  "usrloc",
  "registrar",
  "tsilo",
  "nathelper",
  "rtimer",
  "evapi",
  "sqlops",
  "db_sqlite",
  "auth",
  "auth_db",
  "uuid",
  "xhttp",
  "xhttp_prom",
  "ipops",
  "dmq",
];

const PARAM_TYPES = { str: "string", int: "number", long: "number" };
const RET_TYPES = { none: "void", int: "number", long: "number", bool: "boolean", xval: "string | number | null" };
const IDENTIFIER = /^[A-Za-z_$][\w$]*$/;

// The OS picks a free port; we release it right away and hand the number to Kamailio (a tiny race we accept).
async function freeUdpPort() {
  const socket = dgram.createSocket("udp4");
  await new Promise((resolve, reject) => socket.once("error", reject).bind(0, "127.0.0.1", resolve));
  const { port } = socket.address();
  await new Promise((resolve) => socket.close(resolve));
  return port;
}

// evapi listens on TCP 127.0.0.1:8448 by default, which would clash with a Kamailio already running here.
async function freeTcpPort() {
  const server = net.createServer();
  await new Promise((resolve, reject) => server.once("error", reject).listen(0, "127.0.0.1", resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

function kamailioConfig(dir, sipPort, evapiPort) {
  return `#!KAMAILIO
debug=2
log_stderror=yes
children=1
auto_aliases=no
dns=no
rev_dns=no
listen=udp:127.0.0.1:${sipPort}

loadmodule "ctl.so"
${MODULES.map((m) => `loadmodule "${m}.so"`).join("\n")}
loadmodule "app_jsdt.so"

modparam("ctl", "binrpc", "unix:${dir}/ctl.sock")
# app_jsdt refuses an empty script file ("empty content"), hence the one-line stub.
modparam("app_jsdt", "load", "${dir}/probe.js")
# auth_db will not start without a database. The URL parser eats the "/" after "sqlite://" as the
# host/database separator, so an absolute path needs four slashes.
modparam("auth_db", "db_url", "sqlite:///${dir}/probe.db")
# xhttp requires a KEMI callback name (or event_route[xhttp:request]) to start.
modparam("xhttp", "event_callback", "ksr_xhttp_event")
modparam("evapi", "bind_addr", "127.0.0.1:${evapiPort}")
# dmq will not start without its own address, one of the listen sockets (a cluster of one: no notification peer).
modparam("dmq", "server_address", "sip:127.0.0.1:${sipPort}")

cfgengine "jsdt"
`;
}

// kamcmd does not print JSON: it prints RPC structs as tab-indented "key: value" lines and the methods array
// as a struct with one repeated "func:" key. Accept real JSON too, in case a future kamcmd prints it.
function parseApiList(text) {
  let msize;
  let funcs = [];
  try {
    const json = JSON.parse(text);
    msize = json.msize;
    funcs = json.methods.map((m) => m.func);
  } catch {
    let current = null;
    for (const line of text.split("\n")) {
      const match = /^\s*(\w+):\s?(.*?)\s*$/.exec(line);
      if (!match) continue;
      const [, key, value] = match;
      if (key === "msize") msize = Number(value);
      else if (key === "func") funcs.push((current = {}));
      else if (current && ["ret", "module", "name", "params"].includes(key)) current[key] = value;
    }
  }
  const complete = funcs.filter((f) => f && f.ret && f.name && f.params && f.module !== undefined);
  if (!complete.length || complete.length !== funcs.length || (msize !== undefined && msize !== funcs.length)) {
    throw new Error(
      `cannot parse app_jsdt.api_list output (msize ${msize}, ${complete.length}/${funcs.length} functions):\n${text.slice(0, 500)}`,
    );
  }
  return funcs;
}

async function sleep(ms) {
  await new Promise((resolve) => setTimeout(resolve, ms));
}

// Starts a throwaway Kamailio on loopback, asks it for the KEMI export list, stops it and cleans up.
async function fetchApiList({ kamailio: KAMAILIO, kamcmd: KAMCMD }) {
  const dir = await mkdtemp(join(tmpdir(), "ksr-types-"));
  let kamailio;
  let log = "";
  try {
    await writeFile(join(dir, "probe.js"), "function ksr_request_route() {}\n");
    await writeFile(join(dir, "probe.db"), "");
    await writeFile(join(dir, "kamailio.cfg"), kamailioConfig(dir, await freeUdpPort(), await freeTcpPort()));
    kamailio = spawn(
      KAMAILIO,
      ["-f", join(dir, "kamailio.cfg"), "-DD", "-E", "-w", dir, "-Y", dir, "-P", join(dir, "k.pid")],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    const collect = (chunk) => (log = (log + chunk).slice(-20000));
    kamailio.stdout.on("data", collect);
    kamailio.stderr.on("data", collect);
    let exited = false;
    kamailio.on("close", () => (exited = true)); // "close": its log is complete by then
    kamailio.on("error", (err) => {
      exited = true;
      log += `\n${err.message}`;
    });

    // Kamailio takes a moment to fork its processes and open the ctl socket: poll rather than guess a delay.
    const deadline = Date.now() + 10_000;
    while (!exited && Date.now() < deadline) {
      let stdout;
      try {
        ({ stdout } = await promisify(execFile)(KAMCMD, ["-s", `unix:${dir}/ctl.sock`, "app_jsdt.api_list"], {
          maxBuffer: 16 * 1024 * 1024,
        }));
      } catch {
        await sleep(200);
        continue;
      }
      return parseApiList(stdout);
    }
    throw new Error(`Kamailio ${exited ? "exited" : "did not answer app_jsdt.api_list within 10 s"}. Its log:\n${log}`);
  } finally {
    if (kamailio?.pid !== undefined && kamailio.exitCode === null && kamailio.signalCode === null) {
      // SIGTERM lets Kamailio stop its children itself; SIGKILL only if it hangs.
      const exit = once(kamailio, "exit");
      kamailio.kill("SIGTERM");
      const timer = setTimeout(() => kamailio.kill("SIGKILL"), 5000);
      await exit;
      clearTimeout(timer);
    }
    await rm(dir, { recursive: true, force: true });
  }
}

function interfaceName(module) {
  return (
    "Ksr" +
    module
      .split("_")
      .map((part) => part.charAt(0).toUpperCase() + part.slice(1))
      .join("")
  );
}

// Kamailio 6.0's api_list prints "<null string>" as the params of a function with a `long` parameter (pv.setl):
// its table of KEMI type names (_sr_kemi_param_map in src/core/kemi.c) has no entry for SR_KEMIP_LONG.
const UNNAMED_PARAMS = "<null string>";

function signature(f) {
  const ret = RET_TYPES[f.ret];
  if (f.params === UNNAMED_PARAMS && ret !== undefined) {
    return `/** api_list names no parameter types for this one (a KEMI long among them). */\n  ${f.name}(...params: (string | number)[]): ${ret};`;
  }
  const params = f.params === "none" ? [] : f.params.split(",").map((p) => p.trim());
  const types = params.map((p) => PARAM_TYPES[p]);
  // Fail loudly on a KEMI type this generator does not know, rather than emitting a wrong declaration.
  if (ret === undefined || types.includes(undefined))
    throw new Error(`unknown KEMI type in ${f.module}.${f.name}: (${f.params}) → ${f.ret}`);
  return `${f.name}(${types.map((t, i) => `p${i + 1}: ${t}`).join(", ")}): ${ret};`;
}

// Plain code-unit order, not localeCompare, so the output does not depend on the machine's locale.
const byString = (a, b) => (a < b ? -1 : a > b ? 1 : 0);

function generate(funcs, version) {
  const modules = new Map();
  for (const f of funcs) {
    if (!IDENTIFIER.test(f.name) || (f.module && !IDENTIFIER.test(f.module))) {
      console.warn(`skipping ${f.module}.${f.name}: not a valid JS identifier`);
      continue;
    }
    if (!modules.has(f.module)) modules.set(f.module, []);
    modules.get(f.module).push(f);
  }
  const members = (list) => list.sort((a, b) => byString(a.name, b.name)).map((f) => `  ${signature(f)}`);
  const moduleNames = [...modules.keys()].filter((m) => m !== "").sort(byString);
  const core = modules.get("") ?? [];
  const coreNames = new Set(core.map((f) => f.name));
  for (const m of [...moduleNames, "x"])
    if (coreNames.has(m)) throw new Error(`core function ${m} clashes with module KSR.${m}`);
  if (moduleNames.includes("x")) throw new Error("a module named x clashes with app_jsdt's own KSR.x");

  const out = [
    `// Generated by \`npm run types:ksr\` (scripts/generate-ksr-types.mjs) from ${version},`,
    "// using the app_jsdt.api_list RPC. Do not edit: regenerate instead.",
    "",
  ];
  for (const m of moduleNames) {
    out.push(`/** KSR.${m} */`, `interface ${interfaceName(m)} {`, ...members(modules.get(m)), "}", "");
  }
  out.push(
    "/** The KSR object app_jsdt exposes to the script. */",
    "interface Ksr {",
    ...members(core),
    ...moduleNames.map((m) => `  ${m}: ${interfaceName(m)};`),
    "  /** app_jsdt's own helpers; api_list does not report them, so they are declared by the generator. */",
    "  x: {",
    "    exit(): void;",
    "    drop(): void;",
    "    modf(name: string, ...args: string[]): number;",
    "  };",
    "}",
    "",
    "declare var KSR: Ksr;",
    "",
  );
  return { text: out.join("\n"), modules: moduleNames.length, functions: [...modules.values()].flat().length };
}

// "version: kamailio 5.6.3 (x86_64/linux) " → "Kamailio 5.6.3 (x86_64/linux)"
function versionOf(kamailio) {
  const versionLine = execFileSync(kamailio, ["-v"], { encoding: "utf8" }).split("\n")[0];
  return versionLine.replace(/^version:\s*kamailio/i, "Kamailio").trim();
}

const wanted = process.argv.slice(2);
for (const series of wanted)
  if (!TARGETS[series])
    throw new Error(`types:ksr: unknown Kamailio ${JSON.stringify(series)}; use ${Object.keys(TARGETS).join(" or ")}`);
for (const series of wanted.length ? wanted : Object.keys(TARGETS)) {
  const target = TARGETS[series];
  try {
    const version = versionOf(target.kamailio);
    // A file named for one version must never be written from another (index.d.ts from a 6.0 would let the
    // plugin call functions 5.6 lacks).
    if (!version.startsWith(`Kamailio ${series}.`)) throw new Error(`${target.kamailio} is ${version}, not ${series}`);
    const { text, modules, functions } = generate(await fetchApiList(target), version);
    const out = new URL(`../kamailio-jsdt-types/${target.out}`, import.meta.url);
    await mkdir(new URL(".", out), { recursive: true });
    await writeFile(out, text);
    console.log(
      `wrote kamailio-jsdt-types/${target.out}: ${modules} modules + core, ${functions} functions (${version})`,
    );
  } catch (err) {
    console.error(`types:ksr ${series} failed: ${err.message}`);
    process.exitCode = 1;
  }
}
