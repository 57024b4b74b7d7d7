/*
 * How every npm script starts a command: plain node on the command's bundle
 * (dist/WS/NAME.cjs), after a cheap check (a few ms, see stale.cjs) that the
 * build is current. When a source changed since the last build it says so on
 * stderr, rebuilds (tsc -b, incremental, then the bundles) and then runs the
 * fresh code; it never runs a stale build silently. CommonJS, as the bundles
 * are: a process that never touches node's ESM loader starts faster.
 *
 *   node scripts/build/launch.cjs dist/kernel-a/main.cjs [args...]
 *
 * The command sees process.argv as if it had been started as
 * `node dist/kernel-a/main.cjs [args...]`. Exit 2 without an entry, 70 when
 * the rebuild fails; otherwise the command's own exit code.
 */
"use strict";
const path = require("node:path");
const { ROOT, staleReason } = require("./stale.cjs");

const [entry, ...args] = process.argv.slice(2);
if (!entry) {
  process.stderr.write("usage: node scripts/build/launch.cjs DIST_ENTRY.cjs [args...]\n");
  process.exit(2);
}
const file = path.resolve(ROOT, entry);

function run() {
  process.argv = [process.argv[0], file, ...args];
  require(file);
}

const why = staleReason();
if (!why) {
  run();
} else {
  process.stderr.write(`khosim: ${why}; rebuilding (tsc -b, then the bundles)\n`);
  import("./build.mjs").then(({ build }) => {
    const r = build("pipe");
    if (r.status !== 0) {
      process.stderr.write(r.output);
      process.stderr.write("khosim: the build failed; not running stale code\n");
      process.exit(70);
    }
    run();
  });
}
