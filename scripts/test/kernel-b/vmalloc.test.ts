/*
 * vmalloc preservation end to end through the real CLIs: kernel-a runs
 * scenarios/vmalloc.json and lists each struct kho_vmalloc in report.json;
 * kernel-b, a second process reading only boot.dtb and memory.img, restores
 * every area with kho_restore_vmalloc() and verifies its bytes; the
 * descriptors it read are the ones kernel-a wrote. A damaged chunk is the
 * kernel's outcome (that area fails, exit 1, one line), not a crash.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, expect, test } from "vitest";
import { PredecessorReportSchema, SuccessorReportSchema, readHandoffJson } from "@khosim/shared/abi/handoff-json";
import { KHO_VMALLOC_CHUNK_HDR } from "@khosim/shared/abi";
import { copyHandoff, makeHandoff, makeTmp, patchFile, removeTmp, runB, SCENARIOS, stackLines, u64le, type Handoff } from "../handoff-helpers.js";

let tmp: string | undefined;
let h: Handoff;

beforeAll(async () => {
  tmp = makeTmp("vmalloc");
  h = await makeHandoff(path.join(tmp, "handoff"), ["--scenario", path.join(SCENARIOS, "vmalloc.json")]);
});

afterAll(() => removeTmp(tmp));

test("kernel-b restores and verifies every area kernel-a preserved, reading the same descriptors", async () => {
  const report = readHandoffJson(PredecessorReportSchema, fs.readFileSync(path.join(h.dir, "report.json"), "utf8"), "report.json");
  expect(report.vmalloc!.map((v) => [v.totalPages, v.flags, v.order])).toEqual([
    [5, "0x1", 0],
    [511, "0x1", 0],
    [512, "0x1", 0],
    [1024, "0x3", 9],
  ]);
  const out = path.join(tmp!, "succ.json");
  const b = await runB(["--in", h.dir, "--report", out]);
  expect(b.status, b.stderr).toBe(0);
  const succ = readHandoffJson(SuccessorReportSchema, fs.readFileSync(out, "utf8"), out);
  expect(succ.vmalloc!.map((v) => ({ first: v.first, totalPages: v.totalPages, flags: v.flags, order: v.order }))).toEqual(
    report.vmalloc!.map((v) => ({ first: v.first, totalPages: v.totalPages, flags: v.flags, order: v.order })),
  );
  expect(succ.vmalloc!.every((v) => v.outcome === "verified" && v.pages === v.totalPages)).toBe(true);
  expect(succ.pages).toEqual([{ phys: report.pages![0]!.phys, nrPages: 37, outcome: "verified", reason: null }]);
});

test("a chunk entry pointing outside RAM: that area fails, exit 1, one line naming field, chunk and offset", async () => {
  const bad = copyHandoff(h.dir, path.join(tmp!, "bad"));
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
