// The one error catalog (src/errors.ts) against the code: every PUSHER_ERR_* code the plugin, the helper, the CLI
// or the cfg can emit is in it, with a meaning and what to do. docs/errors.md against the catalog: test/docs.test.ts.
import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { describe, expect, it } from "vitest";
import { ERROR_CODES } from "../src/errors";

const ROOT = join(import.meta.dirname, "..");

function filesUnder(dir: string, extensions: string[]): string[] {
  return readdirSync(join(ROOT, dir), { recursive: true, encoding: "utf8" })
    .filter((name) => extensions.some((extension) => name.endsWith(extension)))
    .map((name) => join(dir, name));
}

/** Every PUSHER_ERR_* code written out in a file: `PUSHER_ERR_` alone (a template's prefix, "PUSHER_ERR_*") is not one. */
function codesIn(file: string): string[] {
  return [...readFileSync(join(ROOT, file), "utf8").matchAll(/PUSHER_ERR_[A-Z0-9_]*[A-Z0-9]/g)].map(
    (match) => match[0],
  );
}

describe("ERROR_CODES, the one catalog", () => {
  it("gives every code the PUSHER_ERR_ prefix, a meaning and an action", () => {
    for (const [code, entry] of Object.entries(ERROR_CODES)) {
      expect(code).toMatch(/^PUSHER_ERR_[A-Z0-9_]+$/);
      expect(entry.meaning.length, code).toBeGreaterThan(10);
      expect(entry.action.length, code).toBeGreaterThan(3);
    }
  });

  it("holds every code the plugin, the helper, the CLI and the cfg emit", () => {
    const files = [...filesUnder("src", [".ts"]), ...filesUnder("kamailio", [".cfg"])];
    const missing = files.flatMap((file) =>
      codesIn(file)
        .filter((code) => !(code in ERROR_CODES))
        .map((code) => `${code} (${relative(ROOT, join(ROOT, file))})`),
    );
    expect(missing).toEqual([]);
  });
});
