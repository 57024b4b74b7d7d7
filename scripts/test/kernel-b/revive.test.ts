/*
 * A whole handoff: kernel-a writes the handoff directory, kernel-b boots from
 * it alone, revives and verifies. What the successor walked must be exactly
 * what the predecessor reported. The default scenario runs through the real
 * CLIs (two processes: exit codes, stdout); mixed.json runs in process by the
 * code the bundles run (its digests are pinned for every format in
 * scripts/test/format-contract.test.ts, which also runs it as a real
 * two-process radix handoff).
 */
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { bootMemHandoff, kernelAInProcess } from "../fault-helpers.js";
import { SCENARIOS, makeHandoff, makeTmp, readJson, removeTmp, runB, type Handoff, type RunResult, type SuccessorReportJson } from "../handoff-helpers.js";

interface Case {
  name: string;
  args: string[];
  /** The workload fills every preserved byte (no unpreserve, no fill: false). */
  fullyFilled: boolean;
  /** Both kernels in process instead of the real CLIs. */
  inProcess?: boolean;
}

const CASES: Case[] = [
  { name: "default scenario", args: [], fullyFilled: true },
  { name: "scenarios/mixed.json", args: ["--scenario", path.join(SCENARIOS, "mixed.json")], fullyFilled: false, inProcess: true },
];

let tmp: string | undefined;
const runs = new Map<string, { h: Handoff; b: RunResult; succ: SuccessorReportJson }>();

beforeAll(async () => {
  tmp = makeTmp("revive");
  await Promise.all(
    CASES.map(async (c, i) => {
      if (c.inProcess) {
        // kernel-a --scenario FILE, then kernel-b, as their bundles run them.
        const a = await kernelAInProcess(c.args[1]!);
        const b = bootMemHandoff(a.handoff, []);
        // No process: kernel-a's status is that it returned, kernel-b's its exit code; no stdout.
        runs.set(c.name, {
          h: { dir: "(in process)", a: { status: 0, stdout: "", stderr: "" }, report: a.report },
          b: { status: b.exitCode, stdout: "", stderr: b.reason },
          succ: JSON.parse(JSON.stringify(b.report)) as SuccessorReportJson,
        });
        return;
      }
      const h = await makeHandoff(path.join(tmp!, `handoff-${i}`), c.args);
      const b = await runB(["--in", h.dir]);
      runs.set(c.name, { h, b, succ: readJson<SuccessorReportJson>(path.join(h.dir, "successor.json")) });
    }),
  );
});

afterAll(() => removeTmp(tmp));

function get(name: string) {
  const r = runs.get(name);
  if (!r) throw new Error(`no handoff for ${name} (beforeAll failed)`);
  return r;
}

describe.each(CASES)("handoff (the real CLIs, or in process where the case says): $name", (c) => {
  test("kernel-a exits 0 and kernel-b exits 0 with outcome revived", () => {
    const { h, b, succ } = get(c.name);
    expect(h.a.status).toBe(0);
    expect(b.status, b.stderr).toBe(0);
    expect(succ.outcome).toBe("revived");
    expect(succ.exitCode).toBe(0);
    expect(succ.reason).toBeNull();
    if (!c.inProcess) expect(b.stdout).toMatch(/^KHO restore succeeded/);
  });

  test("the successor's ranges equal report.json's ranges in the same order", () => {
    const { h, succ } = get(c.name);
    expect(h.report.ranges.length).toBe(h.report.stats.ranges);
    expect(succ.ranges).toEqual(h.report.ranges);
  });

  test("the successor's chunks and metadata equal report.json's", () => {
    const { h, succ } = get(c.name);
    expect(succ.chunks).toEqual(h.report.chunks);
    expect(succ.chunks.length).toBe(h.report.stats.chunks);
    expect(succ.metadata).toBe(h.report.metadata);
    expect(succ.metadata).toBe(h.report.chunks[0]);
  });

  test("the successor found the KHO FDT and scratch areas report.json names", () => {
    const { h, succ } = get(c.name);
    expect(succ.khoFdt).toEqual(h.report.khoFdt);
    expect(succ.scratch).toEqual(h.report.scratch);
  });

  test("every preserved folio and phys range is restored, with no failure", () => {
    const { h, succ } = get(c.name);
    expect(succ.restored.folios).toBe(h.report.stats.folios);
    expect(succ.restored.ranges).toBe(h.report.stats.physRanges);
    expect(succ.failureCount).toBe(0);
    expect(succ.failures).toEqual([]);
    expect(succ.verified.bytes).toBeGreaterThan(0);
  });

  if (c.fullyFilled) {
    test("every byte the workload filled is verified", () => {
      const { h, succ } = get(c.name);
      expect(h.report.stats.filledBytes).toBeGreaterThan(0);
      expect(succ.verified.bytes).toBe(h.report.stats.filledBytes);
      expect(succ.verified.unchecked).toBe(0);
      expect(succ.verified.folios).toBe(h.report.stats.folios);
    });
  }
});
