// The iOS app (bundle id) of the tests' phones, on its own so that code run outside vitest (the benchmark's cluster,
// bench/cluster.ts, starts test/support/cluster.ts) can name it without importing wake-fixture.ts, which imports
// vitest's `expect` (vitest refuses to load outside a vitest run).
export const APP_ID = "com.app.mymobileapp";
