/*
 * One CLI convention: every command answers --help with its usage on stdout
 * and exit 0, and an unknown option with exit 2 and one line on stderr (no
 * stack). The commands of scripts/ also list their exit codes, 70 (a khosim
 * bug) among them. Real processes: the exit code and the two streams are the
 * point. Each is run once in the suite: kernel-a's and kernel-b's --help are
 * startup.test.ts's (which also records what they load) and are checked
 * there with the same expectHelp; matrix's and debugfs's own help lines are
 * checked here, not by a second --help process in their files.
 */
import { spawn } from "node:child_process";
import * as path from "node:path";
import { beforeAll, describe, expect, test } from "vitest";
import { nodeArgs } from "../src/run.js";
import { ROOT, runKernelAsync, type RunResult } from "./handoff-helpers.js";
import { expectHelp, expectUnknownOption } from "./procs-helpers.js";

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
/* Their --help runs are startup.test.ts's. */
const HELP_ELSEWHERE = ["kernel-a", "kernel-b"];
/* What a command's help says besides the convention. */
const HELP_LINES: Record<string, RegExp[]> = {
  matrix: [/^Usage: matrix /m, /^ +1 {2}some run failed/m],
  debugfs: [/Exit codes:[\s\S]*\n\s+3\s+the handoff's KHO data cannot be shown/],
};

/* Every run, a few processes at a time, one queue for both tests. */
const help = new Map<string, RunResult>();
const unknown = new Map<string, RunResult>();
beforeAll(async () => {
  const jobs: [Map<string, RunResult>, string, string[]][] = [
    ...Object.keys(COMMANDS)
      .filter((n) => !HELP_ELSEWHERE.includes(n))
      .map((n): [Map<string, RunResult>, string, string[]] => [help, n, ["--help"]]),
    ...Object.keys(COMMANDS).map((n): [Map<string, RunResult>, string, string[]] => [unknown, n, ["--no-such-option"]]),
  ];
  const worker = async () => {
    for (let j = jobs.shift(); j; j = jobs.shift()) j[0].set(j[1], await runKernelAsync(path.join(ROOT, COMMANDS[j[1]]!), j[2]));
  };
  await Promise.all(Array.from({ length: 4 }, worker));
}, 180_000);

describe("every command", () => {
  test("--help: usage on stdout, exit 0, nothing on stderr; exit codes listed", () => {
    expect([...help.keys(), ...HELP_ELSEWHERE].sort()).toEqual(Object.keys(COMMANDS).sort());
    for (const [name, r] of help) {
      expectHelp(name, r);
      for (const re of HELP_LINES[name] ?? []) expect(r.stdout, name).toMatch(re);
    }
  });

  test("--help into a pipe whose reader has gone (| head -1): exit 0, nothing on stderr (no EPIPE stack)", async () => {
    // Our end of stdout is closed before the child writes, so its help write fails with EPIPE.
    const closedReader = (main: string): Promise<{ status: number | null; stderr: string }> =>
      new Promise((resolve) => {
        const child = spawn(process.execPath, nodeArgs(path.join(ROOT, main), ["--help"]), { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
        child.stdout.destroy();
        let stderr = "";
        child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
        child.on("close", (status) => resolve({ status, stderr }));
      });
    for (const name of ["kernel-b", "diff"]) expect(await closedReader(COMMANDS[name]!), name).toEqual({ status: 0, stderr: "" });
  });

  test("an unknown option: exit 2 and one line on stderr naming what is wrong", () => {
    expect([...unknown.keys()].sort()).toEqual(Object.keys(COMMANDS).sort());
    for (const [name, r] of unknown) expectUnknownOption(name, r);
  });
});
