/*
 * vmalloc preservation end to end: kernel-a runs scenarios/vmalloc.json and
 * lists each struct kho_vmalloc in report.json; the successor, reading only
 * boot.dtb and memory.img, restores every area with kho_restore_vmalloc() and
 * verifies its bytes; the descriptors it read are the ones kernel-a wrote. A
 * damaged chunk is the kernel's outcome (that area fails, exit 1, no stack
 * trace), not a crash.
 *
 * Both kernels' work runs in process (the code the bundles run); the damaged
 * chunk runs the real kernel-b on kernel-a's handoff written by
 * writeMemHandoff and patched in memory.img (the suite's real-process exit 1).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, expect, test } from "vitest";
import { PredecessorReportSchema, SuccessorReportSchema, readHandoffJson, type PredecessorReport } from "@khosim/shared/abi/handoff-json";
import { KHO_VMALLOC_CHUNK_HDR } from "@khosim/shared/abi";
import type { MemHandoff } from "../../src/faults/index.js";
import { bootMemHandoff, kernelAInProcess, writeMemHandoff } from "../fault-helpers.js";
import { makeTmp, patchFile, removeTmp, runB, SCENARIOS, stackLines, u64le } from "../handoff-helpers.js";

let tmp: string | undefined;
let h: { handoff: MemHandoff; report: PredecessorReport };

beforeAll(async () => {
  tmp = makeTmp("vmalloc");
  h = await kernelAInProcess(path.join(SCENARIOS, "vmalloc.json"));
});

afterAll(() => removeTmp(tmp));

test("the successor restores and verifies every area kernel-a preserved, reading the same descriptors", () => {
  const report = readHandoffJson(PredecessorReportSchema, JSON.stringify(h.report), "report.json");
  expect(report.vmalloc!.map((v) => [v.totalPages, v.flags, v.order])).toEqual([
    [5, "0x1", 0],
    [511, "0x1", 0],
    [512, "0x1", 0],
    [1024, "0x3", 9],
  ]);
  const b = bootMemHandoff(h.handoff, []);
  expect(b.exitCode, b.reason).toBe(0);
  const succ = readHandoffJson(SuccessorReportSchema, JSON.stringify(b.report), "successor.json");
  expect(succ.vmalloc!.map((v) => ({ first: v.first, totalPages: v.totalPages, flags: v.flags, order: v.order }))).toEqual(
    report.vmalloc!.map((v) => ({ first: v.first, totalPages: v.totalPages, flags: v.flags, order: v.order })),
  );
  expect(succ.vmalloc!.every((v) => v.outcome === "verified" && v.pages === v.totalPages)).toBe(true);
  expect(succ.pages).toEqual([{ phys: report.pages![0]!.phys, nrPages: 37, outcome: "verified", reason: null }]);
});

test("a chunk entry pointing outside RAM: that area fails, exit 1, no stack trace, the reason naming field, chunk and offset", async () => {
  const bad = writeMemHandoff(h.handoff, h.report, path.join(tmp!, "bad"));
  const first = BigInt(h.report.vmalloc![1]!.first);
  const ramBase = BigInt(h.report.machine.ramBase);
  // phys[2] of the first chunk of area 1.
  patchFile(path.join(bad, "memory.img"), Number(first - ramBase) + KHO_VMALLOC_CHUNK_HDR + 16, u64le(1n << 50n));
  const out = path.join(tmp!, "bad.json");
  const b = await runB(["--in", bad, "--report", out]);
  expect(b.status, b.stderr).toBe(1);
  expect(stackLines(b.stderr)).toEqual([]);
  const succ = readHandoffJson(SuccessorReportSchema, fs.readFileSync(out, "utf8"), out);
  expect(succ.reason).toContain(`vmalloc[1].phys[2] (chunk 0x${first.toString(16)} offset 24): 0x4000000000000 is not a page-aligned block of 1 pages in RAM`);
  expect(succ.vmalloc!.map((v) => v.outcome)).toEqual(["verified", "restore-failed", "verified", "verified"]);
});
