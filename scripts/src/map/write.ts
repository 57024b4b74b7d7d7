/*
 * writeMap, the map command's work as a function: tests call it in process
 * without running the command (map.ts runs its main when loaded).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import type { KhoKernelName } from "@khosim/shared/kho";
import { openHandoff } from "../inspect.js";
import { MAP_DEFAULT_DETAIL } from "./layout.js";
import { mapHtml, type MapSource } from "./html.js";

export const MAP_DEFAULT_OUT = path.join("out", "map.html");

/**
 * writeMap - draw @dirs (one or two handoffs) into @out, with the pages
 * @kernel would lose when given; returns the byte size and what could not be
 * decoded. With @kernel, initCsum() must have run (the successor verifies).
 */
export function writeMap(dirs: readonly string[], out: string, detail = MAP_DEFAULT_DETAIL, kernel?: KhoKernelName): { bytes: number; problems: string[] } {
  const sources: MapSource[] = [];
  const problems: string[] = [];
  for (const dir of dirs) {
    const v = openHandoff(dir, kernel === undefined ? {} : { kernel });
    try {
      const src: MapSource = { title: dir, ram: v.ram, regions: v.regions, chunks: v.chunks, ranges: v.ranges, problems: v.problems, banks: v.boot.banks, numa: v.boot.numa };
      if (v.lost) src.lost = v.lost;
      sources.push(src);
      for (const p of v.problems) problems.push(`${dir}: ${p}`);
    } finally {
      v.mem.close();
    }
  }
  const html = mapHtml(sources, { detail });
  fs.mkdirSync(path.dirname(path.resolve(out)), { recursive: true });
  const tmp = `${out}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, html);
  fs.renameSync(tmp, out);
  return { bytes: Buffer.byteLength(html), problems };
}
