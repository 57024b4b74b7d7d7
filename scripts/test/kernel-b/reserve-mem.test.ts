/*
 * reserve_mem= end to end: kernel-a with a scenario cmdline writes the
 * memblock sub-tree; the successor with the same words (kernel-b --cmdline)
 * revives each reservation at kernel-a's address, and the bytes there are
 * the ones kernel-a reported. A bad --cmdline is a usage error (exit 2, one
 * line, no report).
 *
 * Both kernels' work runs in process (the code the bundles run, kernel-b's
 * options through successorOptionsOf); the usage error is the real kernel-b's,
 * on kernel-a's handoff written by writeMemHandoff.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, expect, test } from "vitest";
import { KHO_KERNEL_NAMES } from "@khosim/shared/kho";
import { csum64, hex, initCsum } from "@khosim/shared/lib";
import { PredecessorReportSchema, SuccessorReportSchema, readHandoffJson, type PredecessorReport } from "@khosim/shared/abi/handoff-json";
import type { MemHandoff } from "../../src/faults/index.js";
import { bootMemHandoff, kernelAInProcess, recordingLogger, writeMemHandoff } from "../fault-helpers.js";
import { makeTmp, removeTmp, runB } from "../handoff-helpers.js";

const CMDLINE = "console=ttyS0 reserve_mem=1M:4096:trace reserve_mem=2M:2M:oops";
let tmp: string | undefined;
let h: { handoff: MemHandoff; report: PredecessorReport };

beforeAll(async () => {
  await initCsum();
  tmp = makeTmp("resmem");
  h = await kernelAInProcess({ machine: { ram: "512M", cmdline: CMDLINE }, ops: [{ op: "folios", count: 8, order: 0 }] }, 5, undefined, path.join(tmp, "resmem.json"));
});

afterAll(() => removeTmp(tmp));

/** The successor's report for kernel-b @args, checked against successor.json's schema. */
function boot(args: string[], log?: ReturnType<typeof recordingLogger>["log"]) {
  const b = bootMemHandoff(h.handoff, args, log);
  return { b, succ: readHandoffJson(SuccessorReportSchema, JSON.stringify(b.report), "successor.json") };
}

test("kernel-b --cmdline with kernel-a's words revives each reservation, bytes as kernel-a reported", () => {
  const rows = h.report.reserveMem!.entries;
  expect(rows.map((r) => r.name)).toEqual(["trace", "oops"]);
  const rec = recordingLogger();
  const { b, succ } = boot(["--cmdline", CMDLINE], rec.log);
  expect(b.exitCode, b.reason).toBe(0);
  expect(rec.lines.join("\n")).toContain("Revived memory reservation 'trace' from KHO");
  // Both reports with their new optional fields still pass their schemas.
  readHandoffJson(PredecessorReportSchema, JSON.stringify(h.report), "report.json");
  expect(succ.reserveMem).toEqual(rows.map((r) => ({ name: r.name, outcome: "revived", start: r.start, size: r.size, preserved: true, reason: null })));
  // memory.img's bytes: kernel-a's memory as it hands it over.
  const mem = h.handoff.memory!;
  for (const r of succ.reserveMem!) expect(hex(csum64(mem.read(Number(r.start), Number(r.size))))).toBe(rows.find((x) => x.name === r.name)!.csum);
});

test("without --cmdline successor.json has no reserveMem; a bad --cmdline is one line, exit 2", async () => {
  const { b, succ } = boot([]);
  expect(b.exitCode, b.reason).toBe(0);
  expect("reserveMem" in succ).toBe(false);
  const dir = writeMemHandoff(h.handoff, h.report, path.join(tmp!, "handoff"));
  const bad = await runB(["--in", dir, "--report", path.join(tmp!, "bad.json"), "--cmdline", "reserve_mem=1M:4096:this_name_is_too_long"]);
  expect(bad.status).toBe(2);
  expect(bad.stderr.trim().split("\n")).toHaveLength(1);
  expect(bad.stderr).toContain("--cmdline: reserve_mem=1M:4096:this_name_is_too_long: name must be 1..15 bytes");
  expect(fs.existsSync(path.join(tmp!, "bad.json"))).toBe(false);
  // With --kernel the version successor runs reserve_mem= as that version does: the posting predates KHO support, so a fresh allocation.
  const v = boot(["--cmdline", CMDLINE, "--kernel", KHO_KERNEL_NAMES[0]!]).succ;
  expect(v.kernel!.name).toBe("posting");
  expect(v.reserveMem!.map((r) => r.outcome)).toEqual(["fresh: not in handoff", "fresh: not in handoff"]);
  expect(v.reserveMem![0]!.reason).toMatch(/^posting has no KHO support for reserve_mem/);
});
