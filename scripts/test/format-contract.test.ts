/*
 * The format contract: what every entry of KHO_FORMATS must do, so that a new
 * format gets all of it by being registered (plus one row in SIZES and one
 * in DAMAGE below, which the first test insists on).
 *
 *  - round trip: tracker -> serialize -> walk gives back the same memory;
 *  - the hand-computed metadata sizes (one page, an aligned 1 GiB range,
 *    171 ranges), a table keyed by format name;
 *  - every rejection class of the shared walk (walk.ts): a metadata pointer
 *    unaligned, outside RAM, in scratch or forming a cycle; a count over its
 *    bound; a block outside RAM, in scratch or overlapping another;
 *  - any single bit flip in metadata: the walk returns blocks inside RAM and
 *    clear of scratch, or throws KhoWalkError, never anything else;
 *  - a handoff per format (mixed.json, in process, by the kernels' code):
 *    the successor detects the format, revives and verifies; one real
 *    two-process handoff (radix, not the default) gives the same bytes;
 *  - byte identity across code changes: for two scenarios and seeds per
 *    format, the digests of memory.img's contents, boot.dtb, kho.dtb,
 *    report.json and successor.json equal the ones pinned in
 *    test/fixtures/golden-digests.json (KHOSIM_GOLDEN_WRITE=1 rewrites that
 *    file and fails the test, so a rewrite is never silent): both in process
 *    by the kernels' code for every format, and mixed.json in radix from the
 *    real processes too.
 */
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { fc, test } from "@khosim/shared/test/fc-prop";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HANDOFF_BOOT_DTB, MAX_PAGE_ORDER, PAGE_SIZE, KHOSER_RANGES_PER_CHUNK, POSTED_RANGES_SIZE, KHOSER_BITMAPS_PER_CHUNK, khoserRangeOffset, khoRadixEncodeKey, khoRadixTableIndex, khoRadixBitmapIndex, KHO_RADIX_ROOT_LEVEL } from "@khosim/shared/abi";
import { OverlayMem, SparseMem, type PageSource, type PhysMem } from "@khosim/shared/mm";
import { DEFAULT_FORMAT, bootSuccessor, parseSuccessorBootDtb, KHO_FORMATS, KhoTrackError, KhoWalkError, type KhoFormat, type KhoFormatName, type KhoTracker, type KhoWalkErrorCode } from "@khosim/shared/kho";
import { baseImageExtents, writeJsonFile } from "@khosim/shared/proc";
import { KERNEL_A, KERNEL_B, ROOT, readJson, runKernel } from "../src/run.js";
import { imageContentDigest, memImageContentDigest, sha256File } from "./handoff-helpers.js";
import { kernelAInProcess } from "./fault-helpers.js";
// The 4 GiB test machine the in-process format tests share.
import { CTX, RAM_BASE, RAM_END, RAM_SIZE, SCRATCH } from "@khosim/shared/test/format-common";
import { thrownBy } from "@khosim/shared/test/thrown";

const P = PAGE_SIZE;
const GiB = 2 ** 30;
/* Metadata comes from low RAM (pages, then contiguous blocks); what is preserved lies above it. */
const META_PAGES = 0x4100_0000;
const META_CONTIG = 0x4200_0000;
/* The damage handoff: an order-0 folio at X and an order-1 folio at X + 2 pages. */
const X = 0x1_0000_0000;

interface Handoff {
  track: KhoTracker;
  mem: SparseMem;
  root: number;
  metadataBytes: number;
  metadataPages: number[];
}

function handoff(f: KhoFormat, fill: (t: KhoTracker) => void): Handoff {
  const track = f.createTracker();
  fill(track);
  const mem = new SparseMem(RAM_BASE, RAM_SIZE);
  let page = META_PAGES;
  let contig = META_CONTIG;
  const s = f.serialize(track, mem, () => (page += P) - P, (n) => (contig += n * P) - n * P);
  return { track, mem, root: s.root, metadataBytes: s.metadataBytes, metadataPages: s.metadataPages };
}

const u64At = (mem: PhysMem, at: number): number => Number(new DataView(mem.read(at, 8).buffer, mem.read(at, 8).byteOffset).getBigUint64(0, true));
const poke64 = (mem: PhysMem, at: number, v: number | bigint): void => {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, BigInt(v), true);
  mem.write(at, b);
};
const poke32 = (mem: PhysMem, at: number, v: number): void => {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, v, true);
  mem.write(at, b);
};
const setBit = (mem: PhysMem, at: number, bit: number): void => {
  const b = mem.read(at + (bit >>> 3), 1);
  mem.write(at + (bit >>> 3), Uint8Array.of(b[0]! | (1 << (bit & 7))));
};

/* ------------------------------------------------------------ per-format data */

/** metadataBytes for: one isolated order-0 page, one aligned 1 GiB phys range, 171 one-page ranges two pages apart. */
const SIZES: Record<KhoFormatName, [number, number, number]> = {
  // One 4 KiB chunk of 170 ranges; the 171st starts a second.
  ranges: [4096, 4096, 2 * 4096],
  // A 98,320-byte chunk per range, each an order-5 kmalloc_large block of 131,072 bytes.
  posted: [131_072, 131_072, 171 * 131_072],
  // A 4 KiB chunk + one 512-byte bitmap (one order-18 bit for 1 GiB; 342 pages fit one bitmap).
  bitmaps: [4096 + 512, 4096 + 512, 4096 + 512],
  // A 4 KiB chunk + one 4 KiB bitmap.
  "bitmaps-page": [8192, 8192, 8192],
  // Root + 4 tables + a leaf, every case on one path.
  radix: [6 * 4096, 6 * 4096, 6 * 4096],
};

/** How to damage a format's metadata (the damage handoff), and the codes the shared walk must then give. */
interface Damage {
  /** Metadata pointer: unaligned, outside RAM, in scratch; the cycle made by cycle(). */
  pointer: [KhoWalkErrorCode, KhoWalkErrorCode, KhoWalkErrorCode, KhoWalkErrorCode];
  /** Make the first metadata object point at itself. */
  cycle(mem: PhysMem, root: number): void;
  /** A count one above its bound, and the code. */
  overCount(mem: PhysMem, root: number): void;
  count: KhoWalkErrorCode;
  /** Blocks: outside RAM, in scratch, overlapping (after overlap()). */
  block: [KhoWalkErrorCode, KhoWalkErrorCode, KhoWalkErrorCode];
  /** Make two preserved blocks overlap (order 0 over the order-1 folio, or ranges[1] moved onto ranges[0]). */
  overlap(mem: PhysMem, root: number): void;
}

const CHUNK: Damage["pointer"] = ["CHUNK_UNALIGNED", "CHUNK_OUTSIDE_RAM", "CHUNK_IN_SCRATCH", "CHUNK_CYCLE"];
const RANGES_BLOCK: Damage["block"] = ["RANGE_OUTSIDE_RAM", "RANGE_IN_SCRATCH", "RANGE_OVERLAP"];
const BITS_BLOCK: Damage["block"] = ["BLOCK_OUTSIDE_RAM", "BLOCK_IN_SCRATCH", "BLOCK_OVERLAP"];
/* ranges[1].start := ranges[0].start (X), wherever ranges[1] lives. */
const rangesOverlap = (second: (mem: PhysMem, root: number) => number) => (mem: PhysMem, root: number) => poke64(mem, second(mem, root), X);
const bitmapsDamage: Damage = {
  pointer: CHUNK,
  cycle: (mem, root) => poke64(mem, root, root),
  overCount: (mem, root) => poke32(mem, root + 12, KHOSER_BITMAPS_PER_CHUNK + 1),
  count: "NUM_ELMS",
  block: BITS_BLOCK,
  // Chunk 0 is order 0 (orders ascend): its bitmaps[0] covers X.
  overlap: (mem, root) => setBit(mem, u64At(mem, root + 24), (X + 2 * P - u64At(mem, root + 16)) / P),
};

const DAMAGE: Record<KhoFormatName, Damage> = {
  ranges: {
    pointer: CHUNK,
    cycle: (mem, root) => poke64(mem, root, root),
    overCount: (mem, root) => poke64(mem, root + 8, KHOSER_RANGES_PER_CHUNK + 1),
    count: "NUM_RANGES",
    block: RANGES_BLOCK,
    overlap: rangesOverlap((_mem, root) => root + khoserRangeOffset(1)),
  },
  posted: {
    pointer: CHUNK,
    cycle: (mem, root) => poke64(mem, root, root),
    overCount: (mem, root) => poke64(mem, root + 8, POSTED_RANGES_SIZE + 1),
    count: "NUM_RANGES",
    block: RANGES_BLOCK,
    // One range per chunk: ranges[1] is chunk 1's ranges[0].
    overlap: rangesOverlap((mem, root) => u64At(mem, root) + khoserRangeOffset(0)),
  },
  bitmaps: bitmapsDamage,
  "bitmaps-page": bitmapsDamage,
  radix: {
    pointer: ["NODE_UNALIGNED", "NODE_OUTSIDE_RAM", "NODE_IN_SCRATCH", "NODE_CYCLE"],
    cycle: (mem, root) => {
      const i = Array.from({ length: 512 }, (_, k) => k).find((k) => u64At(mem, root + 8 * k) !== 0)!;
      poke64(mem, root + 8 * i, root);
    },
    // Root entry 4 would set key bits above the order-0 bit.
    overCount: (mem, root) => poke64(mem, root + 4 * 8, u64At(mem, root + 8 * khoRadixTableIndex(khoRadixEncodeKey(X, 0), KHO_RADIX_ROOT_LEVEL))),
    count: "KEY_WIDTH",
    block: BITS_BLOCK,
    overlap: (mem, root) => {
      const key = khoRadixEncodeKey(X + 2 * P, 0);
      let node = root;
      for (let level = KHO_RADIX_ROOT_LEVEL; level >= 1; level--) node = u64At(mem, node + 8 * khoRadixTableIndex(key, level));
      setBit(mem, node, khoRadixBitmapIndex(key));
    },
  },
};

/* ------------------------------------------------------------------ the suite */

function walkError(f: KhoFormat, mem: PhysMem, root: number | bigint, ctx = CTX): KhoWalkError {
  const e = thrownBy(KhoWalkError, () => f.walk(mem, BigInt(root), ctx));
  expect(e.message).not.toContain("\n");
  return e;
}

const damageHandoff = (f: KhoFormat): Handoff =>
  handoff(f, (t) => {
    t.khoPreserveFolio(X, 0);
    t.khoPreserveFolio(X + 2 * P, 1);
  });

it("every registered format has its sizes and damage rows", () => {
  for (const f of KHO_FORMATS) {
    expect(SIZES[f.name], f.name).toBeDefined();
    expect(DAMAGE[f.name], f.name).toBeDefined();
  }
});

describe.each(KHO_FORMATS.map((f) => [f.name, f] as const))("%s", (name, f) => {
  const dmg = DAMAGE[name];

  it("metadata sizes: one page, an aligned 1 GiB range, 171 ranges", () => {
    const got = [
      handoff(f, (t) => t.khoPreserveFolio(X, 0)),
      handoff(f, (t) => t.khoPreservePhys(2 * GiB, GiB)),
      handoff(f, (t) => {
        for (let i = 0; i < 171; i++) t.khoPreservePhys(X + 2 * i * P, P);
      }),
    ];
    expect(got.map((h) => h.metadataBytes)).toEqual(SIZES[name]);
    // Every case walks back to what was preserved.
    for (const h of got) expect(f.walk(h.mem, BigInt(h.root), CTX).ranges).toEqual([...h.track.ranges()]);
  });

  const op = fc.oneof(
    fc.record({ kind: fc.constant("folio" as const), page: fc.nat(4095), order: fc.nat(10) }),
    fc.record({ kind: fc.constant("phys" as const), page: fc.nat(4095), pages: fc.integer({ min: 1, max: 700 }) }),
    fc.record({ kind: fc.constant("unpreserve" as const), page: fc.nat(4095), pages: fc.integer({ min: 1, max: 30 }) }),
  );
  test.prop([fc.array(op, { maxLength: 40 })], { numRuns: 40 })("round trip: walk(serialize(tracker)) is the tracker's memory", (ops) => {
    const h = handoff(f, (t) => {
      for (const o of ops) {
        try {
          if (o.kind === "folio") t.khoPreserveFolio(X + Math.floor(o.page / 2 ** o.order) * 2 ** o.order * P, o.order);
          else if (o.kind === "phys") t.khoPreservePhys(X + o.page * P, o.pages * P);
          else t.khoUnpreserve(X + o.page * P, o.pages * P);
        } catch (e) {
          if (!(e instanceof KhoTrackError)) throw e;
        }
      }
    });
    const w = f.walk(h.mem, BigInt(h.root), CTX);
    expect(w.ranges).toEqual([...h.track.ranges()]);
    let bytes = 0;
    let n = 0;
    w.forEachBlock((_s, size) => {
      bytes += size;
      n++;
    });
    expect(bytes).toBe(h.track.totalBytes);
    expect(n).toBe(w.blockCount);
  });

  it("rejects a metadata pointer that is unaligned, outside RAM, in scratch, or a cycle", () => {
    const h = damageHandoff(f);
    expect(walkError(f, h.mem, h.root + 8).code).toBe(dmg.pointer[0]);
    expect(walkError(f, h.mem, RAM_END).code).toBe(dmg.pointer[1]);
    expect(walkError(f, h.mem, 1n << 53n).code).toBe(dmg.pointer[1]);
    expect(walkError(f, h.mem, SCRATCH.addr).code).toBe(dmg.pointer[2]);
    dmg.cycle(h.mem, h.root);
    expect(walkError(f, h.mem, h.root).code).toBe(dmg.pointer[3]);
  });

  it("rejects a count over its bound", () => {
    const h = damageHandoff(f);
    dmg.overCount(h.mem, h.root);
    const e = walkError(f, h.mem, h.root);
    expect(e.code).toBe(dmg.count);
    expect(e.offset).toBeDefined();
  });

  it("rejects a block outside RAM, in scratch, or overlapping another", () => {
    const h = damageHandoff(f);
    // RAM ends after X's page: the order-1 folio at X + 2 pages lies past it.
    const e0 = walkError(f, h.mem, h.root, { ...CTX, ramSize: X + P - RAM_BASE });
    expect(e0.code).toBe(dmg.block[0]);
    const e1 = walkError(f, h.mem, h.root, { ...CTX, scratch: [SCRATCH, { addr: X + 2 * P, size: P }] });
    expect(e1.code).toBe(dmg.block[1]);
    expect(e1.message).toContain(`overlaps scratch [0x${(X + 2 * P).toString(16)}, `);
    dmg.overlap(h.mem, h.root);
    expect(walkError(f, h.mem, h.root).code).toBe(dmg.block[2]);
  });

  const flip = fc.record({ page: fc.nat(), byte: fc.nat(P - 1), bit: fc.nat(7) });
  /* The damage handoff is serialized once; each run flips its bit in a copy-on-write view of it. */
  let flipBase: Handoff | undefined;
  test.prop([flip], { numRuns: 150 })("any single bit flip: the walk's error or blocks inside RAM and clear of scratch", ({ page, byte, bit }) => {
    flipBase ??= damageHandoff(f);
    const h = flipBase;
    const mem = new OverlayMem(h.mem);
    const at = h.metadataPages[page % h.metadataPages.length]! + byte;
    mem.write(at, Uint8Array.of(mem.read(at, 1)[0]! ^ (1 << bit)));
    expect(mem.touchedPages).toBe(1);
    let w;
    try {
      w = f.walk(mem, BigInt(h.root), CTX);
    } catch (e) {
      expect(e).toBeInstanceOf(KhoWalkError);
      return;
    }
    let blocks = 0;
    w.forEachBlock((s, size) => {
      expect(s >= RAM_BASE && s + size <= RAM_END).toBe(true);
      expect(s < SCRATCH.addr + SCRATCH.size && SCRATCH.addr < s + size).toBe(false);
      blocks++;
    });
    expect(blocks).toBe(w.blockCount);
    // Ranges ascending and disjoint; no metadata page (freed once walked) inside them.
    let prev = RAM_BASE;
    for (const r of w.ranges) {
      expect(r.start).toBeGreaterThanOrEqual(prev);
      prev = r.start + r.size;
      for (const m of w.metadataPages) expect(m + P <= r.start || m >= r.start + r.size).toBe(true);
    }
  });
});

/* Relative to ROOT (the kernels' cwd, and the test's): report.json records the path as given, and the pinned digests must not depend on the clone's location. */
const MIXED = "scenarios/mixed.json";
const BOUNDARY = "scenarios/chunk-boundary-171.json";
const GOLDEN_FILE = path.join(ROOT, "scripts/test/fixtures/golden-digests.json");
const GOLDEN_FILES = ["memory.img", "boot.dtb", "kho.dtb", "report.json", "successor.json"] as const;
type Digests = Record<(typeof GOLDEN_FILES)[number], string>;
type Golden = Record<string, Digests>;
const golden: Golden = fs.existsSync(GOLDEN_FILE) ? (JSON.parse(fs.readFileSync(GOLDEN_FILE, "utf8")) as Golden) : {};
const goldenSeen: Golden = {};

/** Compare the digests @got of the five pinned files under @key with the pinned set. */
function checkGolden(key: string, got: Digests): void {
  goldenSeen[key] = got;
  if (process.env.KHOSIM_GOLDEN_WRITE) return;
  expect(golden[key], `${key}: no pinned digests in ${GOLDEN_FILE}`).toBeDefined();
  for (const f of GOLDEN_FILES) expect(got[f], `${key}: ${f} differs from the pinned bytes`).toBe(golden[key]![f]);
}

/** The digests of the five pinned files of the handoff directory @dir. */
function dirDigests(dir: string): Digests {
  return Object.fromEntries(GOLDEN_FILES.map((f) => [f, f === "memory.img" ? imageContentDigest(path.join(dir, f)) : sha256File(path.join(dir, f))])) as Digests;
}

/**
 * inProcessHandoff - the five pinned files' digests of `kernel-a --scenario
 * @scenario --format @format --seed @seed` then `kernel-b`, made in process by
 * the code the two bundles run: kernel-a's cold boot, workload and finalize
 * (kernelAInProcess), the successor's bootSuccessor on memory.img's bytes
 * (copy-on-write, as kernel-b's OverlayMem), and report.json and
 * successor.json through writeJsonFile, as the kernels write them. memory.img
 * is digested from the pages writeImage() would store. Also returns kernel-a's
 * memory, for the extents check.
 */
async function inProcessHandoff(scenario: string, format: KhoFormatName, seed: number, tmp: string): Promise<{ digests: Digests; mem: PageSource }> {
  const { handoff, report } = await kernelAInProcess(scenario, seed, format);
  const mem = handoff.memory as SparseMem;
  const boot = parseSuccessorBootDtb(handoff.bootDtb!, HANDOFF_BOOT_DTB);
  const sb = bootSuccessor(boot, new OverlayMem(mem), { maxOrder: MAX_PAGE_ORDER, streamRanges: true });
  const jsonDigest = (name: string, value: unknown): string => {
    const file = path.join(tmp, `${format}-${seed}-${name}`);
    writeJsonFile(file, value);
    return sha256File(file);
  };
  const sha = (b: Uint8Array): string => createHash("sha256").update(b).digest("hex");
  return {
    digests: {
      "memory.img": memImageContentDigest(mem),
      "boot.dtb": sha(handoff.bootDtb!),
      "kho.dtb": sha(handoff.khoDtb!),
      "report.json": jsonDigest("report.json", report),
      "successor.json": jsonDigest("successor.json", { ...sb.report, ranges: sb.rangeStream }),
    },
    mem,
  };
}

/** The byte ranges of memory.img that writeImage() writes from @mem: its touched pages, runs merged. */
function writtenExtents(mem: PageSource): { start: number; end: number }[] {
  const out: { start: number; end: number }[] = [];
  for (const [pfn, count] of mem.touchedRuns()) {
    const start = pfn * P - mem.base;
    const last = out[out.length - 1];
    if (last && last.end === start) last.end = start + count * P;
    else out.push({ start, end: start + count * P });
  }
  return out;
}

let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "khosim-contract-"));
});
afterAll(() => {
  fs.rmSync(dir, { recursive: true, force: true });
  if (process.env.KHOSIM_GOLDEN_WRITE) {
    fs.mkdirSync(path.dirname(GOLDEN_FILE), { recursive: true });
    const sorted = Object.fromEntries(Object.keys(goldenSeen).sort().map((k) => [k, goldenSeen[k]]));
    fs.writeFileSync(GOLDEN_FILE, JSON.stringify(sorted, null, 2) + "\n");
    throw new Error(`KHOSIM_GOLDEN_WRITE: wrote ${GOLDEN_FILE}; run again without it`);
  }
});

/*
 * Every format is pinned in process: chunk-boundary-171.json and mixed.json,
 * by the code the bundles run, without two process start-ups per format.
 * The real processes are pinned once below: kernel-a --format radix then
 * kernel-b on mixed.json, whose files must be the in-process run's to the
 * byte.
 */
const inProcessMixed = new Map<KhoFormatName, Promise<Awaited<ReturnType<typeof inProcessHandoff>> & { report: { format: string | null; stats: { folios: number; physRanges: number }; chunks: string[] }; succ: { format: string | null; outcome: string; restored: { folios: number; ranges: number }; chunks: string[] } }>>();
/** mixed.json seed 3 in @format, in process, made once per file (the real handoff compares with it). */
function mixedInProcess(format: KhoFormatName) {
  let p = inProcessMixed.get(format);
  if (!p) {
    p = inProcessHandoff(MIXED, format, 3, dir).then((r) => ({ ...r, report: readJson(path.join(dir, `${format}-3-report.json`)), succ: readJson(path.join(dir, `${format}-3-successor.json`)) }));
    inProcessMixed.set(format, p);
  }
  return p;
}

describe("byte identity in process, by the kernels' own code", () => {
  for (const f of KHO_FORMATS) {
    it(`${f.name}: the same bytes as pinned, for chunk-boundary-171.json seed 11`, async () => {
      checkGolden(`${f.name}/chunk-boundary-171/11`, (await inProcessHandoff(BOUNDARY, f.name, 11, dir)).digests);
    });

    it(`${f.name}: kernel-a --format ${f.name} (mixed.json seed 3), then the successor detects the format, revives and verifies it; the bytes are the pinned ones`, async () => {
      const { digests, report: rep, succ: s } = await mixedInProcess(f.name);
      expect([rep.format, s.format, s.outcome]).toEqual([f.name, f.name, "revived"]);
      expect([s.restored.folios, s.restored.ranges]).toEqual([rep.stats.folios, rep.stats.physRanges]);
      expect(rep.stats.physRanges).toBeGreaterThan(0);
      // The successor walked exactly the metadata objects the predecessor wrote (posted: its 98,320-byte chunks).
      expect(s.chunks).toEqual(rep.chunks);
      checkGolden(`${f.name}/mixed/3`, digests);
    });
  }
});

describe("a real two-process handoff", () => {
  /* Not the default format: kernel-a's --format and kernel-b's detection of the format both count. */
  const f = KHO_FORMATS.find((x) => x.name === "radix")!;
  it(`kernel-a --format ${f.name} (mixed.json), then kernel-b detects the format, revives and verifies it; the files are the pinned bytes, the in-process run's, and the extents file lists exactly the pages written`, { timeout: 120_000 }, async () => {
    expect(f.name).not.toBe(DEFAULT_FORMAT);
    const out = path.join(dir, f.name);
    const a = runKernel(KERNEL_A, ["--out", out, "--scenario", MIXED, "--format", f.name, "--seed", "3"]);
    expect(a.status, a.stderr).toBe(0);
    const b = runKernel(KERNEL_B, ["--in", out]);
    expect(b.status, b.stdout + b.stderr).toBe(0);
    const rep = readJson(path.join(out, "report.json"));
    const s = readJson(path.join(out, "successor.json"));
    expect([rep.format, s.format, s.outcome]).toEqual([f.name, f.name, "revived"]);
    expect([s.restored.folios, s.restored.ranges]).toEqual([rep.stats.folios, rep.stats.physRanges]);
    expect(s.chunks).toEqual(rep.chunks);
    const real = dirDigests(out);
    checkGolden(`${f.name}/mixed/3`, real);
    // The same seed in process, by the same code, gives the same five files, and the extents file is current
    // and lists exactly the pages that run writes.
    const again = await mixedInProcess(f.name);
    expect(again.digests).toEqual(real);
    expect(baseImageExtents(path.join(out, "memory.img")), "memory.img.extents is proven current").toEqual(writtenExtents(again.mem));
  });
});
