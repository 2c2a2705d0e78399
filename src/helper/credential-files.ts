// Which credential files a config reload changed: a SHA-256 of every certificate, key and service account
// file the apps name, taken at each (re)load. Only sessions bound to a changed file are replaced.
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import type { PusherConfig } from "../config";

/** file → SHA-256 of its content ("" when it cannot be read: the push reports that, with its code). */
export function credentialFingerprints(config: PusherConfig): Map<string, string> {
  const fingerprints = new Map<string, string>();
  for (const appId of Object.keys(config.apps)) {
    const app = config.apps[appId];
    const files = [
      app.apple?.certificateFile,
      app.apple?.keyFile,
      app.firebase?.serviceAccountFile,
      app.webpush?.vapidKeyFile,
    ];
    for (const file of files) {
      if (file === undefined || fingerprints.has(file)) continue;
      let digest = "";
      try {
        digest = createHash("sha256").update(readFileSync(file)).digest("hex");
      } catch {
        // unreadable now: counted as changed, so nothing keeps using what was read before
      }
      fingerprints.set(file, digest);
    }
  }
  return fingerprints;
}

/** Files of `after` that are new, unreadable, or whose content differs from `before`. */
export function changedFiles(before: Map<string, string>, after: Map<string, string>): Set<string> {
  const changed = new Set<string>();
  for (const [file, digest] of after) if (digest === "" || before.get(file) !== digest) changed.add(file);
  return changed;
}
