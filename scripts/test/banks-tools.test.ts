/*
 * The tools on a banked handoff (scenarios/numa-2node.json: node 0 [1G, 3G),
 * a hole [3G, 4G), node 1 [4G, 6G)): inspect labels the hole, map draws it
 * and labels where node 1 starts, diff maps image offsets through the banks
 * (a change in node 1 is reported at its physical address, not at
 * base + offset), and corrupt damages the right bytes of the banked image.
 * The two handoffs are written in process by kernel-a's code (data-helpers.ts);
 * corrupt and kernel-b run as real processes on the banked directory.
 */
import * as path from "node:path";
import { afterAll, beforeAll, expect, test } from "vitest";
import { ramFileOffset, ramPhysOfFileOffset } from "@khosim/shared/abi";
import { openHandoff, regionAt } from "../src/inspect.js";
import { mapBuild, mapHtml, type MapSource } from "../src/map/html.js";
import { runDiff } from "../src/diff/run.js";
import type { DiffJson } from "../src/diff/index.js";
import { makeTmp, readJson, removeTmp, runB, type Handoff, type SuccessorReportJson } from "./handoff-helpers.js";
import { writeHandoffInProcess } from "./data-helpers.js";
import { runCorrupt, SCENARIOS } from "./corrupt-helpers.js";

const G = 2 ** 30;
const BANKS = [
  { base: G, size: 2 * G, node: 0 },
  { base: 4 * G, size: 2 * G, node: 1 },
];
let tmp: string | undefined;
let h: Handoff;

beforeAll(async () => {
  tmp = makeTmp("banks-tools");
  h = await writeHandoffInProcess(path.join(tmp, "numa"), path.join(SCENARIOS, "numa-2node.json"));
});
afterAll(() => removeTmp(tmp));

test("inspect: the hole between the banks is a region of its own; the banks' first pages are not", () => {
  const v = openHandoff(h.dir);
  expect(v.problems).toEqual([]);
  expect(v.boot.banks).toEqual(BANKS);
  expect(regionAt(v.regions, 3 * G)).toMatchObject({ kind: "hole", start: 3 * G, end: 4 * G, label: "hole [0xc0000000, 0x100000000) between RAM banks" });
  expect(regionAt(v.regions, 4 * G)!.kind).not.toBe("hole");
  expect(regionAt(v.regions, 3 * G - 4096)!.kind).not.toBe("hole");
});

test("map: the hole is drawn in its own class with a legend entry, and node 1's start is labelled", () => {
  const v = openHandoff(h.dir);
  const src: MapSource = { title: "numa", ram: v.ram, regions: v.regions, chunks: v.chunks, ranges: v.ranges, problems: v.problems, banks: v.boot.banks, numa: v.boot.numa };
  const { doc } = mapBuild([src]);
  const hole = doc.classes.findIndex((c) => c.key === "hole");
  const ds = doc.maps[0]!;
  let at = ds.base;
  let holePages = 0;
  for (let i = 0; i < ds.seg.length; i += 3) {
    if (ds.seg[i + 1] === hole) {
      expect(at).toBeGreaterThanOrEqual(3 * G);
      expect(at).toBeLessThan(4 * G);
      holePages += ds.seg[i]!;
    }
    at += ds.seg[i]! * 4096;
  }
  expect(holePages * 4096).toBe(G);
  expect(ds.marks.filter((m) => m.label.startsWith("node "))).toEqual([
    expect.objectContaining({ start: G, label: "node 0 starts" }),
    expect.objectContaining({ start: 4 * G, label: "node 1 starts" }),
  ]);
  expect(mapHtml([src])).toContain("hole between RAM banks (no memory, no image bytes)");
});

test("diff: changed pages are reported at the physical address their image offset maps to through the banks", async () => {
  // Another seed: other bytes and placements on both nodes, with kernel-a's extents (only written pages are read).
  const other = await writeHandoffInProcess(path.join(tmp!, "numa-seed6"), path.join(SCENARIOS, "numa-2node.json"), 6);
  const r = await runDiff([h.dir, other.dir, "--json", "--limit", "0"], { progress: false, color: false });
  expect(r.code).toBe(1);
  const json = JSON.parse(r.stdout) as DiffJson;
  const mem = { base: G, size: 5 * G, banks: BANKS };
  expect(json.pages.runs.length).toBeGreaterThan(0);
  let inNode1 = 0;
  for (const run of json.pages.runs) {
    const phys = Number(run.start);
    // base + offset would put node 1's pages 1 GiB low, into node 0 or the hole.
    expect(phys, run.offset).toBe(ramPhysOfFileOffset(mem, Number(run.offset)));
    expect(ramFileOffset(mem, phys)).toBe(Number(run.offset));
    expect(phys >= 3 * G && phys < 4 * G, `run at ${run.start} in the hole`).toBe(false);
    if (phys >= 4 * G) inNode1++;
  }
  expect(inNode1).toBeGreaterThan(0);
});

test("corrupt: scratch-node-in-hole on the banked directory, then kernel-b boots without KHO naming the entry", async () => {
  const out = path.join(tmp!, "numa-bad");
  const c = await runCorrupt(["--in", h.dir, "--out", out, "--fault", "scratch-node-in-hole", "--seed", "1"]);
  expect(c.status, c.stderr).toBe(0);
  const b = await runB(["--in", out]);
  expect(b.status).toBe(3);
  const rep = readJson<SuccessorReportJson>(path.join(out, "successor.json"));
  expect(rep.reason).toMatch(/^kho_scratch\[3\] at 0x[0-9a-f]+: \[0xc0000000, \+0x[0-9a-f]+\) is outside RAM$/);
});
