/*
 * reserve_mem= end to end through the real CLIs: kernel-a with a scenario
 * cmdline writes the memblock sub-tree; kernel-b --cmdline with the same
 * words revives each reservation at kernel-a's address, and the bytes there
 * in memory.img are the ones kernel-a reported. A bad --cmdline is a usage
 * error (exit 2, one line).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, expect, test } from "vitest";
import { ImageMem } from "@khosim/shared/mm";
import { KHO_KERNEL_NAMES } from "@khosim/shared/kho";
import { csum64, hex, initCsum } from "@khosim/shared/lib";
import { PredecessorReportSchema, SuccessorReportSchema, readHandoffJson } from "@khosim/shared/abi/handoff-json";
import { makeHandoff, makeTmp, readJson, removeTmp, runB, type Handoff, type SuccessorReportJson } from "../handoff-helpers.js";

const CMDLINE = "console=ttyS0 reserve_mem=1M:4096:trace reserve_mem=2M:2M:oops";
let tmp: string | undefined;
let h: Handoff;

beforeAll(async () => {
  await initCsum();
  tmp = makeTmp("resmem");
  const scenario = path.join(tmp, "resmem.json");
  fs.writeFileSync(scenario, JSON.stringify({ machine: { ram: "512M", cmdline: CMDLINE }, ops: [{ op: "folios", count: 8, order: 0 }] }));
  h = await makeHandoff(path.join(tmp, "handoff"), ["--scenario", scenario, "--seed", "5"]);
});

afterAll(() => removeTmp(tmp));

test("kernel-b --cmdline with kernel-a's words revives each reservation, bytes as kernel-a reported", async () => {
  const rows = h.report.reserveMem!.entries;
  expect(rows.map((r) => r.name)).toEqual(["trace", "oops"]);
  const report = path.join(tmp!, "succ.json");
  const b = await runB(["--in", h.dir, "--report", report, "--cmdline", CMDLINE]);
  expect(b.status, b.stderr).toBe(0);
  expect(b.stderr).toContain("Revived memory reservation 'trace' from KHO");
  // Both files with their new optional fields still pass their schemas.
  readHandoffJson(PredecessorReportSchema, fs.readFileSync(path.join(h.dir, "report.json"), "utf8"), "report.json");
  const succ = readHandoffJson(SuccessorReportSchema, fs.readFileSync(report, "utf8"), report);
  expect(succ.reserveMem).toEqual(rows.map((r) => ({ name: r.name, outcome: "revived", start: r.start, size: r.size, preserved: true, reason: null })));
  const ram = h.report.machine;
  const img = ImageMem.open(path.join(h.dir, "memory.img"), Number(ram.ramBase), Number(ram.ram));
  try {
    for (const r of succ.reserveMem!) expect(hex(csum64(img.read(Number(r.start), Number(r.size))))).toBe(rows.find((x) => x.name === r.name)!.csum);
  } finally {
    img.close();
  }
});

test("without --cmdline successor.json has no reserveMem; a bad --cmdline is one line, exit 2", async () => {
  const plain = path.join(tmp!, "plain.json");
  const b = await runB(["--in", h.dir, "--report", plain]);
  expect(b.status, b.stderr).toBe(0);
  expect("reserveMem" in readJson<SuccessorReportJson>(plain)).toBe(false);
  const bad = await runB(["--in", h.dir, "--report", path.join(tmp!, "bad.json"), "--cmdline", "reserve_mem=1M:4096:this_name_is_too_long"]);
  expect(bad.status).toBe(2);
  expect(bad.stderr.trim().split("\n")).toHaveLength(1);
  expect(bad.stderr).toContain("--cmdline: reserve_mem=1M:4096:this_name_is_too_long: name must be 1..15 bytes");
  expect(fs.existsSync(path.join(tmp!, "bad.json"))).toBe(false);
  // With --kernel the version successor runs reserve_mem= as that version does: the posting predates KHO support, so a fresh allocation.
  const both = await runB(["--in", h.dir, "--report", path.join(tmp!, "both.json"), "--cmdline", CMDLINE, "--kernel", KHO_KERNEL_NAMES[0]!]);
  expect(both.stderr).not.toContain("internal error");
  const v = readJson<SuccessorReportJson>(path.join(tmp!, "both.json"));
  expect(v.kernel!.name).toBe("posting");
  expect(v.reserveMem!.map((r) => r.outcome)).toEqual(["fresh: not in handoff", "fresh: not in handoff"]);
  expect(v.reserveMem![0]!.reason).toMatch(/^posting has no KHO support for reserve_mem/);
});
