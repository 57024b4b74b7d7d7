/*
 * One CLI convention: every command answers --help with its usage on stdout
 * and exit 0, and an unknown option with exit 2 and one line on stderr (no
 * stack). The commands of scripts/ also list their exit codes, 70 (a khosim
 * bug) among them.
 */
import * as path from "node:path";
import { describe, expect, test } from "vitest";
import { ROOT, runKernelAsync, type RunResult } from "./handoff-helpers.js";

/* npm script name -> entry point (package.json "scripts"). */
const COMMANDS: Record<string, string> = {
  "kernel-a": "kernel-a/src/main.ts",
  "kernel-b": "kernel-b/src/main.ts",
  demo: "scripts/src/demo.ts",
  handoff: "scripts/src/handoff.ts",
  bench: "scripts/src/bench.ts",
  corrupt: "scripts/src/corrupt.ts",
  fuzz: "scripts/src/fuzz.ts",
  chain: "scripts/src/chain.ts",
  diff: "scripts/src/diff.ts",
  map: "scripts/src/map.ts",
  compare: "scripts/src/compare.ts",
  matrix: "scripts/src/matrix.ts",
  "luo-stress": "scripts/src/luo-stress.ts",
  debugfs: "scripts/src/debugfs.ts",
};
/* Their help lists the exit codes (the kernels' and bench's help are their owners' to extend). */
const WITH_EXIT_CODES = ["kernel-a", "kernel-b", "bench", "demo", "handoff", "corrupt", "fuzz", "chain", "diff", "map", "compare", "matrix", "luo-stress", "debugfs"];

/* Every command run with @args, a few processes at a time. */
async function runAll(args: string[]): Promise<Map<string, RunResult>> {
  const names = Object.keys(COMMANDS);
  const out = new Map<string, RunResult>();
  for (let i = 0; i < names.length; i += 4) {
    const batch = names.slice(i, i + 4);
    const rs = await Promise.all(batch.map((n) => runKernelAsync(path.join(ROOT, COMMANDS[n]!), args)));
    batch.forEach((n, k) => out.set(n, rs[k]!));
  }
  return out;
}

describe("every command", () => {
  test("--help: usage on stdout, exit 0, nothing on stderr; exit codes listed", { timeout: 180_000 }, async () => {
    const rs = await runAll(["--help"]);
    for (const [name, r] of rs) {
      expect(r.status, `${name}: ${r.stderr}`).toBe(0);
      expect(r.stdout, name).toMatch(/^Usage: \S+ /m);
      expect(r.stderr, name).toBe("");
      if (WITH_EXIT_CODES.includes(name)) {
        expect(r.stdout, name).toMatch(/^Exit codes:$/m);
        expect(r.stdout, name).toMatch(/^ +0 {2}\S/m);
        expect(r.stdout, name).toMatch(/^ +2 {2}\S/m);
        expect(r.stdout, name).toMatch(/^ +70 {2}internal error/m);
      }
    }
  });

  test("an unknown option: exit 2 and one line on stderr naming what is wrong", { timeout: 180_000 }, async () => {
    const rs = await runAll(["--no-such-option"]);
    for (const [name, r] of rs) {
      expect(r.status, `${name}: ${r.stderr}`).toBe(2);
      const lines = r.stderr.trimEnd().split("\n");
      expect(lines, name).toHaveLength(1);
      // The unknown option, or a required option commander checks first.
      expect(lines[0], name).toMatch(/--no-such-option|required option '--\S+/);
      expect(r.stderr, name).not.toMatch(/^\s+at /m);
    }
  });
});
