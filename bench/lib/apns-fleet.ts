// The devices of benchmark 4 (helper throughput): 1 000 device tokens across 10 apps, as a multi-tenant server
// has them. Each app has its own bundle id and its own token-auth key (team id, key id, AuthKey .p8), so the
// helper's config names ten sets of credentials. Per app, of its 100 devices: 80 PushKit tokens of production
// builds, 10 alert tokens (a phone that registered no PushKit token) and 10 PushKit tokens of development builds
// (RFC 8599 `apns.dev`: the sandbox host). The mock APNs (fleet-apns.ts) and the push clients (workers/push-client.ts)
// both derive the fleet from these functions, so nothing but the key directory passes between them.
import { createHash } from "node:crypto";
import { join } from "node:path";

export const FLEET_APPS = 10;
export const FLEET_DEVICES = 1000;

export type FleetEnvironment = "production" | "sandbox";

export interface FleetApp {
  appId: string;
  /** The app's bundle id: its alert topic; `<bundle>.voip` is its VoIP topic. */
  bundle: string;
  keyId: string;
  teamId: string;
}

export interface FleetDevice {
  /** 64 hex digits, as iOS gives them. */
  token: string;
  /** Index of its app (0 … FLEET_APPS - 1). */
  app: number;
  kind: "voip" | "alert";
  environment: FleetEnvironment;
}

/** App `index` (0-based). Key and team ids are 10 upper-case letters and digits, as the config requires. */
export function fleetApp(index: number): FleetApp {
  const two = String(index).padStart(2, "0");
  const bundle = `com.bench.tenant${two}`;
  return { appId: bundle, bundle, keyId: `BENCHKEY${two}`, teamId: `BENCHTEA${two}` };
}

/** Where the app's AuthKey .p8 lies in the benchmark's key directory. */
export function fleetKeyFile(keyDir: string, app: FleetApp): string {
  return join(keyDir, `AuthKey_${app.keyId}.p8`);
}

/** Device `n` (any integer; taken modulo FLEET_DEVICES). Consecutive devices belong to consecutive apps. */
export function fleetDevice(n: number): FleetDevice {
  const index = ((n % FLEET_DEVICES) + FLEET_DEVICES) % FLEET_DEVICES;
  const app = index % FLEET_APPS;
  const nth = Math.floor(index / FLEET_APPS) % 10;
  return {
    token: createHash("sha256").update(`bench device ${index}`).digest("hex"),
    app,
    kind: nth === 8 ? "alert" : "voip",
    environment: nth === 9 ? "sandbox" : "production",
  };
}

/** Devices that open every connection of a pool by app and host: one per app and environment. */
export function fleetWarmUpDevices(): number[] {
  const devices: number[] = [];
  for (let app = 0; app < FLEET_APPS; app++) devices.push(app, app + 9 * FLEET_APPS);
  return devices;
}
