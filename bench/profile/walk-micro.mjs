#!/usr/bin/env node
/*
 * bench/profile/walk-micro.mjs - the successor's metadata walk alone, in one
 * process, on a handoff kernel-a wrote (for profiling the walk: node
 * --cpu-prof bench/profile/walk-micro.mjs DIR). Prints each run's walk and
 * block-visit time; npm run bench is the measurement of record.
 *
 *   node bench/profile/walk-micro.mjs DIR [runs]
 */
import * as fs from "node:fs";
import { ImageMem } from "../../shared/dist/mm/image.js";
import { khoFormat } from "../../shared/dist/kho/formats/index.js";

const dir = process.argv[2];
const runs = Number(process.argv[3] ?? 5);
const rep = JSON.parse(fs.readFileSync(`${dir}/report.json`, "utf8"));
const base = Number(rep.machine.ramBase);
const size = Number(rep.machine.ram);
const fmt = khoFormat(rep.format);
const ctx = { ramBase: base, ramSize: size, scratch: rep.scratch.map((s) => ({ addr: Number(s.addr), size: Number(s.size) })) };
for (let r = 0; r < runs; r++) {
  const mem = ImageMem.open(`${dir}/memory.img`, base, size);
  const t0 = process.hrtime.bigint();
  const w = fmt.walk(mem, BigInt(rep.metadata), ctx);
  const t1 = process.hrtime.bigint();
  let n = 0;
  w.forEachBlock(() => n++);
  const t2 = process.hrtime.bigint();
  console.log(`${fmt.name}: walk ${(Number(t1 - t0) / 1e6).toFixed(1)} ms, forEachBlock ${(Number(t2 - t1) / 1e6).toFixed(1)} ms (${n} blocks)`);
  mem.close();
}
