/*
 * How every npm script starts a command: plain node on the command's bundle
 * (dist/WS/NAME.cjs), after a cheap check (a few ms, see build.mjs) that the
 * build is current. When a source changed since the last build it says so on
 * stderr, rebuilds (tsc -b, incremental, then the bundles) and then runs the
 * fresh code; it never runs a stale build silently.
 *
 *   node scripts/build/launch.mjs dist/kernel-a/main.cjs [args...]
 *
 * The command sees process.argv as if it had been started as
 * `node dist/kernel-a/main.cjs [args...]`.
 */
import { createRequire } from "node:module";
import * as path from "node:path";
import { build, ROOT, staleReason } from "./build.mjs";

const [entry, ...args] = process.argv.slice(2);
if (!entry) {
  process.stderr.write("usage: node scripts/build/launch.mjs DIST_ENTRY.js [args...]\n");
  process.exit(2);
}
const why = staleReason();
if (why) {
  process.stderr.write(`khosim: ${why}; rebuilding (tsc -b, then the bundles)\n`);
  const r = build("pipe");
  if (r.status !== 0) {
    process.stderr.write(r.output);
    process.stderr.write("khosim: the build failed; not running stale code\n");
    process.exit(70);
  }
}
const file = path.resolve(ROOT, entry);
process.argv = [process.argv[0], file, ...args];
// require(), not import(): importing a CommonJS file first runs node's export lexer over all of it.
createRequire(import.meta.url)(file);
