/*
 * npm run map --kernel NAME, in process (openHandoff, writeMap) on a real
 * handoff: a v6.18 predecessor's one-page bitmaps read as v6.16, which loses
 * the kho_test info blob, the kho_test FDT and the KHO FDT at
 * 0x42800000..0x42802fff (docs/kernel-versions.md 4.1). The lost pages are
 * drawn in their own colour, named in the legend, counted and called out.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { initCsum } from "@khosim/shared/lib";
import { makeHandoff, makeTmp, removeTmp } from "./handoff-helpers.js";
import { openHandoff } from "../src/inspect.js";
import { mapBuild } from "../src/map/html.js";
import { writeMap } from "../src/map/write.js";

let tmp: string;
let dir: string;

beforeAll(async () => {
  await initCsum();
  tmp = makeTmp("map-kernel");
  dir = (await makeHandoff(path.join(tmp, "v6.18"), ["--kernel", "v6.18"])).dir;
}, 60_000);
afterAll(() => removeTmp(tmp));

describe("map --kernel v6.16 of a one-page-bitmap handoff", () => {
  test("openHandoff labels exactly the lost pages, each with what it is; without a kernel nothing is lost", () => {
    const v = openHandoff(dir, { kernel: "v6.16" });
    const plain = openHandoff(dir);
    try {
      expect(v.lost).toMatchObject({ kernel: "v6.16", pages: 3, ranges: [{ start: 0x42800000, size: 0x3000 }] });
      expect(v.regions.filter((r) => r.kind === "lost").map((r) => [r.start, r.end, r.label])).toEqual([
        [0x42800000, 0x42801000, "lost under v6.16: kho_test info blob"],
        [0x42801000, 0x42802000, "lost under v6.16: kho_test FDT"],
        [0x42802000, 0x42803000, "lost under v6.16: KHO FDT"],
      ]);
      expect(plain.regions.some((r) => r.kind === "lost")).toBe(false);
      expect(plain.lost).toBeUndefined();
    } finally {
      v.mem.close();
      plain.mem.close();
    }
  });

  test("the page draws them in the lost colour, names the version in the legend and the first lost page in the stats and callouts", () => {
    const out = path.join(tmp, "map.html");
    writeMap([dir], out, undefined, "v6.16");
    const html = fs.readFileSync(out, "utf8");
    expect(html).toContain("lost under v6.16: 3 page(s) in 1 run(s), first 0x42800000");
    expect(html).toMatch(/<span class="item" title="lost under v6\.16 \(preserved, not reserved\)">/);
    const v = openHandoff(dir, { kernel: "v6.16" });
    try {
      const { doc } = mapBuild([{ title: dir, ram: v.ram, regions: v.regions, chunks: v.chunks, ranges: v.ranges, problems: v.problems, lost: v.lost! }]);
      const lost = doc.classes.findIndex((c) => c.key === "lost");
      expect(doc.classes[lost]).toMatchObject({ name: "lost under v6.16 (preserved, not reserved)", color: "#111111", legend: true });
      // One embedded segment of class "lost", 3 pages long, at 0x42800000.
      const seg = doc.maps[0]!.seg;
      let addr = doc.maps[0]!.base;
      const hits: number[] = [];
      for (let i = 0; i < seg.length; i += 3) {
        if (seg[i + 1] === lost) hits.push(addr, seg[i]!);
        addr += seg[i]! * 4096;
      }
      expect(hits).toEqual([0x42800000, 3]);
      expect(doc.maps[0]!.marks.find((m) => m.cls === lost)).toMatchObject({ start: 0x42800000, label: "first lost under v6.16: kho_test info blob" });
    } finally {
      v.mem.close();
    }
  });
});
