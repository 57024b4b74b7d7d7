/* Faults of the chunk list: chunk headers (num_ranges, next) and range entries. */
import { KHOSER_CHUNK_HDR_NEXT, KHOSER_CHUNK_HDR_NUM_RANGES, KHOSER_RANGES_PER_CHUNK, PAGE_SIZE } from "@khosim/shared/abi";
import { hex } from "@khosim/shared/lib";
import { type KhoMemRange } from "@khosim/shared/kho";
import type { FaultContext, RangeLoc } from "./context.js";
import { NO_KHO, unitOf, type Fault, type FaultResult } from "./fault.js";

/** A chunk-list range fault: pick an eligible range, set one field, name it in the reason. */
function rangeFault(
  ctx: FaultContext,
  field: "start" | "size" | "data",
  value: (loc: RangeLoc, prev: KhoMemRange | undefined) => bigint | number | undefined,
): FaultResult {
  const { locs } = ctx.walk();
  const eligible = locs.filter((l) => value(l, locs[l.index - 1]?.range) !== undefined);
  const loc = ctx.pick(eligible, "range this fault can be applied to");
  const v = value(loc, locs[loc.index - 1]?.range)!;
  const off = ctx.setRangeField(loc, field, v);
  return { reasonIncludes: [`chunk ${loc.chunkIndex} at ${hex(loc.chunkPhys)}`, `ranges[${loc.entry}].${field} at +${hex(off)} is ${hex(BigInt(v))}`] };
}

/** A chunk header fault on chunk @ci: set @field to @v. */
function chunkHeaderFault(ctx: FaultContext, ci: number, field: "next" | "num_ranges", v: bigint | number): FaultResult {
  const { chunks } = ctx.walk();
  const phys = chunks[ci]!;
  const off = field === "next" ? KHOSER_CHUNK_HDR_NEXT : KHOSER_CHUNK_HDR_NUM_RANGES;
  ctx.writeU64(phys + off, v, `chunk ${ci} ${field}`);
  return { reasonIncludes: [`chunk ${ci} at ${hex(phys)}`, `${field} at +${hex(off)} is ${hex(BigInt(v))}`] };
}

/** A chunk picked by the seed. */
function pickChunk(ctx: FaultContext): number {
  const { chunks } = ctx.walk();
  ctx.need(chunks.length > 0, "nothing was preserved (metadata is 0): there is no chunk to damage");
  return ctx.rng.below(chunks.length);
}


export const CHUNK_FAULTS: readonly Fault[] = [
  {
    kind: "chunk-num-ranges-171",
    group: "chunk-list",
    description: `a chunk's num_ranges set to ${KHOSER_RANGES_PER_CHUNK + 1}, one more than a page holds`,
    expect: NO_KHO(["chunk list: chunk", "num_ranges at +0x8 is 0xab", `more than ${KHOSER_RANGES_PER_CHUNK}`]),
    apply: (ctx: FaultContext) => chunkHeaderFault(ctx, pickChunk(ctx), "num_ranges", KHOSER_RANGES_PER_CHUNK + 1),
  },
  {
    kind: "chunk-num-ranges-2p63",
    group: "chunk-list",
    description: "a chunk's num_ranges set to 2^63 (a loop bound nobody checked would never end)",
    expect: NO_KHO(["chunk list: chunk", "num_ranges at +0x8 is 0x8000000000000000"]),
    apply: (ctx: FaultContext) => chunkHeaderFault(ctx, pickChunk(ctx), "num_ranges", 1n << 63n),
  },
  {
    kind: "chunk-next-self",
    group: "chunk-list",
    description: "a chunk's next pointing at itself (a one-chunk cycle)",
    expect: NO_KHO(["chunk list: chunk", "next at +0x0", "(cycle)"]),
    apply(ctx: FaultContext) {
      const ci = pickChunk(ctx);
      const r = chunkHeaderFault(ctx, ci, "next", ctx.walk().chunks[ci]!);
      return { reasonIncludes: [...r.reasonIncludes!, `that is chunk ${ci} again`] };
    },
  },
  {
    kind: "chunk-next-earlier",
    group: "chunk-list",
    description: "a later chunk's next pointing back at an earlier chunk (needs 2 or more chunks)",
    expect: NO_KHO(["chunk list: chunk", "next at +0x0", "(cycle)"]),
    apply(ctx: FaultContext) {
      const { chunks } = ctx.walk();
      ctx.need(chunks.length >= 2, `needs at least 2 chunks; the input has ${chunks.length} (use e.g. scenarios/chunk-boundary-171.json)`);
      const ci = 1 + ctx.rng.below(chunks.length - 1);
      const to = ctx.rng.below(ci);
      const r = chunkHeaderFault(ctx, ci, "next", chunks[to]!);
      return { reasonIncludes: [...r.reasonIncludes!, `that is chunk ${to} again`] };
    },
  },
  {
    kind: "chunk-next-outside-ram",
    group: "chunk-list",
    description: "a chunk's next set to the first page past the end of RAM",
    expect: NO_KHO(["chunk list: chunk", "next at +0x0", "page is outside RAM"]),
    apply: (ctx: FaultContext) => chunkHeaderFault(ctx, pickChunk(ctx), "next", ctx.ramEnd),
  },
  {
    kind: "chunk-next-unaligned",
    group: "chunk-list",
    description: "a chunk's next set to an address 0x800 into a page",
    expect: NO_KHO(["chunk list: chunk", "next at +0x0", "address is not page aligned"]),
    apply(ctx: FaultContext) {
      const ci = pickChunk(ctx);
      const { chunks } = ctx.walk();
      const target = (chunks[ci + 1] ?? chunks[ci]!) + 0x800;
      return chunkHeaderFault(ctx, ci, "next", target);
    },
  },
  {
    kind: "range-outside-ram",
    group: "chunk-list",
    description: "a range's start moved to the end of RAM",
    expect: NO_KHO(["chunk list: chunk", "outside RAM"]),
    apply: (ctx: FaultContext) => rangeFault(ctx, "start", () => ctx.ramEnd),
  },
  {
    kind: "range-size-zero",
    group: "chunk-list",
    description: "a range's size set to 0",
    expect: NO_KHO(["chunk list: chunk", "empty range"]),
    apply: (ctx: FaultContext) => rangeFault(ctx, "size", () => 0),
  },
  {
    kind: "range-overflow",
    group: "chunk-list",
    description: "a range's size set to 2^64 - 0x1000, so that start + size passes 2^64",
    expect: NO_KHO(["chunk list: chunk", "overflows u64"]),
    apply: (ctx: FaultContext) => rangeFault(ctx, "size", () => (1n << 64n) - BigInt(PAGE_SIZE)),
  },
  {
    kind: "range-overlap",
    group: "chunk-list",
    description: "a range's start moved back inside the previous range (kept aligned to its folio size)",
    expect: NO_KHO(["chunk list: chunk", "overlaps previous range"]),
    apply: (ctx: FaultContext) =>
      rangeFault(ctx, "start", (l, prev) => {
        if (!prev) return undefined;
        const u = unitOf(l.range);
        const st = Math.floor((prev.start + prev.size - 1) / u) * u;
        return st >= prev.start ? st : undefined;
      }),
  },
  {
    kind: "range-out-of-order",
    group: "chunk-list",
    description: "a range's start moved below the previous range's start",
    expect: NO_KHO(["chunk list: chunk", "out of order"]),
    apply: (ctx: FaultContext) =>
      rangeFault(ctx, "start", (l, prev) => {
        if (!prev) return undefined;
        const u = unitOf(l.range);
        const st = Math.floor((prev.start - 1) / u) * u;
        return st >= ctx.ramBase ? st : undefined;
      }),
  },
  {
    kind: "range-in-scratch",
    group: "chunk-list",
    description: "a range's start moved to the start of a scratch area",
    expect: NO_KHO(["chunk list: chunk", "overlaps scratch"]),
    apply(ctx: FaultContext) {
      const areas = ctx.scratchArray().areas;
      let hit: { addr: number; size: number } | undefined;
      const r = rangeFault(ctx, "start", (l, prev) => {
        const s = areas.find((a) => a.addr % unitOf(l.range) === 0 && a.addr >= (prev ? prev.start + prev.size : 0) && a.addr + l.range.size <= ctx.ramEnd);
        hit = s;
        return s?.addr;
      });
      return { reasonIncludes: [...r.reasonIncludes!, `overlaps scratch [${hex(hit!.addr)}, ${hex(hit!.addr + hit!.size)})`] };
    },
  },
  {
    kind: "range-unaligned",
    group: "chunk-list",
    description: "a range's start moved 0x10 bytes off its page boundary",
    expect: NO_KHO(["chunk list: chunk", "not page aligned"]),
    apply: (ctx: FaultContext) => rangeFault(ctx, "start", (l) => l.range.start + 0x10),
  },
  {
    kind: "range-bad-data",
    group: "chunk-list",
    description: "a range's data given bit 9 (0x200), outside KHO_DATA_FOLIO | order",
    expect: NO_KHO(["chunk list: chunk", "KHO_DATA_FOLIO"]),
    apply: (ctx: FaultContext) => rangeFault(ctx, "data", (l) => l.range.data | 0x200),
  },
  {
    kind: "chunk-in-preserved-range",
    group: "chunk-list",
    description: "the first chunk copied into a preserved folio and metadata pointed there (the walk must not free a preserved page)",
    expect: NO_KHO(["chunk list: chunk 0 at", "page lies inside preserved range"]),
    apply(ctx: FaultContext) {
      const { chunks, locs } = ctx.walk();
      ctx.need(chunks.length > 0, "nothing was preserved (metadata is 0)");
      // A kho_test folio: never the page of the KHO FDT or of the kho_test sub-tree.
      const f = ctx.pick(ctx.khoTest().folios, "kho_test folio");
      const l = locs.find((x) => x.range.start <= f.phys && f.phys < x.range.start + x.range.size)!;
      ctx.write(f.phys, ctx.read(chunks[0]!, PAGE_SIZE), `folio ${hex(f.phys)} (order ${f.order}): first page overwritten with chunk 0`);
      ctx.setMetadata(f.phys);
      return { reasonIncludes: [`chunk 0 at ${hex(f.phys)}`, `[${hex(l.range.start)}, ${hex(l.range.start + l.range.size)})`, `range ${l.index}`] };
    },
  },
];
