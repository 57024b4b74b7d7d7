/*
 * A successor's next handoff may switch format (kernel-b --handoff-out
 * --format). The real kernel-b does the switch (the option and the files it
 * writes are the point); its input is kernel-a's handoff made in process and
 * written by writeMemHandoff, and its output is booted in process as kernel-b
 * boots files. Every format's own handoff is in the format contract suite
 * (scripts/test/format-contract.test.ts), with the real two-process one.
 */
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { KERNEL_B, ROOT, readJson, runKernel } from "../../src/run.js";
import { bootMemHandoff, closeHandoff, kernelAInProcess, readHandoffDir, writeMemHandoff } from "../fault-helpers.js";
import { makeTmp, removeTmp } from "../handoff-helpers.js";

let dir: string | undefined;
beforeAll(() => {
  dir = makeTmp("formats");
});
afterAll(() => removeTmp(dir));

const MIXED = path.join(ROOT, "scenarios/mixed.json");

describe("formats end to end", () => {
  test("a successor hands off in another format than it booted with", { timeout: 60_000 }, async () => {
    const a = path.join(dir!, "switch-a");
    const b = path.join(dir!, "switch-b");
    const gen1 = await kernelAInProcess(MIXED, undefined, "bitmaps");
    expect(gen1.report.format).toBe("bitmaps");
    writeMemHandoff(gen1.handoff, gen1.report, a);
    const r = runKernel(KERNEL_B, ["--in", a, "--handoff-out", b, "--format", "radix"]);
    expect(r.status, r.stderr).toBe(0);
    expect(readJson(path.join(a, "successor.json")).format).toBe("bitmaps");
    expect(readJson(path.join(b, "report.json")).format).toBe("radix");
    // kernel-b --in b, in process on b's files.
    const h = readHandoffDir(b);
    try {
      const boot = bootMemHandoff(h, []);
      expect([boot.exitCode, boot.outcome, boot.report?.format]).toEqual([0, "revived", "radix"]);
    } finally {
      closeHandoff(h);
    }
  });
});
