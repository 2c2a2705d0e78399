// scripts/ensure-deps.sh --test installs debootstrap only for root: it makes the Debian 13 root Kamailio 6.0 runs from
// in the tests, and making or entering that root needs root anyway. The script runs from a copy (its own folder's
// parent is its checkout: nothing here touches this one) on a machine without debootstrap (the copy looks for it
// where there is none), with `id`, `sudo`, `apt-get` and `npm` stubs first in PATH that log how they were called.
import { spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";

const ROOT = join(import.meta.dirname, "..");
let dir: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "pusher-ensure-deps-"));
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

function ensureDeps(uid: number): { code: number | null; stdout: string; calls: string } {
  const work = mkdtempSync(join(dir, `uid-${uid}-`));
  mkdirSync(join(work, "scripts"));
  const script = readFileSync(join(ROOT, "scripts", "ensure-deps.sh"), "utf8");
  expect(script).toContain("/usr/sbin/debootstrap");
  writeFileSync(
    join(work, "scripts", "ensure-deps.sh"),
    script.replaceAll("/usr/sbin/debootstrap", join(work, "no-debootstrap-here")),
  );
  const bin = join(work, "bin");
  mkdirSync(bin);
  const log = join(work, "calls.log");
  const stub = (name: string, body: string) => {
    writeFileSync(join(bin, name), `#!/bin/sh\n${body}\n`);
    chmodSync(join(bin, name), 0o755);
  };
  stub("id", `echo ${uid}`);
  for (const name of ["sudo", "apt-get", "npm"]) stub(name, `echo "${name} $*" >> ${JSON.stringify(log)}`);
  const result = spawnSync("bash", [join(work, "scripts", "ensure-deps.sh"), "--test"], {
    encoding: "utf8",
    env: { ...process.env, PATH: bin + delimiter + process.env.PATH },
    timeout: 20_000,
  });
  return { code: result.status, stdout: result.stdout, calls: existsSync(log) ? readFileSync(log, "utf8") : "" };
}

it("installs debootstrap with --test as root", () => {
  const run = ensureDeps(0);
  expect(run.code, run.stdout).toBe(0);
  expect(run.calls).toMatch(/^apt-get install -y -qq .*\bdebootstrap\b/m);
  expect(run.stdout).not.toContain("not root");
});

it("skips debootstrap when not root, saying why, and installs the rest through sudo", () => {
  const run = ensureDeps(1000);
  expect(run.code, run.stdout).toBe(0);
  expect(run.calls).not.toContain("debootstrap");
  expect(run.calls).not.toMatch(/^apt-get/m); // only through sudo
  expect(run.stdout).toContain(
    "not root: debootstrap not installed (only the Debian 13 root for Kamailio 6.0 needs it, and making that root needs root; the tests run on Kamailio 5.6 only)",
  );
});
