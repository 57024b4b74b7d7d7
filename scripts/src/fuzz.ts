/*
 * npm run fuzz -- --runs N [--seed S] [--path P]
 * A long campaign of the successor fuzz property (scripts/src/fuzz-core.ts):
 * prints cases run, outcomes by kind, and any failing case with the command
 * that replays it. Not a test: run it and report the figures.
 *
 * Exit codes: 0 no property violated; 1 a case violated it (the replay
 * command is printed); 2 usage error; 70 internal error (a khosim bug, never
 * reported as a usage error).
 */
import fc from "fast-check";
import { CliError, EXIT_USAGE, intOption, newCommand, runMain, withExitCodes } from "@khosim/shared/proc";
import { fuzzProperty, makeFuzzHandoff, type CaseResult } from "./fuzz-core.js";

/** A fast-check replay path: "3:0:12". */
function pathOption(v: string): string {
  if (!/^\d+(:\d+)*$/.test(v)) throw new CliError(EXIT_USAGE, `--path: ${JSON.stringify(v)} is not a replay path (numbers separated by colons, as a failing run prints)`);
  return v;
}

async function main(): Promise<number> {
  const cmd = newCommand("fuzz", "fuzz the successor with damaged handoffs, in process")
    .option("--runs <n>", "cases to run", intOption("--runs", 1, 1e9), 10_000)
    .option("--seed <s>", "fast-check seed (default: time based)", intOption("--seed", 0, 2 ** 31 - 1))
    .option("--path <p>", "replay path printed by a failing run (numbers separated by colons)", pathOption);
  withExitCodes(cmd, [
    [0, "no property violated"],
    [1, "a case violated the property; the command that replays it is printed"],
  ]);
  cmd.parse(process.argv);
  const o = cmd.opts<{ runs: number; seed?: number; path?: string }>();
  const seed = o.seed ?? Date.now() % 2 ** 31;
  const h = await makeFuzzHandoff();
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
    if (cases % 10_000 === 0) process.stderr.write(`fuzz: ${cases} cases\n`);
  };
  const params: fc.Parameters<[unknown]> = { numRuns: o.runs, seed, endOnFailure: true };
  if (o.path) params.path = o.path;
  const res = fc.check(fuzzProperty(h, onCase), params as never);
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  console.log(`fuzz: seed ${seed}, ${cases} cases in ${secs.toFixed(1)} s (${Math.round(cases / secs)} cases/s)`);
  for (const [k, n] of [...outcomes].sort((a, b) => b[1] - a[1])) console.log(`  ${k.padEnd(22)} ${n}`);
  if (reasons.size) {
    console.log("  most frequent reasons (numbers as N):");
    for (const [k, n] of [...reasons].sort((a, b) => b[1] - a[1]).slice(0, 25)) console.log(`    ${String(n).padStart(7)}  ${k}`);
  }
  if (res.failed) {
    console.log(`FAILED after ${res.numRuns} runs: ${String(res.errorInstance)}`);
    console.log(`counterexample: ${fc.stringify(res.counterexample)}`);
    console.log(`replay: npm run fuzz -- --runs 1 --seed ${res.seed} --path ${res.counterexamplePath}`);
    return 1;
  }
  console.log("no property violated");
  return 0;
}

runMain("fuzz", main);
