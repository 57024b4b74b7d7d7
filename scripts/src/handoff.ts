/*
 * npm run handoff -- --out DIR [kernel-a options]
 * kernel-a into DIR, then kernel-b from DIR, each its own process; prints a
 * summary. Exit code: kernel-a's when it fails, else kernel-b's.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { KERNEL_A, KERNEL_B, readJson, runKernel } from "./run.js";
import { handoffSummary } from "./summary.js";

/** runHandoff - kernel-a with @aArgs (must include --out DIR), then kernel-b. */
export function runHandoff(out: string, aArgs: string[], bArgs: string[] = []): number {
  const a = runKernel(KERNEL_A, aArgs, "inherit");
  if (a.status !== 0) {
    process.stderr.write(`handoff: kernel-a exited ${a.status}\n`);
    return a.status;
  }
  const b = runKernel(KERNEL_B, ["--in", out, ...bArgs], "inherit");
  const succ = path.join(out, "successor.json");
  process.stdout.write(handoffSummary(out, readJson(path.join(out, "report.json")), fs.existsSync(succ) ? readJson(succ) : undefined, b.status));
  return b.status;
}

function main(): number {
  const args = process.argv.slice(2);
  const i = args.indexOf("--out");
  if (i < 0 || !args[i + 1]) {
    process.stderr.write("handoff: usage: npm run handoff -- --out DIR [--scenario FILE] [--seed N] [--force] [-- kernel-b options]\n");
    return 2;
  }
  const sep = args.indexOf("--");
  const aArgs = sep < 0 ? args : args.slice(0, sep);
  const bArgs = sep < 0 ? [] : args.slice(sep + 1);
  return runHandoff(args[i + 1]!, aArgs, bArgs);
}

if (import.meta.url === `file://${process.argv[1]}`) process.exitCode = main();
