import { defaultServerConditions } from "vite";
import { defineConfig } from "vitest/config";

/*
 * Tests import @khosim/shared from its TypeScript sources (the package's
 * "@khosim/source" export condition, as the root tsconfig's typecheck does);
 * processes the tests spawn run the build in dist/, which the global setup
 * brings up to date first.
 */
const conditions = ["@khosim/source", ...defaultServerConditions];

export default defineConfig({
  resolve: { conditions },
  ssr: { resolve: { conditions, externalConditions: ["@khosim/source"] } },
  test: {
    include: ["{shared,kernel-a,kernel-b,scripts}/test/**/*.test.ts"],
    globalSetup: ["scripts/build/vitest-setup.mjs"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: "forks",
  },
});
