/*
 * `kexec -l` for a command: node starts and waits; the command's bundle is
 * loaded and run only when stdin reaches end of file (`kexec -e`). Nothing of
 * the command runs and no input of it is read before then.
 *
 *   node scripts/build/preload.cjs dist/kernel-b/main.cjs [args...]
 *
 * npm run demo and npm run handoff start kernel-b this way while kernel-a is
 * still running, so node's own start-up overlaps kernel-a's work on another
 * core, as a kexec-loaded kernel waits in memory for kexec -e. Closing stdin
 * runs the command (its argv as if started as `node ENTRY args...`); any byte
 * on stdin means "abort": exit 125 without running it. The command must not
 * read stdin itself (the kernels do not).
 */
"use strict";
const path = require("node:path");

const [entry, ...args] = process.argv.slice(2);
if (!entry) {
  process.stderr.write("usage: node scripts/build/preload.cjs DIST_ENTRY.cjs [args...] (runs when stdin closes)\n");
  process.exit(2);
}
const file = path.resolve(entry);
let abort = false;
process.stdin.on("data", () => {
  abort = true;
});
process.stdin.on("end", () => {
  process.stdin.destroy();
  if (abort) process.exit(125);
  // The command's start-up counts from here (startupMs() in shared/src/proc/cli.ts).
  process.env.KHOSIM_EXEC_MS = String(performance.now());
  process.argv = [process.argv[0], file, ...args];
  require(file);
});
