import { defaultServerConditions } from "vite";
import { defineConfig } from "vitest/config";

/*
 * Tests import @khosim/shared from its TypeScript sources (the package's
 * "@khosim/source" export condition, as the root tsconfig's typecheck does);
 * processes the tests spawn run the build in dist/, which the global setup
 * brings up to date first.
 *
 * Two workers on the 2-core machine (vitest's default there is one: cores - 1),
 * so that one file's work overlaps another's spawned processes and I/O.
 * `isolate: false`: a worker runs its files one after another in the same
 * context, so the shared sources are transformed and evaluated once per
 * worker, not once per file. Every test file keeps its state in its own
 * module scope and temporary directories, and no test changes process.env,
 * the working directory or a shared module's state, so nothing leaks from one
 * file to the next.
 */
const conditions = ["@khosim/source", ...defaultServerConditions];

export default defineConfig({
  resolve: { conditions },
  ssr: { resolve: { conditions, externalConditions: ["@khosim/source"] } },
  test: {
    include: ["{shared,kernel-a,kernel-b,scripts}/test/**/*.test.ts"],
    globalSetup: ["scripts/build/vitest-setup.mjs"],
    setupFiles: ["shared/test/setup-equality.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: "forks",
    maxWorkers: 2,
    isolate: false,
  },
});
