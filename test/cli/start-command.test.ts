// `pusher start` before it starts anything: with sip.auth false it refuses a SIP address other machines may reach,
// naming the keys, unless --insecure-no-auth insists. Runs dist/cli.js as a process, with a PATH that has no
// kamailio, so a start the check lets through stops at the next step ("kamailio is not installed") with nothing running.
// The cluster options (--node-id …) are checked as the cluster.* keys are, naming the option.
import { afterAll, beforeAll, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { ROOT } from "../support/pusher-process";

let dir: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "pusher-start-"));
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

function start(sip: Record<string, unknown>, ...args: string[]) {
  const config = join(dir, "pusher.json");
  writeFileSync(config, JSON.stringify({ sip, stateDir: join(dir, "state") }));
  const result = spawnSync(process.execPath, [join(ROOT, "dist", "cli.js"), "--config", config, "start", ...args], {
    encoding: "utf8",
    env: { ...process.env, PATH: join(dir, "no-kamailio-here") },
    timeout: 20_000,
  });
  return { code: result.status, output: result.stdout + result.stderr };
}

it("refuses sip.auth false on an address other machines reach, naming sip.auth and sip.listen, before anything starts", () => {
  for (const listen of [
    ["udp:192.0.2.10:5060"],
    ["udp:127.0.0.1:5060", "tcp:0.0.0.0:5060"],
    ["tls:[2001:db8::1]:5061"],
    ["udp:pbx.example.com:5060"],
  ]) {
    const run = start({ listen, auth: false });
    expect(run.code, listen.join(" ")).toBe(1);
    expect(run.output).toMatch(
      /^pusher: PUSHER_ERR_CONFIG: sip\.auth is false while sip\.listen \(or --listen\) has \S+, which other machines may reach: .* --insecure-no-auth to insist\n$/,
    );
    expect(run.output).toContain(listen[listen.length - 1]);
    expect(existsSync(join(dir, "state"))).toBe(false);
  }
  // --listen is checked as sip.listen is.
  expect(start({ auth: false }, "--listen", "udp:198.51.100.7:5060").output).toMatch(
    /sip\.auth is false .* udp:198\.51\.100\.7:5060/,
  );
});

it("starts with --insecure-no-auth, saying why it should not, and with sip.auth false on loopback", () => {
  const insisted = start({ listen: ["udp:192.0.2.10:5060"], auth: false }, "--insecure-no-auth");
  expect(insisted.output).toContain(
    "[pusher] WARNING: sip.auth is false while sip.listen (or --listen) has udp:192.0.2.10:5060",
  );
  // Past the check: the next step finds no kamailio in this PATH.
  expect(insisted.output).toContain("kamailio is not installed");
  for (const listen of [["udp:127.0.0.1:5060", "tcp:127.0.0.2:5060"], ["udp:[::1]:5060"], ["tcp:localhost:5060"]]) {
    const run = start({ listen, auth: false });
    expect(run.output, listen.join(" ")).not.toMatch(/sip\.auth is false/);
    expect(run.output).toContain("kamailio is not installed");
  }
  // With auth on, any address is fine.
  expect(start({ listen: ["udp:192.0.2.10:5060"], auth: true }).output).not.toMatch(/sip\.auth is false/);
});

it("takes --insecure-no-auth only with start", () => {
  const config = join(dir, "pusher.json");
  const result = spawnSync(
    process.execPath,
    [join(ROOT, "dist", "cli.js"), "--config", config, "check", "--insecure-no-auth"],
    { encoding: "utf8" },
  );
  expect(result.status).toBe(2);
  expect(result.stderr).toContain(`--insecure-no-auth is only valid with "start"`);
});

const CLUSTER_OPTIONS = [
  "--node-id",
  "1",
  "--nodes",
  "2",
  "--dmq-listen",
  "127.0.1.1:5090",
  "--peers",
  "127.0.1.2:5090",
];

it("takes a cluster node's options instead of cluster.*, refusing a value as the key would, naming option and key", () => {
  const config = join(dir, "pusher.json");
  const sqlite = start(
    { auth: true },
    ...CLUSTER_OPTIONS,
    "--database",
    "sqlite:////var/lib/kamailio-pusher/devices.sqlite",
  );
  expect(sqlite.code).toBe(1);
  expect(sqlite.output).toMatch(
    new RegExp(
      `^pusher: PUSHER_ERR_CONFIG: --database \\(instead of ${config}'s cluster\\.database\\): cluster\\.database: must be a postgres:// URL: an sqlite file belongs to one node`,
    ),
  );
  const peer = start(
    { auth: true },
    ...CLUSTER_OPTIONS.slice(0, 6),
    "--peers",
    "127.0.1.2:5090,127.0.1.3",
    "--database",
    "postgres://p@db/pusher",
  );
  expect(peer.output).toContain("pusher: PUSHER_ERR_CONFIG: --peers (instead of");
  expect(peer.output).toContain("cluster.peers[1]: must be another node's DMQ host:port");
  // A key no option gave: the file with the options is named.
  expect(start({ auth: true }, "--node-id", "1").output).toContain(
    `pusher: PUSHER_ERR_CONFIG: ${config} with the cluster options: cluster.dmqListen: must be set when cluster.nodeId is`,
  );
  expect(existsSync(join(dir, "state"))).toBe(false);
  // Accepted: the next step finds no kamailio in this PATH.
  expect(start({ auth: true }, ...CLUSTER_OPTIONS, "--database", "postgres://p:secret@db/pusher").output).toContain(
    "kamailio is not installed",
  );
});

it("takes a config file whose cluster section the options complete (no cluster.database in it, --database given)", () => {
  const config = join(dir, "pusher.json");
  const cluster = { nodeId: 1, nodes: 2, dmqListen: "127.0.1.1:5090", peers: ["127.0.1.2:5090"] };
  writeFileSync(config, JSON.stringify({ sip: { auth: true }, stateDir: join(dir, "state"), cluster }));
  const run = (...args: string[]) =>
    spawnSync(process.execPath, [join(ROOT, "dist", "cli.js"), "--config", config, "start", ...args], {
      encoding: "utf8",
      env: { ...process.env, PATH: join(dir, "no-kamailio-here") },
      timeout: 20_000,
    });
  // Accepted: the next step finds no kamailio in this PATH.
  const completed = run("--database", "postgres://p@db/pusher");
  expect(completed.stdout + completed.stderr).toContain("kamailio is not installed");
  // Without the option the file alone is refused, naming the key.
  const alone = run();
  expect(alone.status).toBe(1);
  expect(alone.stdout + alone.stderr).toContain("cluster.database");
  rmSync(join(dir, "state"), { recursive: true, force: true });
});

it("counts a cluster node's DMQ address as a listen address other machines may reach", () => {
  const run = start(
    { auth: false },
    ...CLUSTER_OPTIONS.slice(0, 4),
    "--dmq-listen",
    "192.0.2.1:5090",
    "--peers",
    "192.0.2.2:5090",
    "--database",
    "postgres://p@db/pusher",
  );
  expect(run.code).toBe(1);
  expect(run.output).toMatch(
    /^pusher: PUSHER_ERR_CONFIG: sip\.auth is false while sip\.listen \(or --listen\) has udp:192\.0\.2\.1:5090, which other machines may reach/,
  );
});

it("takes the cluster options only with start, each once", () => {
  const config = join(dir, "pusher.json");
  const other = spawnSync(
    process.execPath,
    [join(ROOT, "dist", "cli.js"), "--config", config, "check", "--node-id", "1"],
    { encoding: "utf8" },
  );
  expect(other.status).toBe(2);
  expect(other.stderr).toContain(`--node-id is only valid with "start"`);
  expect(start({ auth: true }, "--peers", "a:1", "--peers", "b:1").output).toContain("--peers given more than once");
});

/**
 * `pusher start` up to the point where Kamailio runs, with a fake `kamailio` first in PATH: it answers -v as 5.6.3,
 * and as Kamailio writes the folder it was started in to kamailio.cwd and exits 1 (a start-up failure), so the start
 * has written its state files and stops with nothing left running. Then `pusher reload` against that state dir: it
 * writes the runtime copy, then finds no Kamailio on the ctl socket (PUSHER_ERR_RPC).
 */
function startWithFakeKamailio(...args: string[]) {
  return startFileWithFakeKamailio({}, ...args);
}

/** startWithFakeKamailio with `file`'s keys in the config file too. */
function startFileWithFakeKamailio(file: Record<string, unknown>, ...args: string[]) {
  const work = mkdtempSync(join(dir, "fake-"));
  const bin = join(work, "bin");
  mkdirSync(bin);
  writeFileSync(
    join(bin, "kamailio"),
    `#!/bin/sh\nif [ "$1" = -v ]; then printf 'version: kamailio 5.6.3 (x86_64/linux)\\nflags: USE_TCP\\n'; exit 0; fi\n` +
      `pwd > ${JSON.stringify(join(work, "kamailio.cwd"))}\nexit 1\n`,
  );
  chmodSync(join(bin, "kamailio"), 0o755);
  const config = join(work, "pusher.json");
  writeFileSync(config, JSON.stringify({ sip: { auth: false, listen: ["udp:127.0.0.1:5060"] }, ...file }));
  const env = { ...process.env, PATH: bin + delimiter + process.env.PATH };
  const run = (...words: string[]) => {
    const result = spawnSync(process.execPath, [join(ROOT, "dist", "cli.js"), "--config", config, ...words], {
      encoding: "utf8",
      env,
      timeout: 20_000,
      killSignal: "SIGKILL",
    });
    return { code: result.status, output: result.stdout + result.stderr };
  };
  const started = run("start", ...args);
  return { work, config, started, run, state: join(work, "pusher-state") };
}

it("runs Kamailio in the folder of its cfg, so that the cfg's relative include_file paths resolve there", () => {
  const { work, started } = startWithFakeKamailio();
  expect(started.output).toContain("kamailio exited with code 1 during start-up");
  expect(readFileSync(join(work, "kamailio.cwd"), "utf8").trim()).toBe(join(ROOT, "kamailio"));
});

it("keeps its cluster options for pusher reload, which applies them over the file's cluster.* as start did", () => {
  const database = "postgres://p:secret@db/pusher";
  const { state, started, run } = startWithFakeKamailio(...CLUSTER_OPTIONS, "--database", database);
  expect(started.output).toContain("kamailio exited with code 1 during start-up");
  const saved = join(state, "cluster-options.json");
  expect(JSON.parse(readFileSync(saved, "utf8"))).toEqual({
    nodeId: "1",
    nodes: "2",
    dmqListen: "127.0.1.1:5090",
    peers: "127.0.1.2:5090",
    database,
  });
  expect(statSync(saved).mode & 0o777).toBe(0o600); // --database may hold a password
  const running = JSON.parse(readFileSync(join(state, "pusher.runtime.json"), "utf8")).cluster;
  expect(running).toEqual({ nodeId: 1, nodes: 2, dmqListen: "127.0.1.1:5090", peers: ["127.0.1.2:5090"], database });

  // The file has no cluster section: reload writes the runtime copy with start's cluster, not the file's (none).
  const reload = run("reload");
  expect(reload.output).toMatch(/^pusher: PUSHER_ERR_RPC: /m); // no Kamailio on the ctl socket
  expect(JSON.parse(readFileSync(join(state, "pusher.runtime.json"), "utf8")).cluster).toEqual(running);

  // Your own Kamailio (--kamailio-ctl) has no pusher start: start's saved options, even broken, are not read.
  writeFileSync(saved, "{ broken");
  expect(run("reload", "--kamailio-ctl", join(state, "none.ctl")).output).toMatch(/^pusher: PUSHER_ERR_RPC: /m);
  expect(run("reload").output).toMatch(/^pusher: PUSHER_ERR_RELOAD: /m);
  // A start without cluster options leaves none behind for the next reload.
  expect(run("start").output).toContain("kamailio exited with code 1 during start-up");
  expect(existsSync(saved)).toBe(false);
});

it("lets reload, devices, metrics and users read a config file whose cluster section start's options completed", () => {
  // No cluster.database in the file: the node runs with start's --database, which the file alone lacks.
  const cluster = { nodeId: 1, nodes: 2, dmqListen: "127.0.1.1:5090", peers: ["127.0.1.2:5090"] };
  const { started, run } = startFileWithFakeKamailio({ cluster }, "--database", "postgres://p@db/pusher");
  expect(started.output).toContain("kamailio exited with code 1 during start-up");
  // Both get as far as the ctl socket, where no Kamailio answers.
  expect(run("reload").output).toMatch(/^pusher: PUSHER_ERR_RPC: /m);
  expect(run("devices", "alice@example.com").output).toMatch(/^pusher: PUSHER_ERR_RPC: /m);
  // pusher metrics reads the running node too (nothing answers it here), and pusher users its state dir.
  expect(run("metrics").output).not.toContain("PUSHER_ERR_CONFIG");
  expect(run("users", "list").output).toBe("");
});
