/*
 * What every command's --help and unknown-option processes must show (the
 * one CLI convention), shared by cli.test.ts and startup.test.ts: the
 * kernels' --help runs are startup.test's (with its module recorder), the
 * other commands' are cli.test's, and each process is checked once.
 */
import { expect } from "vitest";
import type { RunResult } from "../src/run.js";

/** expectHelp - --help: usage on stdout, exit 0, nothing on stderr; with @exitCodes, the exit codes listed (0, 2 and 70). */
export function expectHelp(name: string, r: RunResult, exitCodes = true): void {
  expect(r.status, `${name}: ${r.stderr}`).toBe(0);
  expect(r.stdout, name).toMatch(/^Usage: \S+ /m);
  expect(r.stderr, name).toBe("");
  if (!exitCodes) return;
  expect(r.stdout, name).toMatch(/^Exit codes:$/m);
  expect(r.stdout, name).toMatch(/^ +0 {2}\S/m);
  expect(r.stdout, name).toMatch(/^ +2 {2}\S/m);
  expect(r.stdout, name).toMatch(/^ +70 {2}internal error/m);
}

/** expectUnknownOption - an unknown option: exit 2 and one line on stderr naming what is wrong, no stack. */
export function expectUnknownOption(name: string, r: RunResult): void {
  expect(r.status, `${name}: ${r.stderr}`).toBe(2);
  const lines = r.stderr.trimEnd().split("\n");
  expect(lines, name).toHaveLength(1);
  // The unknown option, or a required option commander checks first.
  expect(lines[0], name).toMatch(/--no-such-option|required option '--\S+/);
  expect(r.stderr, name).not.toMatch(/^\s+at /m);
}
