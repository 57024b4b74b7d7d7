/*
 * vitest global setup: the processes the tests spawn run the bundles in dist/,
 * so bring it up to date first (the cheap check of build.mjs; tsc -b only when
 * a source changed). `npm test` has already built in pretest; this covers a
 * direct `npx vitest`.
 */
import { build, staleReason } from "./build.mjs";

export default function setup() {
  const why = staleReason();
  if (!why) return;
  process.stderr.write(`khosim: ${why}; rebuilding (tsc -b, then the bundles) before the tests\n`);
  const r = build("pipe");
  if (r.status !== 0) throw new Error(`the build failed, so the tests would spawn stale code:\n${r.output}`);
}
