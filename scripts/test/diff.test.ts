/*
 * npm run diff on handoff directories: one from the real kernel-a, the others
 * written in process by kernel-a's own code (data-helpers.ts; the first test
 * checks the two ways give the same files, byte for byte), and one kernel-b
 * run for --successor. Handoffs are made once for the file; most diffs run
 * in process (runDiff), one real diff process per exit code (0, 1, 2 and a
 * usage error) checks exit codes, piped output and one-line errors.
 *
 * Copies and patched images keep their extents files current, so a diff
 * reads the written pages only: reading whole sparse images (zero pages as
 * holes) is what "--read-all" and "without extents files" test, on purpose.
 */
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { makeHandoff, makeTmp, patchFile, readFileAt, readJson, removeTmp, runB, runKernelAsync, stackLines, u64le, type Handoff } from "./handoff-helpers.js";
import { copyHandoffSparse, patchImage, writeHandoffInProcess } from "./data-helpers.js";
import type { DiffJson, SuccessorDiffJson } from "../src/diff/index.js";
import { ROOT } from "../src/run.js";
import { classify, runDiff } from "../src/diff/run.js";
import { CliError } from "@khosim/shared/proc";
import { applyFault, findFault } from "../src/faults/index.js";

const DIFF = path.join(ROOT, "scripts/src/diff.ts");

/* Two chunks (171 isolated order-0 folios and test_kho's), a phys range, on 128 MiB. */
const TWO_CHUNKS = {
  description: "diff tests: two chunks on 128 MiB",
  machine: { ram: "128M", ramBase: "0x40000000", scratch: { lowmem: "16M", global: "32M" } },
  ops: [{ op: "test_kho" }, { op: "folios", count: 171, order: 0, layout: "isolated" }, { op: "phys", size: "64K" }],
};
/* test_kho's default workload on 128 MiB, not the default 1 GiB: about 18 whole-image reads (copies whose extents files are stale, --read-all) cost an eighth. */
const TEST_KHO = { description: "diff tests: test_kho's default on 128 MiB", machine: TWO_CHUNKS.machine, ops: [{ op: "test_kho" }] };
const SMALL = { ...TWO_CHUNKS, description: "diff tests: 96 MiB", machine: { ...TWO_CHUNKS.machine, ram: "96M" } };

let tmp: string | undefined;
let s1: Handoff | undefined;
let s1again: Handoff | undefined;
let s2: Handoff | undefined;
let two: Handoff | undefined;
let small: Handoff | undefined;
let revived: string | undefined;

beforeAll(async () => {
  tmp = makeTmp("diff");
  const scen = (name: string, json: object) => {
    const f = path.join(tmp!, `${name}.json`);
    fs.writeFileSync(f, JSON.stringify(json));
    return f;
  };
  const twoScenario = scen("two", TWO_CHUNKS);
  const testKho = scen("test-kho", TEST_KHO);
  // The real kernel-a runs while the others are made in this process.
  const real = makeHandoff(path.join(tmp, "s1"), ["--scenario", testKho, "--seed", "1"]);
  s1again = await writeHandoffInProcess(path.join(tmp, "s1-again"), testKho, 1);
  s2 = await writeHandoffInProcess(path.join(tmp, "s2"), testKho, 2);
  two = await writeHandoffInProcess(path.join(tmp, "two"), twoScenario, 42);
  small = await writeHandoffInProcess(path.join(tmp, "small"), scen("small", SMALL), 42);
  s1 = await real;
});

afterAll(() => removeTmp(tmp));

function need<T>(x: T | undefined): T {
  if (x === undefined) throw new Error("beforeAll failed");
  return x;
}

async function diffJson(...args: string[]): Promise<{ code: number; json: DiffJson }> {
  const r = await runDiff([...args, "--json"], { progress: false, color: false });
  return { code: r.code, json: JSON.parse(r.stdout) as DiffJson };
}

function runCli(args: string[]) {
  return runKernelAsync(DIFF, args);
}

/** A copy of @h's directory named @name, memory.img kept sparse and its extents file current. */
function copyOf(h: Handoff, name: string): string {
  return copyHandoffSparse(h.dir, path.join(need(tmp), name));
}

const BASE = 0x4000_0000;

describe("identical handoffs", () => {
  test("a byte-identical copy: exit 0, 'identical', plain text when piped, nothing on stderr", async () => {
    const copy = copyOf(need(s1), "s1-copy");
    const r = await runCli([need(s1).dir, copy]);
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^identical \(exit 0\)$/m);
    expect(r.stdout).not.toContain("\x1b[");
  });

  test("two kernel-a runs with the same seed are identical (the real process and its code in process)", async () => {
    // Every file byte for byte, so the in-process handoffs of this file are what kernel-a writes.
    for (const f of ["boot.dtb", "kho.dtb", "report.json", "memory.img.extents"]) {
      expect(fs.readFileSync(path.join(need(s1again).dir, f)).equals(fs.readFileSync(path.join(need(s1).dir, f))), f).toBe(true);
    }
    expect(fs.statSync(path.join(need(s1again).dir, "memory.img")).size).toBe(fs.statSync(path.join(need(s1).dir, "memory.img")).size);
    const { code, json } = await diffJson(need(s1).dir, need(s1again).dir);
    expect(code).toBe(0);
    expect(json.identical).toBe(true);
    expect(json.files).toEqual({ "memory.img": true, "boot.dtb": true, "kho.dtb": true });
    expect(json.pages.changed).toBe(0);
    expect(json.pages.holesSkipped).toBe(true);
    // Only what was written is read: a few MiB of a 1 GiB image.
    expect(Number(json.pages.compared)).toBeLessThan(64 << 20);
  });

  test("memory.img files with boot.dtb beside them, or given with --a-boot/--b-boot", async () => {
    const h = need(two);
    const other = path.join(need(tmp), "renamed");
    fs.mkdirSync(other);
    execFileSync("cp", ["--sparse=always", path.join(h.dir, "memory.img"), path.join(other, "ram.bin")]);
    fs.copyFileSync(path.join(h.dir, "boot.dtb"), path.join(other, "machine.dtb"));
    const r = await runDiff([path.join(h.dir, "memory.img"), path.join(other, "ram.bin"), "--b-boot", path.join(other, "machine.dtb")], { progress: false });
    // No kho.dtb beside ram.bin: the KHO FDT in the image is diffed, and it is the same.
    expect(r.stdout).toMatch(/fdt kho\s+identical/);
    expect(r.stdout).toMatch(/memory\.img identical, boot\.dtb identical, kho\.dtb differs/);
    expect(r.code).toBe(1);
  });
});

describe("different handoffs", () => {
  test("seeds 1 and 2: exit 1, the JSON names the differing ranges, the human output too", async () => {
    const r = await runCli([need(s1).dir, need(s2).dir, "--json"]);
    expect(r.status).toBe(1);
    expect(r.stderr).toBe("");
    const json = JSON.parse(r.stdout) as DiffJson;
    expect(json.schema).toBe("khosim-diff/1");
    expect(json.identical).toBe(false);
    expect(json.files["memory.img"]).toBe(false);
    expect(json.pages.changed).toBeGreaterThan(0);
    const rg = json.ranges;
    const named = [...rg.added, ...rg.removed, ...rg.dataChanged.map((d) => d.a), ...rg.resized.map((d) => d.a)];
    expect(named.length).toBeGreaterThan(0);
    expect(rg.counts.added + rg.counts.removed + rg.counts.dataChanged + rg.counts.resized).toBe(named.length);
    // Every named range is one of A's or B's preserved ranges.
    const all = new Set([...need(s1).report.ranges, ...need(s2).report.ranges].map((x) => `${x.start}/${x.size}`));
    for (const x of named) expect(all.has(`${x.start}/${x.size}`)).toBe(true);
    // Every run of changed pages is labelled on both sides.
    const pages = json.pages.runs.reduce((n, x) => n + x.pages, 0);
    expect(pages).toBe(json.pages.changed);

    const human = await runDiff([need(s1).dir, need(s2).dir], { progress: false, color: false });
    expect(human.code).toBe(1);
    for (const x of named) expect(human.stdout).toContain(x.start);
    expect(human.stdout).toMatch(/^different \(exit 1\)$/m);
  });

  test("one flipped byte in a preserved folio: exactly one changed page, preserved with its order", async () => {
    const h = need(two);
    const folio = h.report.ranges.find((x) => x.data === "0x100" && x.size === "0x1000");
    if (!folio) throw new Error("no single order-0 folio range in the handoff");
    const copy = copyOf(h, "flip");
    const off = Number(folio.start) - BASE + 123;
    const old = readFileAt(path.join(copy, "memory.img"), off, 1)[0]!;
    patchImage(copy, off, new Uint8Array([old ^ 0x40]));
    const { code, json } = await diffJson(h.dir, copy);
    expect(code).toBe(1);
    expect(json.pages.changed).toBe(1);
    expect(json.pages.runs).toHaveLength(1);
    const run = json.pages.runs[0]!;
    expect(run).toMatchObject({ start: folio.start, pages: 1 });
    expect(run.a).toMatchObject({ kind: "preserved", order: 0, label: "order-0 folios", data: "0x100" });
    expect(run.b).toEqual(run.a);
    expect(json.ranges.dataChanged).toEqual([
      expect.objectContaining({ start: folio.start, size: "0x1000", dataField: false, changedPages: 1 }),
    ]);
    expect(json.ranges.counts).toMatchObject({ added: 0, removed: 0, resized: 0, dataChanged: 1 });
    expect(json.fdt).toEqual({ kho: [], boot: [] });
    expect(json.files).toEqual({ "memory.img": false, "boot.dtb": true, "kho.dtb": true });
  });

  test("the same flip found by reading the whole images (--read-all)", async () => {
    const h = need(two);
    const a = await diffJson(h.dir, path.join(need(tmp), "flip"));
    const b = await diffJson(h.dir, path.join(need(tmp), "flip"), "--read-all");
    expect(b.json.pages.holesSkipped).toBe(false);
    expect(b.json.pages.compared).toBe(h.report.machine.ram);
    expect({ ...b.json.pages, holesSkipped: true, compared: "" }).toEqual({ ...a.json.pages, compared: "" });
  });

  test("the same diff from the images' extents files and, without them, from whole images with zero pages as holes", async () => {
    // Directories of symlinks: the same files, no memory.img.extents beside them.
    const bare = (h: Handoff, name: string): string => {
      const d = path.join(need(tmp), name);
      fs.mkdirSync(d);
      for (const f of ["memory.img", "boot.dtb", "kho.dtb"]) fs.symlinkSync(path.join(h.dir, f), path.join(d, f));
      return d;
    };
    const withFiles = await diffJson(need(s1).dir, need(s2).dir);
    const without = await diffJson(bare(need(s1), "bare-s1"), bare(need(s2), "bare-s2"));
    expect(without.code).toBe(withFiles.code);
    expect({ ...without.json, a: "", b: "" }).toEqual({ ...withFiles.json, a: "", b: "" });
    // The extents files were used: what was compared is the union of the extents they record.
    const recorded = (h: Handoff) => (readJson(path.join(h.dir, "memory.img.extents")) as { extents: number[] }).extents;
    const spans = [recorded(need(s1)), recorded(need(s2))].flatMap((x) => x.flatMap((v, i) => (i % 2 ? [] : [[v, x[i + 1]!] as const])));
    spans.sort((p, q) => p[0] - q[0]);
    let union = 0;
    let end = 0;
    for (const [a, b] of spans) {
      if (b <= end) continue;
      union += b - Math.max(a, end);
      end = b;
    }
    expect(Number(withFiles.json.pages.compared)).toBe(union);
  });

  test("a chunk relinked (next changed) is reported as relinked, with the chunk page decoded", async () => {
    const h = need(two);
    expect(h.report.chunks.length).toBe(2);
    const [c0, c1] = h.report.chunks.map(Number) as [number, number];
    const copy = copyOf(h, "relink");
    // Point chunk 0 at the first page of RAM: a zero page, so an empty chunk that ends the list.
    patchImage(copy, c0 - BASE, u64le(BASE));
    const { code, json } = await diffJson(h.dir, copy);
    expect(code).toBe(1);
    const hx = (n: number) => "0x" + n.toString(16);
    expect(json.chunks.relinked).toEqual([
      { addr: hx(c0), a: expect.objectContaining({ index: 0, next: hx(c1) }), b: expect.objectContaining({ index: 0, next: hx(BASE) }) },
    ]);
    expect(json.chunks.removed.map((c) => c.addr)).toEqual([hx(c1)]);
    expect(json.chunks.added.map((c) => [c.addr, c.index])).toEqual([[hx(BASE), 1]]);
    // The ranges of chunk 1 are gone on B.
    expect(json.ranges.counts.removed).toBe(h.report.ranges.length - 170);
    // One changed page: chunk 0, its next field.
    expect(json.pages.changed).toBe(1);
    const run = json.pages.runs[0]!;
    expect(run.a).toMatchObject({ kind: "chunk", label: "chunk 0" });
    expect(run.chunk).toMatchObject({ addr: hx(c0), header: ["next"], entriesChanged: 0, a: { next: hx(c1) }, b: { next: hx(BASE) } });
    const human = await runDiff([h.dir, copy], { progress: false, color: false });
    expect(human.stdout).toContain(`relinked ${hx(c0)}`);
  });

  test("a chunk the walk refuses: named as a problem, its page still decoded as that chunk", async () => {
    const h = need(two);
    const c1 = Number(h.report.chunks[1]);
    const copy = copyOf(h, "num-ranges");
    patchImage(copy, c1 - BASE + 8, u64le(171));
    const { code, json } = await diffJson(h.dir, copy);
    expect(code).toBe(1);
    expect(json.problems.a).toEqual([]);
    expect(json.problems.b).toEqual([expect.stringMatching(/^chunk list: chunk 1 at 0x[0-9a-f]+: num_ranges .* more than 170$/)]);
    expect(json.ranges.counts).toMatchObject({ removed: h.report.ranges.length, added: 0 });
    expect(json.pages.runs).toEqual([
      expect.objectContaining({
        pages: 1,
        a: { kind: "chunk", label: "chunk 1", index: 1 },
        b: { kind: "chunk", label: "chunk 1 (not walked)", index: 1 },
        chunk: expect.objectContaining({ header: ["num_ranges"], b: expect.objectContaining({ numRanges: "0xab" }) }),
      }),
    ]);
  });

  test("an FDT property changed: the structural diff names /preserved-memory/metadata", async () => {
    const h = need(two);
    const copy = copyOf(h, "fdt");
    const file = path.join(copy, "kho.dtb");
    const blob = fs.readFileSync(file);
    const at = blob.indexOf(u64le(BigInt(h.report.metadata)));
    expect(at).toBeGreaterThan(0);
    patchFile(file, at, u64le(BigInt(h.report.metadata) + 0x1000n));
    const { code, json } = await diffJson(h.dir, copy);
    expect(code).toBe(1);
    expect(json.files).toEqual({ "memory.img": true, "boot.dtb": true, "kho.dtb": false });
    expect(json.fdt.boot).toEqual([]);
    expect(json.fdt.kho).toEqual([expect.objectContaining({ change: "prop-changed", path: "/preserved-memory/metadata" })]);
    const human = await runDiff([h.dir, copy], { progress: false, color: false });
    expect(human.stdout).toMatch(/~ \/preserved-memory\/metadata = <0x[0-9a-f]+ 0x00> -> <0x[0-9a-f]+ 0x00>/);
  });

  test("images of different RAM sizes are diffed over the common part: exit 1, the sizes reported", async () => {
    const { code, json } = await diffJson(need(two).dir, need(small).dir);
    expect(code).toBe(1);
    expect(json.pages.sizeDiff).toMatchObject({ a: "0x8000000", b: "0x6000000", longer: "a" });
    // Both machines wrote only their low memory: nothing past 96 MiB.
    expect(json.pages.sizeDiff!.dataPastEnd).toBe("0x0");
    expect(json.fdt.boot.map((c) => c.path)).toContain("/memory@40000000/reg");
  });
});

describe("the same image read with another boot.dtb", () => {
  test("B is decoded from its own boot.dtb, not taken from A's decoding: its KHO data problem is named", async () => {
    // What `corrupt --fault boot-kho-fdt-outside-ram` writes (its CLI is tested in corrupt.test.ts): boot.dtb edited, memory.img as it was.
    const bad = copyOf(need(s1), "s1-boot-kho-fdt-outside-ram");
    const applied = applyFault(bad, findFault("boot-kho-fdt-outside-ram")!, 1);
    expect(applied.details.map((d) => d.file)).toEqual(["boot.dtb"]);
    const { code, json } = await diffJson(need(s1).dir, bad);
    expect(code).toBe(1);
    expect(json.files["memory.img"]).toBe(true);
    expect(json.files["boot.dtb"]).toBe(false);
    expect(json.problems.a).toEqual([]);
    expect(json.problems.b.join("\n")).toMatch(/^KHO data: /);
    expect(json.format.b).toBeNull();
    expect(json.ranges.b).toBe(0);
    expect(json.ranges.a).toBeGreaterThan(0);
  });
});

describe("bad input: exit 2, one line, no stack", () => {
  test("a missing directory", async () => {
    const r = await runCli([need(s1).dir, path.join(need(tmp), "nope")]);
    expect(r.status).toBe(2);
    expect(r.stdout).toBe("");
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    expect(r.stderr).toMatch(/^diff: .*nope: no such file or directory$/m);
    expect(stackLines(r.stderr)).toEqual([]);
  });

  test("an image whose size is not its RAM size, a missing successor.json, a usage error", async () => {
    const short = copyOf(need(two), "short");
    fs.truncateSync(path.join(short, "memory.img"), 4096);
    // In process: the error diff.ts prints as its one line (runMain: "diff: MESSAGE"), exit 2 by runMain's
    // rule (a CliError's code, else diff's classify), as the real process does for the missing directory above.
    const oneLine = async (args: string[]): Promise<string> => {
      let err: unknown;
      await runDiff(args, { progress: false }).then(
        () => undefined,
        (e: unknown) => (err = e),
      );
      expect(err, args.join(" ")).toBeInstanceOf(Error);
      expect(err instanceof CliError ? err.code : classify(err), (err as Error).message).toBe(2);
      const msg = (err as Error).message;
      expect(msg).not.toContain("\n");
      return msg;
    };
    expect(await oneLine([need(two).dir, short])).toMatch(/does not match RAM size/);
    expect(await oneLine(["--successor", need(two).dir])).toMatch(/successor\.json: no such file/);
    // A usage error (one handoff, no --kernel) in a real process: commander's one line, exit 2.
    const c = await runCli([need(two).dir]);
    expect(c.status).toBe(2);
    expect(c.stderr.trim().split("\n")).toHaveLength(1);
    expect(stackLines(c.stderr)).toEqual([]);
  });
});

describe("--successor", () => {
  beforeAll(async () => {
    const dir = copyHandoffSparse(need(two).dir, path.join(need(tmp), "revived"));
    const b = await runB(["--in", dir]);
    if (b.status !== 0) throw new Error(`kernel-b exited ${b.status}: ${b.stderr}`);
    revived = dir;
  });

  test("kernel-b revived everything: reserved exactly the walked ranges, freed the chunks, exit 0", async () => {
    const h = need(two);
    const r = await runDiff(["--successor", need(revived), "--json"], { progress: false });
    const j = JSON.parse(r.stdout) as SuccessorDiffJson;
    expect(r.code).toBe(0);
    expect(j.ok).toBe(true);
    expect(j.reserved).toMatchObject({ ranges: h.report.ranges.length, exact: true, counts: { missing: 0, extra: 0, differ: 0 } });
    expect(j.freed).toMatchObject({ chunkPages: 2, chunksMatchWalk: true, chunksInReserved: [] });
    expect(j.restored.complete).toBe(true);
    expect(j.restored.folios.expected).toBe(h.report.stats.folios);
    expect(j.predecessor).toMatchObject({ rangesMatch: true, chunksMatch: true });
    const human = await runDiff(["--successor", need(revived)], { progress: false, color: false });
    expect(human.stdout).toMatch(/^ok: the successor reserved exactly the walked ranges and restored everything \(exit 0\)$/m);
  });

  test("a successor that missed a range or a folio: exit 1, named", async () => {
    const dir = copyHandoffSparse(need(revived), path.join(need(tmp), "revived-bad"));
    const file = path.join(dir, "successor.json");
    const s = readJson(file);
    const dropped = s.ranges.pop();
    s.restored.folios -= 1;
    fs.writeFileSync(file, JSON.stringify(s));
    // In process: exit 1 of a real diff process is checked by "seeds 1 and 2" above.
    const r = await runDiff(["--successor", dir, "--json"], { progress: false });
    expect(r.code).toBe(1);
    const j = JSON.parse(r.stdout) as SuccessorDiffJson;
    expect(j.ok).toBe(false);
    expect(j.reserved.missing).toEqual([expect.objectContaining({ start: dropped.start, size: dropped.size })]);
    expect(j.restored.complete).toBe(false);
    expect(j.why.join("; ")).toMatch(/1 walked range\(s\) not reserved.*restored/);
  });
});
