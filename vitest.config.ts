import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["{shared,kernel-a,kernel-b,scripts}/test/**/*.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: "forks",
  },
});
