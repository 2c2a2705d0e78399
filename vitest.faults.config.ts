import { defineConfig } from "vitest/config";

// `npm run test:faults`: every fault case, the long ones (load for 60 s, 1000 calls held) included.
// `npm test` (vitest.config.ts) runs the same folder without the *.long.test.ts files.
export default defineConfig({
  test: {
    include: ["test/faults/**/*.test.ts"],
    testTimeout: 300000,
    hookTimeout: 60000,
    pool: "forks",
    // The long cases load two cores on their own: one file at a time keeps their figures meaningful.
    fileParallelism: false,
  },
});
