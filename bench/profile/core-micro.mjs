#!/usr/bin/env node
/*
 * bench/profile/core-micro.mjs - issue 10's core paths in one process, for
 * iterating on them (npm run bench is the measurement of record): preserve
 * of 1M isolated and 12.58M contiguous order-0 folios, serialize and walk of
 * the 1M ranges, per format. Prints medians of @runs (default 5).
 *
 *   node bench/profile/core-micro.mjs [runs] [format]
 */
import { SparseMem } from "../../shared/dist/mm/physmem.js";
import { khoFormat } from "../../shared/dist/kho/formats/index.js";
import { khoFolioRuns } from "../../shared/dist/kho/track.js";

const runs = Number(process.argv[2] ?? 5);
const fmt = khoFormat(process.argv[3] ?? "ranges");
const GiB = 2 ** 30;
const med = (a) => [...a].sort((x, y) => x - y)[a.length >> 1];

function loop(track, phys, order) {
  track.reserve?.(khoFolioRuns(phys, order, 0, phys.length));
  const t = process.hrtime.bigint();
  for (let i = 0; i < phys.length; i++) track.khoPreserveFolio(phys[i], order[i]);
  return Number(process.hrtime.bigint() - t);
}

const N = 1 << 20;
const iso = new Float64Array(N);
for (let i = 0; i < N; i++) iso[i] = GiB + i * 8192;
const isoOrd = new Uint8Array(N);
const C = 12582912;
const con = new Float64Array(C);
for (let i = 0; i < C; i++) con[i] = 4 * GiB + i * 4096;
const conOrd = new Uint8Array(C);

const res = { iso: [], con: [], ser: [], walk: [], blocks: [] };
for (let r = 0; r < runs; r++) {
  const t1 = fmt.createTracker();
  res.iso.push(loop(t1, iso, isoOrd) / N);
  const t2 = fmt.createTracker();
  res.con.push(loop(t2, con, conOrd) / C);
  const mem = new SparseMem(GiB, 16 * GiB);
  let next = GiB + 16 * GiB - 4096;
  const t = process.hrtime.bigint();
  const s = fmt.serialize(t1, mem, () => (next -= 4096) + 4096, (pages) => (next -= pages * 4096) + 4096);
  res.ser.push(Number(process.hrtime.bigint() - t) / 1e6);
  const w0 = process.hrtime.bigint();
  const w = fmt.walk(mem, BigInt(s.root), { ramBase: GiB, ramSize: 16 * GiB, scratch: [] });
  res.walk.push(Number(process.hrtime.bigint() - w0) / 1e6);
  let n = 0;
  const b0 = process.hrtime.bigint();
  w.forEachBlock(() => n++);
  res.blocks.push(Number(process.hrtime.bigint() - b0) / 1e6);
  if (n !== w.blockCount) throw new Error("blockCount");
}
console.log(`${fmt.name}: preserve isolated ${med(res.iso).toFixed(2)} ns/call, contiguous ${med(res.con).toFixed(2)} ns/call; 1M ranges: serialize ${med(res.ser).toFixed(2)} ms, walk ${med(res.walk).toFixed(2)} ms, forEachBlock (empty visit) ${med(res.blocks).toFixed(2)} ms`);
