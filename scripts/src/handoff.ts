/*
 * npm run handoff -- --out DIR [--scenario FILE] [--seed N] [--format NAME]
 *                   [--force] [-- kernel-b options]
 * kernel-a into DIR, then kernel-b from DIR, each its own process; prints a
 * summary (scripts/src/summary.ts does the work; this file only parses).
 */
import { KHO_FORMATS } from "@khosim/shared/kho";
import { formatOption, intOption, newCommand, runMain, withExitCodes } from "@khosim/shared/proc";
import { runHandoff } from "./summary.js";

async function main(): Promise<number> {
  const cmd = newCommand("handoff", "kernel-a into --out, then kernel-b from it, each its own process, and a summary")
    .requiredOption("--out <dir>", "handoff directory to write")
    .option("--scenario <file>", "kernel-a's scenario (default: test_kho's default workload)")
    .option("--seed <n>", "kernel-a's PRNG seed", intOption("--seed", 0, 2 ** 32 - 1))
    .option("--format <name>", `preservation format (${KHO_FORMATS.map((f) => f.name).join(", ")})`, formatOption)
    .option("--force", "replace an existing --out directory", false)
    .argument("[kernel-b-options...]", "after --: options for kernel-b (e.g. -- --max-order 5)");
  withExitCodes(cmd, [
    [0, "kernel-a wrote the handoff and kernel-b revived and verified it"],
    [1, "kernel-b did not revive and verify everything; other codes: kernel-a's or kernel-b's (see their --help)"],
  ]);
  cmd.parse(process.argv);
  const o = cmd.opts<{ out: string; scenario?: string; seed?: number; format?: string; force: boolean; logFormat?: string }>();
  const aArgs = ["--out", o.out];
  if (o.scenario !== undefined) aArgs.push("--scenario", o.scenario);
  if (o.seed !== undefined) aArgs.push("--seed", String(o.seed));
  if (o.format !== undefined) aArgs.push("--format", o.format);
  if (o.force) aArgs.push("--force");
  const log = o.logFormat ? ["--log-format", o.logFormat] : [];
  return runHandoff(o.out, [...aArgs, ...log], [...log, ...cmd.args]);
}

runMain("handoff", main);
