/*
 * A chain of generations: kernel-a, then kernel-b reviving and handing off
 * again, N times. Preserved data must survive every generation bit for bit,
 * and the metadata must not grow when nothing new is preserved.
 *
 * Ten generations in process (kernel-a's and kernel-b's own code on memory
 * views, each generation's memory an overlay of the previous one, as kernel-b
 * writes its next image over its input's); the chain command end to end, every
 * generation its own process, on three generations with and without --each.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { PAGE_SIZE, decodeKhoTestInfo, parseKhoTestFdt } from "@khosim/shared/abi";
import type { PredecessorReport } from "@khosim/shared/abi/handoff-json";
import type { PhysMem } from "@khosim/shared/mm";
import { openHandoff } from "../src/inspect.js";
import { ROOT, readJson, runKernel } from "../src/run.js";
import { kernelAInProcess, successorHandOffInProcess } from "./fault-helpers.js";

const CHAIN = path.join(ROOT, "scripts/src/chain.ts");
let dir: string;

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "khosim-chain-"));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const MIXED = path.join(ROOT, "scenarios/mixed.json");

/** The kho_test objects (folios and phys ranges) a handoff preserved, and its info table's bytes. */
function khoTestObjects(mem: PhysMem, report: PredecessorReport): { table: Uint8Array; objects: { start: number; size: number }[] } {
  const fdt = Number(report.subtree.fdt);
  const header = parseKhoTestFdt(mem.read(fdt, new DataView(mem.read(fdt + 4, 4).buffer).getUint32(0, false)));
  const table = mem.read(Number(report.subtree.info), Number(report.subtree.infoSize));
  const { folios, ranges } = decodeKhoTestInfo(table, header.nrFolios, header.nrRanges);
  return { table, objects: [...[...folios.entries()].map((f) => ({ start: f.phys, size: PAGE_SIZE * 2 ** f.order })), ...ranges] };
}

describe("a chain of generations, in process", () => {
  test("10 generations verify clean, data survives bit for bit, metadata does not grow", { timeout: 180_000 }, async () => {
    const first = await kernelAInProcess(MIXED);
    const handoffs = [first.handoff];
    const reports = [first.report];
    // Generation k's successor hands off generation k + 1 with seed k + 1 (as npm run chain does); the last only boots.
    for (let k = 1; k <= 10; k++) {
      const g = successorHandOffInProcess(handoffs[k - 1]!, k + 1);
      const s = g.boot.report;
      expect(s.outcome, `generation ${k}: ${s.reason}`).toBe("revived");
      expect(s.failureCount).toBe(0);
      expect(s.restored.folios).toBe(reports[0]!.stats.folios);
      expect(s.restored.ranges).toBe(reports[0]!.stats.physRanges);
      if (k < 10) {
        handoffs.push(g.next!.handoff);
        reports.push(g.next!.report);
      }
    }
    expect(reports).toHaveLength(10);
    // Nothing new is preserved after generation 1: metadata never grows.
    for (let k = 1; k < 10; k++) {
      expect(reports[k]!.stats.metadataBytes).toBeLessThanOrEqual(reports[k - 1]!.stats.metadataBytes);
      expect(reports[k]!.stats.folios).toBe(reports[0]!.stats.folios);
    }
    // Bit for bit: every object kho_test preserved in generation 1 holds the same bytes in generation 10's memory.
    const g1 = handoffs[0]!.openImage(Number(reports[0]!.machine.ramBase));
    const g10 = handoffs[9]!.openImage(Number(reports[9]!.machine.ramBase));
    const t1 = khoTestObjects(g1, reports[0]!);
    const t10 = khoTestObjects(g10, reports[9]!);
    expect(Buffer.from(t10.table).equals(Buffer.from(t1.table))).toBe(true);
    let compared = 0;
    for (const o of t1.objects) {
      expect(Buffer.from(g10.read(o.start, o.size)).equals(Buffer.from(g1.read(o.start, o.size)))).toBe(true);
      compared += o.size;
    }
    expect(t1.objects.length).toBe(reports[0]!.stats.folios + reports[0]!.stats.physRanges);
    expect(compared).toBeGreaterThan(0);
  });
});

describe("npm run chain", () => {
  test("3 generations verify clean, data survives bit for bit, metadata does not grow", { timeout: 180_000 }, () => {
    const out = path.join(dir, "three");
    const r = runKernel(CHAIN, ["--generations", "3", "--out", out, "--scenario", MIXED]);
    expect(r.status, r.stderr + r.stdout).toBe(0);
    expect(r.stdout).toContain("3 generations verified");
    const reports = Array.from({ length: 3 }, (_, i) => readJson(path.join(out, `gen-${i + 1}`, "report.json")));
    for (let k = 1; k <= 3; k++) {
      const s = readJson(path.join(out, `gen-${k}`, "successor.json"));
      expect(s.outcome).toBe("revived");
      expect(s.failureCount).toBe(0);
      expect(s.restored.folios).toBe(reports[0].stats.folios);
      expect(s.restored.ranges).toBe(reports[0].stats.physRanges);
    }
    // Nothing new is preserved after generation 1: metadata never grows.
    for (let k = 1; k < 3; k++) {
      expect(reports[k].stats.metadataBytes).toBeLessThanOrEqual(reports[k - 1].stats.metadataBytes);
      expect(reports[k].stats.folios).toBe(reports[0].stats.folios);
    }
    // Bit for bit: every preserved range of generation 1 holds the same bytes in generation 3's image.
    const g1 = openHandoff(path.join(out, "gen-1"));
    const g3 = openHandoff(path.join(out, "gen-3"));
    const tableOf = (v: typeof g1) => v.mem.read(v.subtree!.infoPhys, v.subtree!.infoSize);
    expect(Buffer.from(tableOf(g3)).equals(Buffer.from(tableOf(g1)))).toBe(true);
    let compared = 0;
    const { folios, ranges } = decodeKhoTestInfo(tableOf(g1), g1.subtree!.header.nrFolios, g1.subtree!.header.nrRanges);
    const objects = [...[...folios.entries()].map((f) => ({ start: f.phys, size: PAGE_SIZE * 2 ** f.order })), ...ranges];
    for (const o of objects) {
      expect(Buffer.from(g3.mem.read(o.start, o.size)).equals(Buffer.from(g1.mem.read(o.start, o.size)))).toBe(true);
      compared += o.size;
    }
    expect(objects.length).toBe(reports[0].stats.folios + reports[0].stats.physRanges);
    expect(compared).toBeGreaterThan(0);
    g1.mem.close();
    g3.mem.close();
  });

  test("with --each, every generation adds preservations and still verifies", { timeout: 120_000 }, () => {
    const each = path.join(dir, "each.json");
    fs.writeFileSync(each, JSON.stringify({ ops: [{ op: "folios", count: 4, order: 1, layout: "buddy" }] }));
    const out = path.join(dir, "each");
    const r = runKernel(CHAIN, ["--generations", "3", "--out", out, "--each", each]);
    expect(r.status, r.stderr + r.stdout).toBe(0);
    const f = [1, 2, 3].map((k) => readJson(path.join(out, `gen-${k}`, "report.json")).stats.folios);
    expect(f[1]).toBe(f[0] + 4);
    expect(f[2]).toBe(f[1] + 4);
    // The "diff from previous" column comes from npm run diff's core: new folios are changed pages.
    const rows = r.stdout.split("\n").filter((l) => /^\| [23] \|/.test(l));
    expect(rows).toHaveLength(2);
    for (const l of rows) expect(l).toMatch(/\| [1-9]\d* pages changed; ranges: \d+ added, \d+ removed, \d+ resized, \d+ with other data \|$/);
  });

  test("an existing --out is refused without --force (exit 2)", () => {
    const out = path.join(dir, "exists");
    fs.mkdirSync(out);
    const r = runKernel(CHAIN, ["--generations", "2", "--out", out]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/already exists; pass --force/);
  });
});
