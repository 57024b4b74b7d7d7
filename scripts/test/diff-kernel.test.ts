/*
 * npm run diff --kernel NAME, in process (runDiff) on a real handoff: a
 * v6.18 predecessor's one-page bitmaps (no khosim marker, as mainline writes
 * them) read by a v6.16 successor, which scans 4096 bits of each bitmap and
 * so loses every page past the first 16 MiB of its 128 MiB window
 * (docs/kernel-versions.md 4.1): here the kho_test info blob, the kho_test
 * FDT and the KHO FDT at 0x42800000..0x42802fff of the default workload.
 */
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { CliError } from "@khosim/shared/proc";
import { initCsum } from "@khosim/shared/lib";
import { makeTmp, removeTmp } from "./handoff-helpers.js";
import { DEFAULT_SCENARIO, writeHandoffInProcess } from "./data-helpers.js";
import { decodeDiffView, labelledRegions, lookupOfRegions, openDiffFiles, regionIndex, type DiffJson, type KernelDiffJson, type RegionSources } from "../src/diff/index.js";
import { flattenRegions } from "../src/inspect.js";
import { runDiff } from "../src/diff/run.js";

let tmp: string;
let dir: string;

beforeAll(async () => {
  await initCsum();
  tmp = makeTmp("diff-kernel");
  // `kernel-a --kernel v6.18`, written in process by kernel-a's code.
  dir = (await writeHandoffInProcess(path.join(tmp, "v6.18"), DEFAULT_SCENARIO, undefined, undefined, "v6.18")).dir;
}, 60_000);
afterAll(() => removeTmp(tmp));

describe("diff --kernel NAME DIR", () => {
  test("a one-page-bitmap handoff read as v6.16: the first lost page named, each lost page labelled with what it is, exit 1", async () => {
    const r = await runDiff(["--kernel", "v6.16", dir], { color: false });
    expect(r.code).toBe(1);
    expect(r.stdout).toContain("\nlost        3 pages (12K) in 1 run under v6.16, first 0x42800000\n");
    expect(r.stdout).toContain("\n  0x42802000-0x42802fff (1 page) lost under v6.16: KHO FDT\n");
    expect(r.stdout).toMatch(/\nverdict     pages-lost \(kernel-b --kernel v6\.16: revived-unsafely, exit 4\)/);
    const j = JSON.parse((await runDiff(["--kernel", "v6.16", dir, "--json"])).stdout) as KernelDiffJson;
    expect(j.schema).toBe("khosim-diff-kernel/1");
    expect(j.lost).toMatchObject({ kernel: "v6.16", pages: 3, runs: 1, first: "0x42800000" });
    expect(j.lost.list.map((x) => [x.start, x.label])).toEqual([
      ["0x42800000", "lost under v6.16: kho_test info blob"],
      ["0x42801000", "lost under v6.16: kho_test FDT"],
      ["0x42802000", "lost under v6.16: KHO FDT"],
    ]);
  });

  test("the same handoff read as its own version loses nothing: exit 0", async () => {
    const r = await runDiff(["--kernel", "v6.18", dir], { color: false });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("\nlost        none under v6.18\n");
    expect(r.stdout.trimEnd().endsWith("ok: v6.18 reserves every preserved page (exit 0)")).toBe(true);
  });

  test("with A B, the lost pages are a region class of each side", async () => {
    const v = decodeDiffView(openDiffFiles(dir), "v6.16");
    try {
      expect(v.regions.labelAt(0x42802000)).toMatchObject({ kind: "lost", label: "lost under v6.16: KHO FDT", end: 0x42803000 });
      expect(v.regions.labelAt(0x42000000)?.kind).toBe("preserved");
    } finally {
      v.mem.close();
    }
    const j = JSON.parse((await runDiff([dir, dir, "--kernel", "v6.16", "--json"])).stdout) as DiffJson;
    expect(j.lost?.a).toMatchObject({ pages: 3, first: "0x42800000" });
    expect(j.lost?.b).toEqual(j.lost?.a);
    // Without --kernel the report has no lost field (its bytes stay as they were).
    expect("lost" in JSON.parse((await runDiff([dir, dir, "--json"])).stdout)).toBe(false);
  });

  test("the lookup with lost pages answers as flattenRegions does, page by page around them", () => {
    const v = decodeDiffView(openDiffFiles(dir), "v6.16");
    try {
      const src = v.sources;
      expect(src.lost?.length).toBe(3);
      const slow = lookupOfRegions(flattenRegions(src.base, src.end, labelledRegions(src)));
      const pick = (h: { kind: string; label: string; index?: number; data?: number; end: number } | undefined) => h && { kind: h.kind, label: h.label, index: h.index, data: h.data, end: h.end };
      for (let p = 0x42000000; p < 0x42a00000; p += 4096) expect(pick(v.regions.labelAt(p)), p.toString(16)).toEqual(pick(slow.labelAt(p)));
    } finally {
      v.mem.close();
    }
  });

  test("lost runs inside a preserved range, in free memory and over a chunk page cut what they cover, as flattenRegions does", () => {
    const lost = (start: number, end: number, what: string) => ({ start, end, kind: "lost" as const, label: `lost under v6.16: ${what}` });
    const src: RegionSources = {
      base: 0x100000,
      end: 0x200000,
      others: [{ start: 0x180000, end: 0x1c0000, kind: "scratch", label: "scratch area 0", index: 0 }],
      chunks: [0x130000],
      chunkName: "chunk",
      ranges: [{ start: 0x110000, size: 0x10000, data: 0x100 }],
      lost: [lost(0x104000, 0x105000, "free"), lost(0x114000, 0x116000, "preserved order-0 folios"), lost(0x130000, 0x131000, "chunk 0"), lost(0x190000, 0x191000, "scratch area 0")],
    };
    const fast = regionIndex(src);
    const slow = lookupOfRegions(flattenRegions(src.base, src.end, labelledRegions(src)));
    const pick = (h: { kind: string; label: string; index?: number; data?: number; end: number } | undefined) => h && { kind: h.kind, label: h.label, index: h.index, data: h.data, end: h.end };
    for (let p = src.base; p < src.end; p += 4096) expect(pick(fast.labelAt(p)), p.toString(16)).toEqual(pick(slow.labelAt(p)));
    expect(fast.labelAt(0x110000)).toMatchObject({ kind: "preserved", end: 0x114000 });
    expect(fast.labelAt(0x100000)).toMatchObject({ kind: "free", end: 0x104000 });
  });

  test("--kernel with --successor, or an unknown version, is a usage error", async () => {
    await expect(runDiff(["--successor", dir, "--kernel", "v6.16"])).rejects.toThrow(CliError);
    await expect(runDiff(["--kernel", "v6.15", dir])).rejects.toThrow(/v6\.15/);
  });
});
