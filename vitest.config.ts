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

/*
 * On this VM the first touch of a fresh page costs ~20 us (the host backs it
 * on demand), so a worker that frees a 64 MiB buffer to the OS and allocates
 * the next one pays for every page again. glibc returns blocks of 32 MiB and
 * more to the OS (mmap threshold) and trims the heap's top; these two keep
 * freed memory in the process for the next test to reuse. Set before the
 * workers fork, so they and every process a test spawns inherit them. They
 * change no behaviour, only where glibc takes memory from.
 */
process.env.MALLOC_MMAP_THRESHOLD_ ??= String(2 ** 30);
process.env.MALLOC_TRIM_THRESHOLD_ ??= String(2 ** 34);

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
