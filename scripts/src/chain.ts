/*
 * npm run chain -- --generations N --out DIR [--scenario FILE] [--each FILE] [--cmdline STR] [--force]
 * N handoffs in a row, each generation its own process: gen-1 is kernel-a,
 * gen-k is kernel-b reviving gen-(k-1) and handing off again. Every
 * generation is verified (the last by a final kernel-b). Prints a table per
 * generation and the diff between consecutive handoffs.
 *
 * Exit 0 when every generation revived and verified and, without --each,
 * the metadata did not grow from one generation to the next and (with
 * --cmdline) every reservation a successor revived kept generation 1's
 * bytes; 1 otherwise;
 * 2 on bad usage; kernel-a's exit code when generation 1 fails; 70 internal
 * error.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { CliError, EXIT_USAGE, formatOption, intOption, maxOrderOption, newCommand, runMain, withExitCodes } from "@khosim/shared/proc";
import { KERNEL_A, KERNEL_B, readJson, runKernel } from "./run.js";
import { runDiff } from "./diff/run.js";

interface GenRow {
  gen: number;
  by: string;
  folios: number;
  physRanges: number;
  ranges: number;
  chunks: number;
  metadataBytes: number;
  metadata: string;
  verified: string;
  diff: string;
}

/** One line per consecutive pair: what changed, from npm run diff's core (in process). */
async function diffLine(a: string, b: string): Promise<string> {
  let r;
  try {
    r = await runDiff([a, b, "--json"], { progress: false, color: false });
  } catch (e) {
    return `diff failed: ${e instanceof Error ? e.message : String(e)}`;
  }
  try {
    const d = JSON.parse(r.stdout) as { identical: boolean; pages?: { changed: number }; ranges?: { counts?: Record<string, number> } };
    if (d.identical) return "identical";
    const c = d.ranges?.counts;
    const rc = c ? `${c["added"]} added, ${c["removed"]} removed, ${c["resized"]} resized, ${c["dataChanged"]} with other data` : "";
    return `${d.pages?.changed ?? "?"} pages changed${rc ? "; ranges: " + rc : ""}`;
  } catch {
    return "diff output unreadable";
  }
}

interface ReserveMemLine {
  text: string;
  /** A revived reservation whose bytes differ from generation 1's. */
  changed: boolean;
}

/*
 * What generation @k's successor did with each reserve_mem= word
 * (successor.json reserveMem) and whether a revived range holds generation
 * 1's bytes: @rep (generation k's report.json, written by the kernel that
 * filled or kept the range) lists its checksum; generation 1's is the one
 * kernel-a wrote.
 */
function reserveMemLine(k: number, rep: ChainReport, succ: ChainSuccessor | undefined, first: ChainReport): ReserveMemLine {
  const rows = succ?.reserveMem ?? [];
  if (rows.length === 0) return { text: `reserve_mem gen ${k}: none`, changed: false };
  let changed = false;
  const parts = rows.map((r) => {
    if (r.outcome !== "revived") return `${r.name} ${r.outcome}`;
    const was = first.reserveMem?.entries.find((e) => e.name === r.name);
    const now = rep.reserveMem?.entries.find((e) => e.name === r.name);
    if (!was || !now) return `${r.name} revived at ${r.start}`;
    if (now.csum !== was.csum) changed = true;
    return `${r.name} revived at ${r.start}, ${now.csum === was.csum ? "bytes as generation 1" : `bytes CHANGED (csum ${now.csum}, generation 1 ${was.csum})`}`;
  });
  return { text: `reserve_mem gen ${k}: ${parts.join("; ")}`, changed };
}

type ChainReport = { reserveMem?: { entries: { name: string; csum: string }[] } };
type ChainSuccessor = { reserveMem?: { name: string; outcome: string; start: string | null }[] };

async function main(): Promise<number> {
  const cmd = newCommand("chain", "run N KHO generations in a row and verify each")
    .requiredOption("--generations <n>", "number of handoffs", intOption("--generations", 1, 1000))
    .requiredOption("--out <dir>", "directory for gen-1 ... gen-N")
    .option("--scenario <file>", "kernel-a's scenario for generation 1")
    .option("--each <file>", "scenario every later generation runs before handing off (new preservations)")
    .option("--max-order <n>", "successors' MAX_PAGE_ORDER", maxOrderOption)
    .option("--format <name>", "preservation format of every generation", formatOption)
    .option("--cmdline <string>", "every kernel-b's command line: its reserve_mem= words revive the reservations by name and hand them off again (generation 1 takes its own from the scenario's machine.cmdline)")
    .option("--force", "replace an existing --out directory", false);
  withExitCodes(cmd, [
    [0, "every generation revived and verified, and (without --each) the metadata did not grow"],
    [1, "a generation did not verify, the metadata grew, or a revived reservation's bytes changed"],
    [2, "usage error, --out exists without --force; or generation 1's kernel-a exit code when it fails"],
  ]);
  cmd.parse(process.argv);
  const o = cmd.opts<{ generations: number; out: string; scenario?: string; each?: string; maxOrder?: number; format?: string; cmdline?: string; force: boolean }>();
  if (fs.existsSync(o.out)) {
    if (!o.force) throw new CliError(EXIT_USAGE, `${o.out}: already exists; pass --force to replace it`);
    fs.rmSync(o.out, { recursive: true, force: true });
  }
  fs.mkdirSync(o.out, { recursive: true });
  const gen = (k: number): string => path.join(o.out, `gen-${k}`);
  const bOpts = [...(o.maxOrder === undefined ? [] : ["--max-order", String(o.maxOrder)]), ...(o.cmdline === undefined ? [] : ["--cmdline", o.cmdline])];
  const carried: ReserveMemLine[] = [];
  let first: ChainReport | undefined;
  const rows: GenRow[] = [];
  let ok = true;

  const fmtArgs = o.format ? ["--format", o.format] : [];
  const a = runKernel(KERNEL_A, ["--out", gen(1), "--log-format", "json", ...fmtArgs, ...(o.scenario ? ["--scenario", o.scenario] : [])]);
  if (a.status !== 0) {
    process.stderr.write(a.stderr);
    throw new CliError(a.status, `generation 1 (kernel-a) exited ${a.status}`);
  }
  for (let k = 1; k <= o.generations; k++) {
    process.stderr.write(`chain: generation ${k}/${o.generations}\n`);
    const last = k === o.generations;
    const args = ["--in", gen(k), "--log-format", "json", ...bOpts];
    if (!last) args.push("--handoff-out", gen(k + 1), "--seed", String(k + 1), ...fmtArgs, ...(o.each ? ["--scenario", o.each] : []));
    const b = runKernel(KERNEL_B, args);
    const rep = readJson(path.join(gen(k), "report.json"));
    const succ = fs.existsSync(path.join(gen(k), "successor.json")) ? readJson(path.join(gen(k), "successor.json")) : undefined;
    rows.push({
      gen: k,
      by: rep.tool.replace("khosim ", ""),
      folios: rep.stats.folios,
      physRanges: rep.stats.physRanges,
      ranges: rep.stats.ranges,
      chunks: rep.stats.chunks,
      metadataBytes: rep.stats.metadataBytes,
      metadata: rep.metadata,
      verified: succ ? `${succ.outcome} (${succ.verified.folios} folios, ${succ.verified.ranges} ranges, ${succ.verified.bytes} B)` : `no report (exit ${b.status})`,
      diff: k === 1 ? "" : await diffLine(gen(k - 1), gen(k)),
    });
    if (o.cmdline !== undefined) carried.push(reserveMemLine(k, rep, succ, (first ??= rep)));
    if (b.status !== 0) {
      ok = false;
      process.stderr.write(b.stderr);
      process.stderr.write(`chain: generation ${k} did not verify (kernel-b exit ${b.status})\n`);
      break;
    }
  }
  const grew = rows.filter((r, i) => i > 1 && r.metadataBytes > rows[i - 1]!.metadataBytes);
  console.log(`| gen | written by | folios | phys | ranges | chunks | metadata bytes | metadata | verified by the next kernel | diff from previous |`);
  console.log(`|---|---|---|---|---|---|---|---|---|---|`);
  for (const r of rows) {
    console.log(`| ${r.gen} | ${r.by} | ${r.folios} | ${r.physRanges} | ${r.ranges} | ${r.chunks} | ${r.metadataBytes} | ${r.metadata} | ${r.verified} | ${r.diff} |`);
  }
  if (!o.each && grew.length > 0) {
    ok = false;
    console.log(`metadata grew without new preservations at generation(s) ${grew.map((r) => r.gen).join(", ")}`);
  }
  for (const c of carried) {
    console.log(c.text);
    if (c.changed) ok = false;
  }
  console.log(ok ? `chain: ${rows.length} generations verified; handoffs in ${o.out}/gen-1 ... gen-${rows.length}` : "chain: FAILED");
  return ok ? 0 : 1;
}

runMain("chain", main);
