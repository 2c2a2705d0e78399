// The systemd units in packaging/systemd: they run what docs/install.md installs, where it installs it, and
// systemd accepts them (systemd-analyze verify, when this machine has it).
import { describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";

const ROOT = join(import.meta.dirname, "..");
const UNITS = join(ROOT, "packaging", "systemd");
const CONFIG = "/etc/kamailio-pusher/pusher.json";
const SHARE = "/usr/share/kamailio-pusher";

type Unit = { [section: string]: { [key: string]: string[] } };

/** systemd's INI dialect, as far as these units use it: sections, `Key=value` (repeatable), # and ; comments. */
function parseUnit(file: string): Unit {
  const unit: Unit = {};
  let section = "";
  for (const rawLine of readFileSync(join(UNITS, file), "utf8").split("\n")) {
    const line = rawLine.trim();
    if (line === "" || line.startsWith("#") || line.startsWith(";")) continue;
    const header = /^\[(.+)\]$/.exec(line);
    if (header) {
      section = header[1];
      unit[section] ??= {};
      continue;
    }
    const equals = line.indexOf("=");
    if (!section || equals < 0) throw new Error(`${file}: cannot parse ${JSON.stringify(line)}`);
    (unit[section][line.slice(0, equals).trim()] ??= []).push(line.slice(equals + 1).trim());
  }
  return unit;
}

function single(unit: Unit, section: string, key: string): string | undefined {
  const values = unit[section]?.[key];
  expect(values?.length ?? 0, `${section}.${key}`).toBeLessThanOrEqual(1);
  return values?.[0];
}

function installSection(): string {
  return readFileSync(join(ROOT, "docs", "install.md"), "utf8");
}

const UNIT_FILES = {
  "kamailio-pusher-helper.service": `/usr/bin/node ${SHARE}/pusher-helper.js --config ${CONFIG}`,
  "kamailio-pusher.service": `/usr/bin/node ${SHARE}/dist/cli.js --config ${CONFIG} start`,
};

describe("systemd units", () => {
  for (const [file, execStart] of Object.entries(UNIT_FILES)) {
    describe(file, () => {
      const unit = parseUnit(file);

      it("runs the installed script with the documented config file, as kamailio, restarting after 1 s", () => {
        expect(single(unit, "Service", "ExecStart")).toBe(execStart);
        expect(single(unit, "Service", "User")).toBe("kamailio");
        expect(single(unit, "Service", "Restart")).toBe("always");
        expect(single(unit, "Service", "RestartSec")).toBe("1");
        expect(single(unit, "Install", "WantedBy")).toBe("multi-user.target");
      });

      it("is hardened: no new privileges, read-only system and install paths, private /tmp", () => {
        expect(single(unit, "Service", "NoNewPrivileges")).toBe("yes");
        expect(single(unit, "Service", "ProtectSystem")).toBe("strict");
        expect(single(unit, "Service", "PrivateTmp")).toBe("yes");
        expect(single(unit, "Service", "ReadOnlyPaths")?.split(/\s+/)).toEqual(["/etc/kamailio-pusher", SHARE]);
        // Node's JIT cannot run with it.
        expect(single(unit, "Service", "MemoryDenyWriteExecute")).toBeUndefined();
      });

      it("sends SIGHUP for reload only if the process it runs handles it", () => {
        const source =
          file === "kamailio-pusher.service"
            ? join(ROOT, "src", "cli", "start.ts")
            : join(ROOT, "src", "helper", "main.ts");
        const reloads = readFileSync(source, "utf8").includes("SIGHUP");
        const execReload = single(unit, "Service", "ExecReload");
        if (reloads) expect(execReload).toBe("/bin/kill -HUP $MAINPID");
        else expect(execReload).toBeUndefined();
      });

      it("is named, with the paths it runs, in docs/install.md", () => {
        const section = installSection();
        expect(section).toContain(file);
        for (const path of execStart.split(" ").filter((word) => word.startsWith("/etc/") || word.startsWith(SHARE))) {
          expect(section, path).toContain(path);
        }
      });
    });
  }

  it("starts the helper after Kamailio and wants it", () => {
    const unit = parseUnit("kamailio-pusher-helper.service");
    expect(single(unit, "Unit", "After")?.split(/\s+/)).toContain("kamailio.service");
    expect(single(unit, "Unit", "Wants")?.split(/\s+/)).toContain("kamailio.service");
  });

  it("gives the all-in-one a writable state directory and lets pusher start stop its children", () => {
    const unit = parseUnit("kamailio-pusher.service");
    expect(single(unit, "Service", "StateDirectory")).toBe("kamailio-pusher");
    expect(single(unit, "Service", "KillMode")).toBe("mixed");
    expect(single(unit, "Unit", "Conflicts")).toBe("kamailio.service");
    expect(installSection()).toContain('"stateDir": "/var/lib/kamailio-pusher"');
  });

  const analyze = spawnSync("systemd-analyze", ["--version"], { encoding: "utf8" });
  it.skipIf(analyze.status !== 0)("passes systemd-analyze verify", () => {
    const result = spawnSync("systemd-analyze", ["verify", ...Object.keys(UNIT_FILES)], {
      cwd: UNITS,
      encoding: "utf8",
    });
    expect(result.status, result.stderr).toBe(0);
    // verify exits 0 on unknown keys too, only warning about them.
    expect(result.stderr).not.toMatch(/Unknown|ignoring|not executable/i);
  });
});
