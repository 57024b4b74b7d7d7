/*
 * npm run fuzz -- [--format F] --runs N [--seed S] [--path P] [--case-ms MS]
 * A long campaign of the successor fuzz property (scripts/src/fuzz-core.ts)
 * on a handoff of format F: prints cases run, outcomes by kind, the most
 * frequent reasons, and any failing case with the command that replays it.
 * Not a test: run it and report the figures.
 *
 * Exit codes: 0 no property violated; 1 a case violated it (the replay
 * command is printed); 2 usage error; 70 internal error (a khosim bug, never
 * reported as a usage error).
 */
import fc from "fast-check";
import { CliError, EXIT_USAGE, formatOption, intOption, newCommand, runMain, withExitCodes } from "@khosim/shared/proc";
import { DEFAULT_CASE_MS, fuzzProperty, makeFuzzHandoff, targetsOf, type CaseResult } from "./fuzz-core.js";

/** A fast-check replay path: "3:0:12". */
function pathOption(v: string): string {
  if (!/^\d+(:\d+)*$/.test(v)) throw new CliError(EXIT_USAGE, `--path: ${JSON.stringify(v)} is not a replay path (numbers separated by colons, as a failing run prints)`);
  return v;
}

async function main(): Promise<number> {
  const cmd = newCommand("fuzz", "fuzz the successor with damaged handoffs, in process")
    .option("--format <name>", "format of the handoff to damage (ranges, posted, bitmaps, bitmaps-page, radix)", formatOption, "ranges")
    .option("--runs <n>", "cases to run", intOption("--runs", 1, 1e9), 10_000)
    .option("--case-ms <ms>", "wall-time bound of one case; a slower case is a violation", intOption("--case-ms", 1, 600_000), DEFAULT_CASE_MS)
    .option("--seed <s>", "fast-check seed (default: time based)", intOption("--seed", 0, 2 ** 31 - 1))
    .option("--path <p>", "replay path printed by a failing run (numbers separated by colons)", pathOption);
  withExitCodes(cmd, [
    [0, "no property violated"],
    [1, "a case violated the property; the command that replays it is printed"],
  ]);
  cmd.parse(process.argv);
  const o = cmd.opts<{ format: string; runs: number; seed?: number; path?: string; caseMs: number }>();
  const seed = o.seed ?? Date.now() % 2 ** 31;
  const h = await makeFuzzHandoff(1, o.format);
  const outcomes = new Map<string, number>();
  const reasons = new Map<string, number>();
  let cases = 0;
  const t0 = process.hrtime.bigint();
  const onCase = (r: CaseResult): void => {
    cases++;
    outcomes.set(r.outcome, (outcomes.get(r.outcome) ?? 0) + 1);
    if (r.reason !== undefined) {
      const k = `${r.outcome}: ${r.reason.replace(/0x[0-9a-f]+|\d+/g, "N").slice(0, 90)}`;
      reasons.set(k, (reasons.get(k) ?? 0) + 1);
    }
    if (cases % 100_000 === 0) process.stderr.write(`fuzz: ${o.format}: ${cases} cases\n`);
  };
  const params: fc.Parameters<[unknown]> = { numRuns: o.runs, seed, endOnFailure: true };
  if (o.path) params.path = o.path;
  const res = fc.check(fuzzProperty(h, onCase, o.caseMs), params as never);
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  console.log(`fuzz: format ${o.format}, seed ${seed}, ${cases} cases in ${secs.toFixed(1)} s (${Math.round(cases / secs)} cases/s)`);
  console.log(`  targets: ${targetsOf(o.format).join(", ")}`);
  for (const [k, n] of [...outcomes].sort((a, b) => b[1] - a[1])) console.log(`  ${k.padEnd(22)} ${n}`);
  if (reasons.size) {
    console.log("  most frequent reasons (numbers as N):");
    for (const [k, n] of [...reasons].sort((a, b) => b[1] - a[1]).slice(0, 25)) console.log(`    ${String(n).padStart(7)}  ${k}`);
  }
  if (res.failed) {
    console.log(`FAILED after ${res.numRuns} runs: ${String(res.errorInstance)}`);
    console.log(`counterexample: ${fc.stringify(res.counterexample)}`);
    console.log(`replay: npm run fuzz -- --format ${o.format} --runs 1 --seed ${res.seed} --path ${res.counterexamplePath}`);
    return 1;
  }
  console.log("no property violated");
  return 0;
}

runMain("fuzz", main);
