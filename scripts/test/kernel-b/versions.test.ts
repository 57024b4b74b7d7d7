/*
 * Kernel versions: kernel-a --kernel writes a version's handoff, kernel-b
 * --kernel reads it as another version would, with the outcome, exit code
 * and successor.json `kernel` object a matrix cell is made of. Usage errors
 * of --kernel are one line and exit 2.
 *
 * kernel-a's handoff and the intact read are made in process (the code the
 * bundles run); the pages-lost read is the real kernel-b (exit 4, its stdout
 * line and successor.json) on that handoff written by writeMemHandoff, and
 * the usage errors are real processes.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, expect, test } from "vitest";
import { SuccessorJsonSchema, parseHandoffJson, type PredecessorReport } from "@khosim/shared/abi/handoff-json";
import type { MemHandoff } from "../../src/faults/index.js";
import { bootMemHandoff, kernelAInProcess, writeMemHandoff } from "../fault-helpers.js";
import { makeTmp, readJson, removeTmp, runA, runB } from "../handoff-helpers.js";

let tmp: string | undefined;
let h18: { handoff: MemHandoff; report: PredecessorReport; dir: string };

beforeAll(async () => {
  tmp = makeTmp("versions");
  // kernel-a --kernel v6.18 (default scenario).
  const a = await kernelAInProcess(undefined, undefined, undefined, undefined, "v6.18");
  h18 = { ...a, dir: writeMemHandoff(a.handoff, a.report, path.join(tmp, "v6.18")) };
}, 120_000);

afterAll(() => removeTmp(tmp));

test("kernel-a --kernel v6.18 writes one-page bitmaps without khosim's marker (mainline has none)", () => {
  expect(h18.report.format).toBe("bitmaps-page");
  const kho = Buffer.from(h18.handoff.khoDtb!);
  expect(kho.includes("preserved-memory-map")).toBe(true);
  expect(kho.includes("khosim,preserve-bits")).toBe(false);
});

test("a v6.18 handoff read by v6.16: exit 4, revived-unsafely, 3 pages lost from 0x42800000; by v6.18: exit 0, intact", { timeout: 120_000 }, async () => {
  const report = path.join(tmp!, "s16.json");
  const b = await runB(["--in", h18.dir, "--kernel", "v6.16", "--report", report]);
  expect(b.status, b.stderr).toBe(4);
  expect(b.stdout).toMatch(/^revived unsafely: v6\.16: pages-lost: 3 of 2051 preserved pages not reserved \(first 0x42800000\)/);
  const s = parseHandoffJson(SuccessorJsonSchema, readJson(report), report);
  if (s.outcome === "unusable-input") throw new Error(String(s.reason));
  expect(s.outcome).toBe("revived-unsafely");
  expect(s.exitCode).toBe(4);
  expect(s.kernel).toMatchObject({ name: "v6.16", verdict: "pages-lost", lostPages: 3, firstLost: "0x42800000", oobReadBytes: 0, outsideRamPfns: 0 });
  expect(s.kernel!.lost.length).toBeGreaterThan(0);
  const same = bootMemHandoff(h18.handoff, ["--kernel", "v6.18"]);
  expect(same.exitCode, same.reason).toBe(0);
  expect(same.report!.kernel!.verdict).toBe("intact");
});

test("--kernel usage errors: one line, exit 2", { timeout: 120_000 }, async () => {
  // The three processes run at once.
  const [bad, mix, again] = await Promise.all([
    runB(["--in", h18.dir, "--kernel", "v6.17", "--report", path.join(tmp!, "x.json")]),
    runA(["--out", path.join(tmp!, "never"), "--kernel", "v6.16", "--format", "radix"]),
    runB(["--in", h18.dir, "--kernel", "v6.18", "--handoff-out", path.join(tmp!, "next")]),
  ]);
  expect(bad.status).toBe(2);
  expect(bad.stderr.trim().split("\n")).toEqual(['kernel-b: --kernel: "v6.17" is not a known kernel version; known: posting, v6.16, v6.18, v6.19, kho-v2']);
  expect(mix.status).toBe(2);
  expect(mix.stderr.trim().split("\n")).toEqual(["kernel-a: --kernel v6.16 writes format bitmaps, not --format radix: give one of them"]);
  expect(fs.existsSync(path.join(tmp!, "never"))).toBe(false);
  expect(again.status).toBe(2);
  expect(again.stderr.trim().split("\n")).toHaveLength(1);
});
