/*
 * Output of `npm run diff`: the human report (optionally coloured) and the
 * JSON report, both from the values model.ts and successor.ts build.
 */
import { PAGE_SIZE } from "@khosim/shared/abi";
import type { FdtChange } from "./fdt-diff.js";
import type { ChunkPageJson, DiffJson, RangeJson, RunJson, SideJson } from "./model.js";
import type { SuccessorDiffJson } from "./successor.js";
import type { KernelDiffJson, LostSummaryJson } from "./kernel.js";

export interface Palette {
  del: (s: string) => string;
  add: (s: string) => string;
  chg: (s: string) => string;
  dim: (s: string) => string;
  bold: (s: string) => string;
}

const ansi = (code: string) => (s: string) => `\x1b[${code}m${s}\x1b[0m`;

/** palette - ANSI colours when @color, else identity. */
export function palette(color: boolean): Palette {
  if (!color) {
    const id = (s: string) => s;
    return { del: id, add: id, chg: id, dim: id, bold: id };
  }
  return { del: ansi("31"), add: ansi("32"), chg: ansi("33"), dim: ansi("2"), bold: ansi("1") };
}

/** fmtSize - bytes as "4K", "2M", "1.5G" (powers of 1024), or "N bytes". */
export function fmtSize(n: number): string {
  const units = ["K", "M", "G", "T"];
  if (n < 1024) return `${n} bytes`;
  let v = n;
  let u = -1;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  const s = Number.isInteger(v) ? String(v) : v.toFixed(1);
  return `${s}${units[u]}`;
}

const plural = (n: number, one: string, many = `${one}s`): string => `${n} ${n === 1 ? one : many}`;

function big(h: string): bigint {
  return BigInt(h);
}

/** "0x42000000-0x423fffff" from a start and size (hex strings). */
function span(start: string, size: string): string {
  const s = big(start);
  return `0x${s.toString(16)}-0x${(s + big(size) - 1n).toString(16)}`;
}

function pagesOf(size: string): number {
  return Number(big(size) / BigInt(PAGE_SIZE));
}

function side(s: SideJson): string {
  return s.kind === "preserved" ? `preserved ${s.label}` : s.label;
}

function rangeLine(r: RangeJson): string {
  return `${span(r.start, r.size)} (${plural(pagesOf(r.size), "page")}) ${r.label}`;
}

function more(P: Palette, shown: number, total: number, what: string): string[] {
  return total > shown ? [P.dim(`    ... ${total - shown} more ${what} (--limit 0 lists all)`)] : [];
}

function chunkDetail(P: Palette, c: ChunkPageJson): string[] {
  const L: string[] = [];
  const idx = (i: number | null) => (i === null ? "not a chunk" : `chunk ${i}`);
  L.push(`      ${idx(c.a.index)} on A, ${idx(c.b.index)} on B`);
  if (c.header.includes("next")) L.push(`      next ${P.del(c.a.next)} -> ${P.add(c.b.next)}`);
  if (c.header.includes("num_ranges")) L.push(`      num_ranges ${P.del(c.a.numRanges)} -> ${P.add(c.b.numRanges)}`);
  const e = (x: { start: string; size: string; data: string }) =>
    x.start === "0x0" && x.size === "0x0" && x.data === "0x0" ? "(zero)" : `{start ${x.start}, size ${x.size}, data ${x.data}}`;
  for (const d of c.entries) L.push(`      ranges[${d.index}] ${P.del(e(d.a))} -> ${P.add(e(d.b))}`);
  if (c.entriesChanged > c.entries.length) L.push(P.dim(`      ... ${c.entriesChanged - c.entries.length} more entries differ`));
  if (c.header.length === 0 && c.entriesChanged === 0) L.push("      header and entries equal");
  return L;
}

function runLine(P: Palette, r: RunJson): string[] {
  const L = [`  ${span(r.start, r.size)} (${plural(r.pages, "page")}): A ${P.del(side(r.a))} / B ${P.add(side(r.b))}`];
  if (r.chunk) L.push(...chunkDetail(P, r.chunk));
  return L;
}

function fdtLines(P: Palette, changes: FdtChange[]): string[] {
  return changes.map((c) => {
    const v = (x: string | undefined) => (x === undefined || x === "" ? "" : ` = ${x}`);
    switch (c.change) {
      case "node-added":
        return `  ${P.add("+ " + c.path + " { }")}`;
      case "node-removed":
        return `  ${P.del("- " + c.path + " { }")}`;
      case "prop-added":
        return `  ${P.add("+ " + c.path + v(c.b))}`;
      case "prop-removed":
        return `  ${P.del("- " + c.path + v(c.a))}`;
      case "prop-changed":
        return `  ${P.chg("~ " + c.path)}${v(c.a)} -> ${(c.b ?? "") === "" ? "(empty)" : c.b}`;
      case "memreserve-added":
        return `  ${P.add("+ /memreserve/ " + c.b)}`;
      case "memreserve-removed":
        return `  ${P.del("- /memreserve/ " + c.a)}`;
      case "bytes":
        return `  ${P.chg("~ bytes differ")} (${c.a} -> ${c.b}), same tree`;
    }
    return "";
  });
}

function head(label: string): string {
  return label.padEnd(12);
}

/** renderDiff - the human report of a two-handoff diff. */
export function renderDiff(d: DiffJson, P: Palette): string {
  const L: string[] = [];
  L.push(P.bold(`khosim diff`));
  L.push(`  A  ${d.a}`);
  L.push(`  B  ${d.b}`);
  const f = (name: keyof DiffJson["files"]) => (d.files[name] ? `${name} identical` : P.chg(`${name} differs`));
  L.push(`${head("files")}${f("memory.img")}, ${f("boot.dtb")}, ${f("kho.dtb")}`);
  if (d.ram.a.base !== d.ram.b.base || d.ram.a.size !== d.ram.b.size) {
    L.push(`${head("ram")}A ${fmtSize(Number(d.ram.a.size))} at ${d.ram.a.base}, B ${fmtSize(Number(d.ram.b.size))} at ${d.ram.b.base}`);
  }

  if (d.format.a !== d.format.b) L.push(`${head("format")}A ${d.format.a ?? "not decoded"}, B ${d.format.b ?? "not decoded"}`);

  // Pages.
  const p = d.pages;
  L.push(
    `${head("pages")}${plural(p.changed, "page")} changed in ${plural(p.runCount, "run")} (${fmtSize(Number(p.compared))} of each image compared${p.holesSkipped ? ", holes skipped" : ", whole images"})`,
  );
  if (p.sizeDiff) {
    L.push(`  ${P.chg(`images differ in size: A ${p.sizeDiff.a}, B ${p.sizeDiff.b}`)}; ${p.sizeDiff.longer.toUpperCase()} holds ${fmtSize(Number(p.sizeDiff.dataPastEnd))} of data past the other's end (not compared)`);
  }
  if (p.byKind.length > 1) L.push(`  by kind (A/B): ${p.byKind.map((k) => `${k.a}/${k.b} ${k.pages}`).join(", ")}`);
  for (const r of p.runs) L.push(...runLine(P, r));
  L.push(...more(P, p.runs.length, p.runCount, "runs"));

  // Ranges.
  const r = d.ranges;
  const rc = r.counts;
  L.push(
    `${head("ranges")}A ${r.a}, B ${r.b}: ${rc.added} added, ${rc.removed} removed, ${rc.resized} resized, ${rc.dataChanged} with other data, ${rc.unchanged} unchanged`,
  );
  for (const x of r.removed) L.push(`  ${P.del("- " + rangeLine(x))}`);
  L.push(...more(P, r.removed.length, rc.removed, "removed"));
  for (const x of r.added) L.push(`  ${P.add("+ " + rangeLine(x))}`);
  L.push(...more(P, r.added.length, rc.added, "added"));
  for (const x of r.resized) {
    L.push(`  ${P.chg("~ " + x.start)} size ${x.a.size} -> ${x.b.size}, ${x.a.label}${x.a.data !== x.b.data ? ` -> ${x.b.label}` : ""}; ${plural(x.changedPages, "page")} of the common part differ`);
  }
  L.push(...more(P, r.resized.length, rc.resized, "resized"));
  for (const x of r.dataChanged) {
    const what: string[] = [];
    if (x.dataField) what.push(`data ${x.a.data} -> ${x.b.data} (${x.a.label} -> ${x.b.label})`);
    if (x.changedPages > 0) what.push(`${x.changedPages} of ${plural(pagesOf(x.size), "page")} differ${x.changedPages === 1 ? "s" : ""}`);
    L.push(`  ${P.chg("* " + span(x.start, x.size))} ${x.a.label}: ${what.join("; ")}`);
  }
  L.push(...more(P, r.dataChanged.length, rc.dataChanged, "with other data"));

  // Chunks.
  const c = d.chunks;
  const cc = c.counts;
  const md = c.metadata.a === c.metadata.b ? `metadata ${c.metadata.a ?? "none"}` : `metadata ${P.del(c.metadata.a ?? "none")} -> ${P.add(c.metadata.b ?? "none")}`;
  L.push(`${head("chunks")}A ${c.a}, B ${c.b}; ${md}: ${cc.added} added, ${cc.removed} removed, ${cc.relinked} relinked, ${cc.moved} moved, ${cc.changed} page(s) changed`);
  const hdr = (x: { next: string | null; numRanges: string | null }) => (x.next === null ? "" : ` (next ${x.next}, ${Number(x.numRanges)} ranges)`);
  for (const x of c.removed) L.push(`  ${P.del(`- chunk ${x.index} at ${x.addr}`)}${hdr(x)}`);
  L.push(...more(P, c.removed.length, cc.removed, "removed"));
  for (const x of c.added) L.push(`  ${P.add(`+ chunk ${x.index} at ${x.addr}`)}${hdr(x)}`);
  L.push(...more(P, c.added.length, cc.added, "added"));
  for (const x of c.relinked) L.push(`  ${P.chg(`~ relinked ${x.addr}`)} (chunk ${x.a.index} on A, ${x.b.index} on B): next ${P.del(String(x.a.next))} -> ${P.add(String(x.b.next))}`);
  L.push(...more(P, c.relinked.length, cc.relinked, "relinked"));
  for (const x of c.moved) L.push(`  ${P.chg(`~ moved ${x.addr}`)}: chunk ${x.a.index} on A, ${x.b.index} on B`);
  L.push(...more(P, c.moved.length, cc.moved, "moved"));
  for (const x of c.changed) {
    const where = x.indexA !== null && x.indexB !== null ? `chunk ${x.indexA}/${x.indexB}` : x.indexA !== null ? `chunk ${x.indexA} on A` : `chunk ${x.indexB} on B`;
    const fields = x.header.length ? `${x.header.join(", ")} and ` : "";
    L.push(`  ${P.chg(`* ${x.addr}`)} (${where}): ${fields}${plural(x.entriesChanged, "entry", "entries")} differ (see pages)`);
  }
  L.push(...more(P, c.changed.length, cc.changed, "changed"));

  // FDTs.
  for (const [name, changes] of [
    ["kho", d.fdt.kho],
    ["boot", d.fdt.boot],
  ] as const) {
    L.push(`${head(`fdt ${name}`)}${changes.length === 0 ? "identical" : plural(changes.length, "change")}`);
    L.push(...fdtLines(P, changes));
  }

  // Problems.
  if (d.lost) {
    L.push(...lostLines(P, d.lost.a, "lost A"));
    L.push(...lostLines(P, d.lost.b, "lost B"));
  }
  const probs = [...d.problems.a.map((x) => `A: ${x}`), ...d.problems.b.map((x) => `B: ${x}`)];
  L.push(`${head("problems")}${probs.length === 0 ? "none" : ""}`);
  for (const x of probs) L.push(`  ${P.chg(x)}`);

  L.push(d.identical ? P.bold("identical (exit 0)") : P.bold(`different (exit 1)`));
  return L.join("\n") + "\n";
}

/** renderSuccessor - the human report of a handoff against successor.json. */
export function renderSuccessor(s: SuccessorDiffJson, P: Palette): string {
  const L: string[] = [];
  L.push(P.bold(`khosim diff --successor ${s.dir}`));
  L.push(`${head("outcome")}${s.outcome} (kernel-b exit ${s.exitCode})${s.reason ? `: ${s.reason}` : ""}`);
  if (s.format.successor !== null || s.format.image !== null) {
    const f = s.format.successor === null || s.format.successor === s.format.image ? `${s.format.image}` : P.chg(`successor ${s.format.successor ?? "none"}, image ${s.format.image ?? "not decoded"}`);
    L.push(`${head("format")}${f}`);
  }
  const rv = s.reserved;
  const exact = rv.exact
    ? `exactly the ${plural(rv.walked.ranges, "walked range")} (${plural(rv.walked.chunks, "chunk")})`
    : P.chg(`walked ${rv.walked.ranges} ranges, ${rv.walked.bytes} bytes: ${rv.counts.missing} not reserved, ${rv.counts.extra} extra, ${rv.counts.differ} differ`);
  const calls = rv.calls === null ? "" : ` in ${plural(rv.calls, "memblock_reserve call")}`;
  L.push(`${head("reserved")}${plural(rv.ranges, "range")}${calls}, ${rv.bytes} bytes (${fmtSize(Number(rv.bytes))}): ${exact}`);
  for (const x of rv.missing) L.push(`  ${P.del("- not reserved " + rangeLine(x))}`);
  L.push(...more(P, rv.missing.length, rv.counts.missing, "not reserved"));
  for (const x of rv.extra) L.push(`  ${P.add("+ reserved, not walked " + rangeLine(x))}`);
  L.push(...more(P, rv.extra.length, rv.counts.extra, "extra"));
  for (const x of rv.differ) L.push(`  ${P.chg("~ " + x.start)} walked size ${x.walked.size} data ${x.walked.data}, reserved size ${x.reserved.size} data ${x.reserved.data}`);
  L.push(...more(P, rv.differ.length, rv.counts.differ, "differing"));
  const fr = s.freed;
  const chunks = fr.chunksMatchWalk ? "the image's chunk list" : P.chg("NOT the image's chunk list");
  const mb = fr.free !== null ? `; everything else not reserved: free ${fr.free} of ${fr.memory} (reserved ${fr.reserved})` : "";
  L.push(`${head("freed")}${plural(fr.chunkPages, "chunk page")} (${fmtSize(Number(fr.chunkBytes))}), ${chunks}${mb}`);
  if (fr.chunksInReserved.length) L.push(`  ${P.chg(`chunk pages inside reserved ranges: ${fr.chunksInReserved.join(", ")}`)}`);
  const rs = s.restored;
  const of = (x: { restored: number; expected: number | null }) => `${x.restored}/${x.expected ?? "?"}`;
  const restored = `${of(rs.folios)} folios, ${of(rs.ranges)} phys ranges (expected from ${rs.expectedFrom})`;
  L.push(`${head("restored")}${rs.complete ? restored : P.chg(restored)}`);
  const v = s.verified;
  L.push(
    `${head("verified")}${v.folios} folios + ${v.ranges} ranges, ${v.bytes} bytes${v.unchecked ? `, ${v.unchecked} unfilled not checked` : ""}; ${v.failureCount === 0 ? "0 failures" : P.chg(plural(v.failureCount, "failure"))}`,
  );
  for (const x of v.failures) L.push(`  ${P.chg(`${x.kind}${x.phys ? " " + x.phys : ""}${x.order !== undefined ? ` order ${x.order}` : ""}: ${x.reason}`)}`);
  if (s.predecessor) {
    const pr = s.predecessor;
    const ok = pr.rangesMatch && pr.chunksMatch;
    L.push(
      `${head("kernel-a")}report.json: ${ok ? "ranges and chunks match the image" : P.chg(`ranges ${pr.rangesMatch ? "match" : "differ"}, chunks ${pr.chunksMatch ? "match" : "differ"}`)}`,
    );
  } else {
    L.push(`${head("kernel-a")}no report.json`);
  }
  L.push(`${head("problems")}${s.problems.length === 0 ? "none" : ""}`);
  for (const x of s.problems) L.push(`  ${P.chg(x)}`);
  L.push(
    s.ok
      ? P.bold("ok: the successor reserved exactly the walked ranges and restored everything (exit 0)")
      : P.bold(`not ok: ${s.why.join("; ")} (exit 1)`),
  );
  return L.join("\n") + "\n";
}

/** toJsonText - the JSON report, two-space indented, with a final newline. */
export function toJsonText(v: DiffJson | SuccessorDiffJson | KernelDiffJson): string {
  return JSON.stringify(v, null, 2) + "\n";
}

/** lostLines - the "lost" lines of a summary (its head line, then one per run). */
export function lostLines(P: Palette, s: LostSummaryJson, title = "lost"): string[] {
  const L = [`${head(title)}${s.pages === 0 ? `none under ${s.kernel}` : P.del(`${plural(s.pages, "page")} (${fmtSize(s.pages * PAGE_SIZE)}) in ${plural(s.runs, "run")} under ${s.kernel}, first ${s.first}`)}`];
  for (const r of s.list) L.push(`  ${r.start}-${r.end} (${plural(r.pages, "page")}) ${r.label}`);
  if (s.listed > s.list.length) L.push(P.dim(`    ... ${s.listed - s.list.length} more (--limit 0 lists all)`));
  return L;
}

/** renderKernel - the human report of diffKernel. */
export function renderKernel(d: KernelDiffJson, P: Palette): string {
  const L: string[] = [P.bold(`khosim diff --kernel ${d.kernel.name} ${d.dir}`)];
  L.push(`${head("kernel")}${d.kernel.name}${d.kernel.source ? `: ${d.kernel.source}` : ""}`);
  L.push(`${head("verdict")}${d.verdict ?? "none"} (kernel-b --kernel ${d.kernel.name}: ${d.outcome}, exit ${d.exitCode})${d.reason ? `; ${d.reason}` : ""}`);
  const w = d.preserved.walked;
  const walked = `${plural(w.pages, "page")} in ${plural(w.ranges, "range")} by the careful walk`;
  L.push(`${head("preserved")}${d.preserved.pages === null || d.preserved.pages === w.pages ? walked : `${plural(d.preserved.pages, "page")} as the ${d.kernel.name} successor counts them (${walked})`}`);
  L.push(...lostLines(P, d.lost));
  const other: string[] = [];
  if (d.oobReadBytes > 0) other.push(`${d.oobReadBytes} bytes read out of bounds, first ${d.firstOobRead}`);
  if (d.outsideRamPfns > 0) other.push(plural(d.outsideRamPfns, "pfn") + " outside RAM touched");
  if (d.wrongSizeReserves > 0) other.push(plural(d.wrongSizeReserves, "wrong-size reserve"));
  if (d.spuriousPages > 0) other.push(plural(d.spuriousPages, "spurious page") + " reserved");
  if (d.doubleRestores > 0) other.push(plural(d.doubleRestores, "folio") + " restored twice");
  L.push(`${head("also")}${other.length ? P.chg(other.join("; ")) : "nothing else"}`);
  L.push(`${head("hazards")}${d.hazards.length === 0 ? "none" : ""}`);
  for (const h of d.hazards) L.push(`  ${P.chg(h)}`);
  L.push(`${head("problems")}${d.problems.length === 0 ? "none" : ""}`);
  for (const x of d.problems) L.push(`  ${P.chg(x)}`);
  L.push(d.verdict === "intact" ? `ok: ${d.kernel.name} reserves every preserved page (exit 0)` : `${d.kernel.name}: ${d.verdict ?? d.outcome} (exit 1)`);
  return `${L.join("\n")}\n`;
}
