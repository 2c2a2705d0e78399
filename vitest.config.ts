import { configDefaults, defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // The long fault cases (load for 60 s) run in `npm run test:faults` (vitest.faults.config.ts) only.
    exclude: [...configDefaults.exclude, "test/faults/**/*.long.test.ts"],
    // Integration tests start Kamailio and wait on SIP timers measured in seconds.
    testTimeout: 60000,
    hookTimeout: 60000,
    pool: "forks",
  },
});
