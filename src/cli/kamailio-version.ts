// The Kamailio `pusher start` runs and `pusher check` checks: the `kamailio` in PATH, asked with `kamailio -v`.
// The lowest supported version is 5.6: the plugin is type-checked against 5.6's KSR functions
// (kamailio-jsdt-types/index.d.ts) and tested on 5.6 (Debian 12) and 6.0 (Debian 13, docs/kamailio-versions.md).
import { execFileSync } from "node:child_process";
import { accessSync, constants } from "node:fs";
import { delimiter, join } from "node:path";
import { CliError } from "./config-file";

const LOWEST_SUPPORTED_KAMAILIO = { major: 5, minor: 6 };

/** What scripts/ensure-deps.sh installs for Kamailio (Debian 12). */
const KAMAILIO_PACKAGES =
  "kamailio kamailio-extra-modules kamailio-utils-modules kamailio-sqlite-modules kamailio-tls-modules";

export interface KamailioVersion {
  major: number;
  minor: number;
  patch: number;
  /** `kamailio -v`'s version line without its label, e.g. "kamailio 5.6.3 (x86_64/linux)". */
  text: string;
  /** The binary that answered, as found in PATH. */
  path: string;
}

export function kamailioNotInstalled(): CliError {
  return new CliError(
    "PUSHER_ERR_INSTALL",
    `kamailio is not installed (no kamailio in PATH): install Debian's ${KAMAILIO_PACKAGES} (npm start installs them)`,
  );
}

/** The first executable `kamailio` in PATH, as spawn("kamailio") would run it. */
function kamailioInPath(): string | undefined {
  for (const dir of (process.env.PATH ?? "").split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, "kamailio");
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** Parses `kamailio -v` ("version: kamailio 5.6.3 (x86_64/linux) " on its first line). */
export function parseKamailioVersion(output: string, path: string): KamailioVersion {
  const line = /^version:\s*(kamailio\s+(\d+)\.(\d+)\.(\d+)\S*.*?)\s*$/m.exec(output);
  if (!line) {
    throw new CliError(
      "PUSHER_ERR_KAMAILIO_VERSION",
      `cannot read the version in \`${path} -v\`: ${JSON.stringify(output.trim().split("\n")[0] ?? "")}`,
    );
  }
  return { major: Number(line[2]), minor: Number(line[3]), patch: Number(line[4]), text: line[1], path };
}

/** `kamailio -v` of the kamailio in PATH; PUSHER_ERR_INSTALL when there is none. */
export function installedKamailioVersion(): KamailioVersion {
  const path = kamailioInPath();
  if (!path) throw kamailioNotInstalled();
  let output: string;
  try {
    output = execFileSync(path, ["-v"], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], timeout: 10_000 });
  } catch (error) {
    const failed = error as { stdout?: string; stderr?: string; message: string };
    throw new CliError(
      "PUSHER_ERR_KAMAILIO_VERSION",
      `\`${path} -v\` failed: ${(failed.stderr || failed.stdout || failed.message).trim()}`,
    );
  }
  return parseKamailioVersion(output, path);
}

/** PUSHER_ERR_KAMAILIO_VERSION for a Kamailio below 5.6. */
export function requireSupportedKamailio(version: KamailioVersion): void {
  const { major, minor } = LOWEST_SUPPORTED_KAMAILIO;
  if (version.major > major || (version.major === major && version.minor >= minor)) return;
  throw new CliError(
    "PUSHER_ERR_KAMAILIO_VERSION",
    `${version.path} is ${version.text}: kamailio-pusher needs Kamailio ${major}.${minor} or later (the plugin calls app_jsdt functions of ${major}.${minor}; ` +
      `tested on 5.6 and 6.0): install Debian 12's or 13's ${KAMAILIO_PACKAGES}, or put a newer kamailio first in PATH`,
  );
}
