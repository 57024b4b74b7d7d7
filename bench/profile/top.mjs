#!/usr/bin/env node
/*
 * bench/profile/top.mjs - top entries of a V8 .cpuprofile or .heapprofile.
 *
 *   node bench/profile/top.mjs FILE.cpuprofile [N]    self time by function
 *   node bench/profile/top.mjs FILE.heapprofile [N]   sampled bytes by allocating function
 *
 * Sums self time (cpuprofile: each sample's time delta goes to the node it
 * hit) or self size (heapprofile) by function name + script + line, maps
 * dist/*.js positions back to src/*.ts through the .js.map files tsc writes
 * beside them, and prints the top N (default 10) as a markdown table with
 * the share of the total. Used for bench/profile.md; not part of the build.
 */
import * as fs from "node:fs";
import { SourceMap } from "node:module";
import * as path from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const file = process.argv[2];
const topN = Number(process.argv[3] ?? 10);
if (!file) {
  process.stderr.write("usage: node bench/profile/top.mjs FILE.cpuprofile|FILE.heapprofile [N]\n");
  process.exit(2);
}
const prof = JSON.parse(fs.readFileSync(file, "utf8"));

const maps = new Map();
function sourceMapFor(url) {
  if (!url.startsWith("file://")) return undefined;
  if (maps.has(url)) return maps.get(url);
  let sm;
  try {
    const js = fileURLToPath(url);
    sm = { map: new SourceMap(JSON.parse(fs.readFileSync(js + ".map", "utf8"))), dir: path.dirname(js) };
  } catch {
    sm = undefined;
  }
  maps.set(url, sm);
  return sm;
}

/* "file:line" of a call frame, in src/*.ts when a source map says so (lines 1-based). */
function where(cf) {
  if (!cf.url) return "(native)";
  const sm = sourceMapFor(cf.url);
  if (sm && cf.lineNumber >= 0) {
    const e = sm.map.findEntry(cf.lineNumber, Math.max(0, cf.columnNumber));
    if (e && e.originalSource) {
      const src = e.originalSource.startsWith("file://") ? fileURLToPath(e.originalSource) : path.resolve(sm.dir, e.originalSource);
      return `${path.relative(ROOT, src)}:${e.originalLine + 1}`;
    }
  }
  const f = cf.url.startsWith("file://") ? path.relative(ROOT, fileURLToPath(cf.url)) : cf.url;
  return `${f}:${cf.lineNumber + 1}`;
}

const sums = new Map();
function add(cf, v) {
  const key = `${cf.functionName || "(anonymous)"}\u0000${where(cf)}`;
  sums.set(key, (sums.get(key) ?? 0) + v);
}

let total = 0;
let unit;
if (prof.nodes && prof.samples) {
  unit = "ms";
  const byId = new Map(prof.nodes.map((n) => [n.id, n]));
  const self = new Map();
  for (let i = 0; i < prof.samples.length; i++) {
    const dt = prof.timeDeltas[i] ?? 0;
    self.set(prof.samples[i], (self.get(prof.samples[i]) ?? 0) + dt);
  }
  for (const [id, us] of self) {
    add(byId.get(id).callFrame, us / 1000);
    total += us / 1000;
  }
} else if (prof.head) {
  unit = "MiB";
  const walk = (n) => {
    if (n.selfSize) {
      add(n.callFrame, n.selfSize / 2 ** 20);
      total += n.selfSize / 2 ** 20;
    }
    for (const c of n.children ?? []) walk(c);
  };
  walk(prof.head);
} else {
  process.stderr.write(`${file}: neither a .cpuprofile nor a .heapprofile\n`);
  process.exit(1);
}

const rows = [...sums].sort((a, b) => b[1] - a[1]).slice(0, topN);
process.stdout.write(`${path.basename(file)}: total ${total.toFixed(1)} ${unit}\n\n`);
process.stdout.write(`| # | function | where | self ${unit} | % |\n|---:|---|---|---:|---:|\n`);
rows.forEach(([k, v], i) => {
  const [fn, at] = k.split("\u0000");
  process.stdout.write(`| ${i + 1} | \`${fn}\` | ${at} | ${v.toFixed(1)} | ${((100 * v) / total).toFixed(1)} |\n`);
});
