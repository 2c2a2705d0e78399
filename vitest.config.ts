import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // Integration tests start Kamailio and wait on SIP timers measured in seconds.
    testTimeout: 60000,
    hookTimeout: 60000,
    pool: "forks",
  },
});
