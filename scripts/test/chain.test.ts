/*
 * A chain of generations: kernel-a, then kernel-b reviving and handing off
 * again, N times. Preserved data must survive every generation bit for bit,
 * and the metadata must not grow when nothing new is preserved.
 *
 * Ten generations of scenarios/mixed.json in process (kernel-a's and
 * kernel-b's own code on memory views, each generation's memory an overlay of
 * the previous one, as kernel-b writes its next image over its input's); the
 * chain command end to end, every generation its own process, once, on three
 * generations of a small scenario.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { PAGE_SIZE, decodeKhoTestInfo, parseKhoTestFdt } from "@khosim/shared/abi";
import type { PredecessorReport } from "@khosim/shared/abi/handoff-json";
import type { PhysMem } from "@khosim/shared/mm";
import { openHandoff } from "../src/inspect.js";
import { ROOT, readJson } from "../src/run.js";
import { kernelAInProcess, successorHandOffInProcess } from "./fault-helpers.js";
import { runKernelAsync, type RunResult } from "./handoff-helpers.js";

const CHAIN = path.join(ROOT, "scripts/src/chain.ts");

/*
 * npm run chain end to end, one real run for the command's process-level
 * facts: every generation its own process (kernel-a, then kernel-b reading
 * the previous generation's files and writing the next), the files each
 * writes, the table, the exit code. It also carries reserve_mem= through the
 * generations (--cmdline; the kernel behaviour is tested in process in
 * reserve-mem-chain.test.ts) and adds preservations in every generation
 * (--each). What does not depend on the command (10 generations of
 * scenarios/mixed.json, metadata that does not grow without --each) is
 * tested in process (the first describe); so the run is small: 512 MiB, a
 * few objects.
 */
const CMDLINE = "console=ttyS0 reserve_mem=1M:4096:trace reserve_mem=2M:2M:oops";
const SMALL = {
  description: "kho_test's folios, folios of the page API and a phys range; two reserve_mem= reservations",
  machine: { ram: "512M", cmdline: CMDLINE },
  ops: [{ op: "test_kho", maxMem: "1M" }, { op: "folios", count: 4, order: 1 }, { op: "phys", size: "64K" }],
};
let dir: string;
/* The real runs of npm run chain, started first so that their processes overlap the in-process test. */
let run: Promise<RunResult>;
let refused: Promise<RunResult>;
let out: string;

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "khosim-chain-"));
  const scenario = path.join(dir, "small.json");
  fs.writeFileSync(scenario, JSON.stringify(SMALL));
  const each = path.join(dir, "each.json");
  fs.writeFileSync(each, JSON.stringify({ ops: [{ op: "folios", count: 4, order: 1, layout: "buddy" }] }));
  out = path.join(dir, "three");
  run = runKernelAsync(CHAIN, ["--generations", "3", "--out", out, "--scenario", scenario, "--each", each, "--cmdline", CMDLINE]);
  const exists = path.join(dir, "exists");
  fs.mkdirSync(exists);
  refused = runKernelAsync(CHAIN, ["--generations", "2", "--out", exists]);
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

describe("npm run chain -- --generations 3 --each FILE --cmdline STR", () => {
  test("exits 0, says so, and every generation revived and verified clean from its files", { timeout: 180_000 }, async () => {
    const r = await run;
    expect(r.status, r.stderr + r.stdout).toBe(0);
    expect(r.stdout).toContain(`chain: 3 generations verified; handoffs in ${out}/gen-1 ... gen-3`);
    for (let k = 1; k <= 3; k++) {
      const rep = readJson<PredecessorReport>(path.join(out, `gen-${k}`, "report.json"));
      expect(rep.tool).toBe(k === 1 ? "khosim kernel-a" : "khosim kernel-b");
      // Generation k + 1 is handed off with seed k + 1 (generation 1 with the scenario's seed).
      if (k > 1) expect(rep.seed).toBe(k);
      const s = readJson(path.join(out, `gen-${k}`, "successor.json"));
      expect(s.outcome).toBe("revived");
      expect(s.failureCount).toBe(0);
      expect(s.restored.folios).toBe(rep.stats.folios);
      expect(s.restored.ranges).toBe(rep.stats.physRanges);
    }
    // One table row per generation, as the files say.
    const rows = r.stdout.split("\n").filter((l) => /^\| [1-9] \|/.test(l));
    expect(rows.map((l) => l.split(" | ").slice(0, 3).join(" | "))).toEqual(["| 1 | kernel-a", "| 2 | kernel-b", "| 3 | kernel-b"].map((p, i) => `${p} | ${readJson(path.join(out, `gen-${i + 1}`, "report.json")).stats.folios}`));
  });

  test("with --each, every generation adds preservations; the diff column comes from npm run diff's core", { timeout: 180_000 }, async () => {
    const r = await run;
    expect(r.status, r.stderr + r.stdout).toBe(0);
    const f = [1, 2, 3].map((k) => readJson(path.join(out, `gen-${k}`, "report.json")).stats.folios);
    expect(f[1]).toBe(f[0] + 4);
    expect(f[2]).toBe(f[1] + 4);
    // New folios are changed pages.
    const rows = r.stdout.split("\n").filter((l) => /^\| [23] \|/.test(l));
    expect(rows).toHaveLength(2);
    for (const l of rows) expect(l).toMatch(/\| [1-9]\d* pages changed; ranges: \d+ added, \d+ removed, \d+ resized, \d+ with other data \|$/);
  });

  test("data survives bit for bit: generation 1's preserved objects hold the same bytes in generation 3's image", { timeout: 180_000 }, async () => {
    expect((await run).status).toBe(0);
    const reports = [1, 3].map((k) => readJson<PredecessorReport>(path.join(out, `gen-${k}`, "report.json")));
    const g1 = openHandoff(path.join(out, "gen-1"));
    const g3 = openHandoff(path.join(out, "gen-3"));
    try {
      const objectsOf = (v: typeof g1) => {
        const { folios, ranges } = decodeKhoTestInfo(v.mem.read(v.subtree!.infoPhys, v.subtree!.infoSize), v.subtree!.header.nrFolios, v.subtree!.header.nrRanges);
        return [...[...folios.entries()].map((f) => ({ start: f.phys, size: PAGE_SIZE * 2 ** f.order, csum: f.csum })), ...ranges];
      };
      const objects = objectsOf(g1);
      expect(objects.length).toBe(reports[0]!.stats.folios + reports[0]!.stats.physRanges);
      // kho_test's table in generation 3 lists generation 1's objects (address, size, checksum), and --each's after them.
      const key = (o: { start: number; size: number; csum: bigint }) => `${o.start}+${o.size}:${o.csum}`;
      const later = new Set(objectsOf(g3).map(key));
      expect(later.size).toBe(reports[1]!.stats.folios + reports[1]!.stats.physRanges);
      for (const o of objects) expect(later.has(key(o)), key(o)).toBe(true);
      let compared = 0;
      for (const o of objects) {
        expect(Buffer.from(g3.mem.read(o.start, o.size)).equals(Buffer.from(g1.mem.read(o.start, o.size)))).toBe(true);
        compared += o.size;
      }
      expect(objects.some((o) => o.size === 64 * 1024)).toBe(true); // the phys range
      expect(compared).toBeGreaterThan(0);
    } finally {
      g1.mem.close();
      g3.mem.close();
    }
  });

  test("--cmdline carries the reservations through the 3 generations and says so", { timeout: 180_000 }, async () => {
    const r = await run;
    expect(r.status, r.stderr + r.stdout).toBe(0);
    const rows = readJson<PredecessorReport>(path.join(out, "gen-1", "report.json")).reserveMem!.entries;
    expect(rows.map((e) => e.name)).toEqual(["trace", "oops"]);
    for (let k = 1; k <= 3; k++) {
      expect(r.stdout).toContain(`reserve_mem gen ${k}: trace revived at ${rows[0]!.start}, bytes as generation 1; oops revived at ${rows[1]!.start}, bytes as generation 1`);
      expect(readJson<PredecessorReport>(path.join(out, `gen-${k}`, "report.json")).reserveMem!.entries).toEqual(rows);
    }
  });

  test("an existing --out is refused without --force (exit 2)", async () => {
    const r = await refused;
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/already exists; pass --force/);
  });
});
