/*
 * npm run compare -- [--format a,b] [--only x,y] [--runs N] [--ram SIZE]
 *                    [--out DIR] [--json [FILE]] [--svg FILE] [--timeout-s S]
 * (--formats and --workloads: the old spellings of --format and --only)
 *
 * Runs every preservation format on the same named workloads (scenario files
 * in scenarios/compare/), each run a real two-process handoff that kernel-b
 * revives and verifies, and reports per (workload, format): metadata bytes
 * and pages in memory (exact), kernel-a preserve and serialize time,
 * kernel-b walk and reserve time, memblock_reserve calls, and peak RSS of
 * each process. Times and RSS are medians of --runs runs (default 3).
 * Output: a markdown table on stdout (--json alone: the raw numbers as JSON
 * instead; --json FILE: the table, and the raw numbers to FILE), and an SVG
 * chart of metadata bytes and times (default out/compare.svg).
 *
 * --ram 1T runs every workload on a machine of that size instead (sparse
 * images: nothing per page of RAM that was never touched).
 * A pair that cannot run (say the posted format's 128 KiB chunk per range
 * exhausting RAM) is reported with the reason, not hidden.
 *
 * --render A.json [B.json ...] runs nothing: it prints the table and writes
 * the chart from earlier --json files (later files replace earlier cells of
 * the same workload and format), to merge campaigns.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { KHO_FORMATS } from "@khosim/shared/kho";
import { formatSize, parseSize } from "@khosim/shared/lib";
import { CliError, EXIT_USAGE, intOption, newCommand, runMain, withExitCodes } from "@khosim/shared/proc";
import { hiddenAlias, listOption } from "./cli-common.js";
import { cell, fmt, num, runProc, stat, type Stat } from "./measure.js";
import { KERNEL_A, KERNEL_B, ROOT } from "./run.js";

const WORKLOAD_DIR = path.join(ROOT, "scenarios/compare");
/** Workloads in table order: file stem in scenarios/compare. */
const WORKLOADS = ["test-kho", "isolated-1m", "contig-48g", "random-64g", "vm-2m-holes", "gib-ranges", "dense-1in64", "vmalloc-1g", "luo-memfd-1g"];

interface Options {
  render?: string[];
  formats: string[];
  workloads: string[];
  runs: number;
  ram?: number;
  out: string;
  /** true: JSON on stdout instead of the table; a file: the table, and JSON to the file. */
  json?: string | true;
  svg: string;
  timeoutS: number;
}

function sizeOption(v: string): number {
  const n = parseSize(v);
  if (n === undefined || n <= 0) throw new CliError(EXIT_USAGE, `--ram: ${JSON.stringify(v)} is not a size (e.g. 64G, 1T)`);
  return n;
}

function command() {
  const cmd = newCommand("compare", "run every preservation format on the same workloads (real two-process handoffs) and compare metadata size and times")
    .option("--format <names>", `formats to run, comma-separated (default: all: ${KHO_FORMATS.map((f) => f.name).join(",")})`, listOption)
    .addOption(hiddenAlias("--formats <names>", "format", listOption))
    .option("--only <workloads>", `workloads to run, comma-separated, from scenarios/compare (default: ${WORKLOADS.join(",")})`, listOption)
    .addOption(hiddenAlias("--workloads <workloads>", "only", listOption))
    .option("--runs <n>", "runs per (workload, format); times and RSS are medians", intOption("--runs", 1, 1000), 3)
    .option("--ram <size>", "run every workload on a machine of this size instead (e.g. 1T)", sizeOption)
    .option("--out <dir>", "scratch directory for the handoffs (removed at the end)", path.join(ROOT, "out/compare"))
    .option("--json [file]", "the raw numbers as JSON: on stdout instead of the table, or to FILE")
    .option("--svg <file>", "the chart to write", path.join(ROOT, "out/compare.svg"))
    .option("--timeout-s <s>", "kill a kernel process after S seconds", intOption("--timeout-s", 1, 86_400), 1800)
    .option("--render <files...>", "run nothing: table and chart from earlier --json files (later files replace earlier cells)");
  return withExitCodes(cmd, [
    [0, "every (workload, format) pair ran, revived and verified (or --render done)"],
    [1, "some pair could not run; the table says why"],
    [2, "usage error: unknown format or workload, bad number, unreadable --render file"],
  ]);
}

function parseArgs(argv: string[]): Options {
  const cmd = command();
  cmd.parse(argv, { from: "user" });
  const v = cmd.opts<{ format?: string[]; only?: string[]; runs: number; ram?: number; out: string; json?: string | true; svg: string; timeoutS: number; render?: string[] }>();
  const o: Options = {
    formats: v.format ?? KHO_FORMATS.map((f) => f.name),
    workloads: v.only ?? WORKLOADS,
    runs: v.runs,
    out: path.resolve(v.out),
    svg: path.resolve(v.svg),
    timeoutS: v.timeoutS,
  };
  if (v.render) o.render = v.render;
  if (v.ram !== undefined) o.ram = v.ram;
  if (v.json !== undefined) o.json = v.json === true ? true : path.resolve(v.json);
  for (const f of o.formats) if (!KHO_FORMATS.some((k) => k.name === f)) throw new CliError(EXIT_USAGE, `--format: unknown format ${JSON.stringify(f)}; one of ${KHO_FORMATS.map((k) => k.name).join(", ")}`);
  for (const w of o.workloads) if (!fs.existsSync(path.join(WORKLOAD_DIR, `${w}.json`))) throw new CliError(EXIT_USAGE, `--only: no workload ${JSON.stringify(w)} in scenarios/compare`);
  return o;
}

interface Cell {
  workload: string;
  format: string;
  ok: boolean;
  failure?: string;
  runs: number;
  metadataBytes?: number;
  metadataPages?: number;
  ranges?: number;
  reserveCalls?: number;
  preserveMs?: Stat;
  serializeMs?: Stat;
  walkMs?: Stat;
  reserveMs?: Stat;
  aRssMiB?: Stat;
  bRssMiB?: Stat;
  aWallMs?: Stat;
  bWallMs?: Stat;
}

/** The scenario file to run: the workload's, with RAM replaced under --ram. */
function scenarioFile(o: Options, w: string): string {
  const file = path.join(WORKLOAD_DIR, `${w}.json`);
  if (o.ram === undefined) return file;
  const s = JSON.parse(fs.readFileSync(file, "utf8")) as { machine?: Record<string, unknown> };
  s.machine = { ...(s.machine ?? {}), ram: o.ram };
  delete (s.machine as Record<string, unknown>)["scratch"];
  const out = path.join(o.out, `${w}-${formatSize(o.ram)}.json`);
  fs.writeFileSync(out, JSON.stringify(s));
  return out;
}

function lastLine(text: string): string {
  return text.trimEnd().split("\n").filter((l) => !l.startsWith("{")).slice(-1)[0] ?? text.trimEnd().split("\n").slice(-1)[0] ?? "";
}

function runPair(o: Options, w: string, f: string): Cell {
  const c: Cell = { workload: w, format: f, ok: true, runs: 0 };
  const scenario = scenarioFile(o, w);
  const dir = path.join(o.out, `${w}-${f}`);
  const m: Record<string, number[]> = { preserve: [], serialize: [], walk: [], reserve: [], aRss: [], bRss: [], aWall: [], bWall: [] };
  for (let r = 0; r < o.runs; r++) {
    process.stderr.write(`compare: ${w} / ${f} run ${r + 1}/${o.runs}\n`);
    const a = runProc(KERNEL_A, ["--out", dir, "--force", "--scenario", scenario, "--format", f, "--log-format", "json"], o.timeoutS);
    if (a.status !== 0 || !a.last) {
      c.ok = false;
      c.failure = `kernel-a: ${a.error ?? `exit ${a.status}`}: ${lastLine(a.stderr)}`;
      break;
    }
    const b = runProc(KERNEL_B, ["--in", dir, "--log-format", "json"], o.timeoutS);
    if (b.status !== 0 || !b.last) {
      c.ok = false;
      c.failure = `kernel-b: ${b.error ?? `exit ${b.status}`}: ${lastLine(b.stdout + b.stderr)}`;
      break;
    }
    c.runs++;
    c.metadataBytes = num(a.last, "metadataBytes");
    c.metadataPages = num(a.last, "metadataPages");
    c.ranges = num(b.last, "ranges");
    c.reserveCalls = num(b.last, "reserveCalls");
    m.preserve!.push(num(a.last, "preserveNs") / 1e6);
    m.serialize!.push(num(a.last, "serializeNs") / 1e6);
    m.walk!.push(num(b.last, "walkNs") / 1e6);
    m.reserve!.push(num(b.last, "reserveNs") / 1e6);
    m.aRss!.push(num(a.last, "maxRssKiB") / 1024);
    m.bRss!.push(num(b.last, "maxRssKiB") / 1024);
    m.aWall!.push(a.extWallMs);
    m.bWall!.push(b.extWallMs);
  }
  fs.rmSync(dir, { recursive: true, force: true });
  if (c.runs > 0) {
    c.preserveMs = stat(m.preserve!);
    c.serializeMs = stat(m.serialize!);
    c.walkMs = stat(m.walk!);
    c.reserveMs = stat(m.reserve!);
    c.aRssMiB = stat(m.aRss!);
    c.bRssMiB = stat(m.bRss!);
    c.aWallMs = stat(m.aWall!);
    c.bWallMs = stat(m.bWall!);
  }
  return c;
}

function bytes(n: number | undefined): string {
  if (n === undefined || !Number.isFinite(n)) return "–";
  return n >= 2 ** 20 ? `${(n / 2 ** 20).toFixed(2)} MiB` : n >= 1024 ? `${(n / 1024).toFixed(1)} KiB` : `${n} B`;
}

function table(cells: Cell[]): string {
  const L = [
    "| workload | format | metadata bytes | metadata pages | ranges after walk | memblock_reserve calls | preserve ms | serialize ms | walk ms | reserve ms | kernel-a RSS MiB | kernel-b RSS MiB |",
    "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
  ];
  for (const c of cells) {
    if (!c.ok && c.runs === 0) {
      L.push(`| ${c.workload} | ${c.format} | ${c.failure!.replace(/\|/g, "\\|")} |||||||||| |`);
      continue;
    }
    L.push(
      `| ${c.workload} | ${c.format} | ${c.metadataBytes!.toLocaleString("en-US")} (${bytes(c.metadataBytes)}) | ${fmt(c.metadataPages!)} | ${fmt(c.ranges!)} | ${fmt(c.reserveCalls!)} | ` +
        `${cell(c.preserveMs)} | ${cell(c.serializeMs)} | ${cell(c.walkMs)} | ${cell(c.reserveMs)} | ${cell(c.aRssMiB)} | ${cell(c.bRssMiB)} |`,
    );
  }
  return L.join("\n");
}

const COLOURS = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#b07aa1"];

function esc(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;");
}

/** Two log-scale grouped bar charts: metadata bytes, and preserve+serialize+walk+reserve ms. */
function svgChart(cells: Cell[], formats: string[], workloads: string[]): string {
  const W = 120 + workloads.length * (formats.length * 16 + 24);
  const H = 300;
  const panel = (title: string, y0: number, value: (c: Cell) => number | undefined, unit: string): string => {
    const vals = cells.map(value).filter((v): v is number => v !== undefined && v > 0);
    const lo = Math.floor(Math.log10(Math.max(1e-3, Math.min(...vals, 1))));
    const hi = Math.ceil(Math.log10(Math.max(...vals, 10)));
    const h = 200;
    const y = (v: number): number => y0 + 40 + h - ((Math.log10(v) - lo) / (hi - lo)) * h;
    let s = `<text x="10" y="${y0 + 20}" font-size="14" font-weight="bold">${esc(title)}</text>`;
    for (let e = lo; e <= hi; e++) {
      s += `<line x1="80" x2="${W - 10}" y1="${y(10 ** e)}" y2="${y(10 ** e)}" stroke="#ddd"/><text x="75" y="${y(10 ** e) + 4}" font-size="10" text-anchor="end">1e${e} ${unit}</text>`;
    }
    workloads.forEach((w, wi) => {
      const x0 = 100 + wi * (formats.length * 16 + 24);
      formats.forEach((f, fi) => {
        const c = cells.find((k) => k.workload === w && k.format === f);
        const v = c ? value(c) : undefined;
        const x = x0 + fi * 16;
        if (v === undefined || !(v > 0)) {
          s += `<text x="${x + 7}" y="${y0 + 40 + h - 4}" font-size="9" text-anchor="middle" fill="#999">×</text>`;
          return;
        }
        s += `<rect x="${x}" y="${y(v)}" width="14" height="${y0 + 40 + h - y(v)}" fill="${COLOURS[fi % COLOURS.length]}"><title>${esc(`${w} / ${f}: ${fmt(v)} ${unit}`)}</title></rect>`;
      });
      s += `<text x="${x0 + (formats.length * 16) / 2}" y="${y0 + 40 + h + 14}" font-size="10" text-anchor="middle">${esc(w)}</text>`;
    });
    return s;
  };
  const legend = formats.map((f, i) => `<rect x="${100 + i * 110}" y="8" width="12" height="12" fill="${COLOURS[i % COLOURS.length]}"/><text x="${116 + i * 110}" y="18" font-size="12">${esc(f)}</text>`).join("");
  const timeOf = (c: Cell): number | undefined =>
    c.preserveMs && c.serializeMs && c.walkMs && c.reserveMs ? c.preserveMs.median + c.serializeMs.median + c.walkMs.median + c.reserveMs.median : undefined;
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${2 * H + 40}" font-family="sans-serif">` +
    `<rect width="100%" height="100%" fill="white"/>${legend}` +
    panel("Metadata bytes in memory (log scale)", 20, (c) => c.metadataBytes, "B") +
    panel("preserve + serialize + walk + reserve, median ms (log scale)", H + 20, timeOf, "ms") +
    `</svg>\n`
  );
}

/** Table and chart from earlier --json files. */
function render(o: Options): number {
  const cells: Cell[] = [];
  const heads: string[] = [];
  for (const f of o.render!) {
    let j: { started: string; cells: Cell[] };
    try {
      j = JSON.parse(fs.readFileSync(f, "utf8")) as { started: string; cells: Cell[] };
    } catch (e) {
      throw new CliError(EXIT_USAGE, `--render ${f}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
    if (!j || !Array.isArray(j.cells)) throw new CliError(EXIT_USAGE, `--render ${f}: not a compare --json file (no cells)`);
    heads.push(`${path.basename(f)} (${j.started})`);
    for (const c of j.cells) {
      const i = cells.findIndex((k) => k.workload === c.workload && k.format === c.format);
      if (i >= 0) cells[i] = c;
      else cells.push(c);
    }
  }
  const workloads = WORKLOADS.filter((w) => cells.some((c) => c.workload === w));
  const formats: string[] = KHO_FORMATS.map((f) => f.name).filter((f) => cells.some((c) => c.format === f));
  cells.sort((a, b) => workloads.indexOf(a.workload) - workloads.indexOf(b.workload) || formats.indexOf(a.format) - formats.indexOf(b.format));
  console.log(`khosim compare: rendered from ${heads.join(", ")}\n`);
  console.log(table(cells));
  fs.mkdirSync(path.dirname(o.svg), { recursive: true });
  fs.writeFileSync(o.svg, svgChart(cells, formats, workloads));
  console.log(`\nchart: ${path.relative(process.cwd(), o.svg)}`);
  return 0;
}

async function main(): Promise<number> {
  const o = parseArgs(process.argv.slice(2));
  if (o.render) return render(o);
  fs.mkdirSync(o.out, { recursive: true });
  const started = new Date().toISOString();
  const cells: Cell[] = [];
  for (const w of o.workloads) for (const f of o.formats) cells.push(runPair(o, w, f));
  const head =
    `khosim compare: node ${process.version}, ${os.cpus()[0]?.model ?? "?"} (${os.cpus().length} CPUs, ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB), ${started}\n` +
    `command: npm run compare -- ${process.argv.slice(2).join(" ")}\n` +
    `runs per pair: ${o.runs} (times and RSS: median (min–max)); metadata bytes/pages are exact` +
    (o.ram !== undefined ? `; every workload on ${formatSize(o.ram)} of RAM` : "") +
    "\n";
  const json = JSON.stringify({ started, options: o, cells }, null, 2) + "\n";
  fs.mkdirSync(path.dirname(o.svg), { recursive: true });
  fs.writeFileSync(o.svg, svgChart(cells, o.formats, o.workloads));
  if (o.json === true) {
    process.stdout.write(json);
  } else {
    console.log(head);
    console.log(table(cells));
    console.log(`\nchart: ${path.relative(process.cwd(), o.svg)}`);
    if (o.json) fs.writeFileSync(o.json, json);
  }
  fs.rmSync(o.out, { recursive: true, force: true });
  return cells.every((c) => c.ok) ? 0 : 1;
}

runMain("compare", main);
