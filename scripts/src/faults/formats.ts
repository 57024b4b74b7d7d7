/*
 * Faults of each format's own metadata, and of its root pointer: the
 * degenerate roots (0, unaligned, the wrong length) and one fault per field
 * of every structure (bitmap chunk header and pointers, bitmaps; radix
 * table entries, the key bits a table index carries, leaf bits; the posted
 * chunk's header). Each names the formats it applies to (Fault.formats); the
 * ranges format's own fields are chunks.ts.
 *
 * What the kernels do with a degenerate root (docs/faults.md):
 *  - radix (kho-v2; torvalds/linux 019fc36872374db6fd35e118c9e935374404bfbf,
 *    kernel/liveupdate/kexec_handover.c): kho_populate() takes the map from
 *    kho_get_mem_map_phys(), which returns 0 for a missing property, a
 *    length other than 8, or a value of 0; 0 makes kho_populate() skip
 *    revival ("disabling KHO revival"). khosim: booted without KHO.
 *  - bitmaps (6.16, 00c010e130e58301db2ea0cec1eadc931e1cb8cf; one-page,
 *    a4a508df2aa34f8650afde54ea804321c618f45f; kernel/kexec_handover.c,
 *    kho_mem_deserialize()): a map of 0 is an empty list ("chunk = *mem ?
 *    phys_to_virt(*mem) : NULL"), so nothing is reserved and KHO stays on;
 *    khosim: nothing preserved, so kho_test's restore fails (exit 1).
 *  - ranges and posted (the April 2025 posting, Mike Rapoport, "Re: [PATCH
 *    v5 09/16] kexec: enable KHO support for memory preservation",
 *    kho_mem_deserialize()): as bitmaps, 0 is nothing preserved in khosim
 *    (the posting itself would walk physical address 0 as a chunk).
 *  - Unaligned roots: no kernel checks (phys_to_virt() of any value);
 *    khosim's walk claims every object page aligned and boots without KHO.
 *  - A wrong length: the radix kernel boots without KHO; the bitmaps and
 *    ranges kernels log "failed to get preserved memory bitmaps" and go on
 *    with nothing reserved. khosim boots without KHO for every format,
 *    naming the property (a deliberate difference: the kernel's next step,
 *    restoring folios nothing reserved, cannot succeed either).
 */
import { KHOSER_BM_HDR_NEXT, KHOSER_BM_HDR_NUM_ELMS, KHOSER_BM_HDR_ORDER, KHOSER_BM_PTR_BITMAP, KHOSER_BM_PTR_PHYS_START, KHOSER_BITMAPS_PER_CHUNK, KHOSER_CHUNK_HDR_NUM_RANGES, KHO_RADIX_ROOT_LEVEL, KHO_RADIX_ROOT_MAX_INDEX, POSTED_RANGES_SIZE, PAGE_SIZE } from "@khosim/shared/abi";
import { hex } from "@khosim/shared/lib";
import type { FaultContext } from "./context.js";
import { ALL_FORMATS, NO_KHO, VERIFY_FAILED, type Fault } from "./fault.js";
import { mapFormat, type BitmapChunkMap, type RadixNodeMap } from "./format-map.js";

/* The root pointer: where its 8 bytes are in the image, its value, the property's path. */
function rootOf(ctx: FaultContext): { phys: number; value: bigint; format: string; path: string; name: string } {
  const k = ctx.khoFdt();
  const layout = k.kho.format.fdtLayout;
  const node = layout.mapNode === "" ? "/" : `/${layout.mapNode}`;
  const name = layout.mapProps.find((p) => p.value === undefined)!.name;
  const at = ctx.khoFdtPropPhys(node, name);
  return { phys: at.phys, value: k.kho.metadata, format: k.kho.format.name, path: node === "/" ? `/${name}` : `${node}/${name}`, name };
}

function setRoot(ctx: FaultContext, v: bigint): void {
  const r = rootOf(ctx);
  ctx.fdtTouched = true;
  ctx.writeU64(r.phys, v, `KHO FDT ${r.path}`);
}

function bitmapChunks(ctx: FaultContext): BitmapChunkMap[] {
  const r = rootOf(ctx);
  const m = mapFormat(ctx.image(), r.format, Number(r.value));
  ctx.need(m.kind === "bitmaps" && m.chunks.length > 0, `${r.format} has no bitmap chunks`);
  return m.chunks;
}

function radixNodes(ctx: FaultContext): RadixNodeMap[] {
  const r = rootOf(ctx);
  const m = mapFormat(ctx.image(), r.format, Number(r.value));
  ctx.need(m.kind === "radix" && m.nodes.length > 0, `${r.format} has no radix tree`);
  return m.nodes;
}

const LISTS = ["ranges", "posted", "bitmaps", "bitmaps-page"] as const;
const BITMAPS = ["bitmaps", "bitmaps-page"] as const;
const RADIX = ["radix"] as const;

export const FORMAT_FAULTS: readonly Fault[] = [
  /* ---- degenerate roots ---- */
  {
    kind: "root-zero-nothing-preserved",
    group: "format-root",
    formats: LISTS,
    description: "root pointer set to 0: an empty list, nothing preserved (kho_mem_deserialize: a NULL first chunk), so kho_test's folios cannot be restored",
    expect: VERIFY_FAILED(["verification failure(s)", "kho_test FDT at", "is not in preserved memory"]),
    apply(ctx: FaultContext) {
      ctx.need(rootOf(ctx).value !== 0n, "nothing was preserved (the root is 0 already)");
      setRoot(ctx, 0n);
    },
  },
  {
    kind: "radix-map-zero",
    group: "format-root",
    formats: RADIX,
    description: "preserved-memory-map set to 0: refused as kho_populate() refuses it (kho_get_mem_map_phys() is 0: disabling KHO revival)",
    expect: NO_KHO(["/preserved-memory-map", "is 0: no radix tree root"]),
    apply(ctx: FaultContext) {
      setRoot(ctx, 0n);
    },
  },
  {
    kind: "root-unaligned",
    group: "format-root",
    formats: ALL_FORMATS,
    description: "root pointer moved 0x10 bytes off its page boundary (no kernel checks; khosim refuses the unaligned object)",
    expect: NO_KHO(["address is not page aligned"]),
    apply(ctx: FaultContext) {
      const r = rootOf(ctx);
      ctx.need(r.value !== 0n, "nothing was preserved (the root is 0)");
      setRoot(ctx, r.value + 0x10n);
      return { reasonIncludes: [`${r.name} is ${hex(r.value + 0x10n)}`] };
    },
  },
  {
    kind: "root-4-bytes",
    group: "format-root",
    formats: ALL_FORMATS,
    description: "KHO FDT rebuilt with the root pointer property 4 bytes long (its low half)",
    expect: NO_KHO(["length 4, expected 8"]),
    apply(ctx: FaultContext) {
      const r = rootOf(ctx);
      const layout = ctx.khoFdt().kho.format.fdtLayout;
      ctx.rebuildKhoFdt((root) => {
        const n = layout.mapNode === "" ? root : root.children.find((c) => c.name === layout.mapNode)!;
        const p = n.props.find((q) => q.name === r.name)!;
        p.value = p.value.slice(0, 4);
      }, `${r.path} cut to 4 bytes`);
      return { reasonIncludes: [r.path] };
    },
  },
  /* ---- posted: the chunk header of the 98,320-byte chunk ---- */
  {
    kind: "posted-num-ranges-4097",
    group: "posted",
    formats: ["posted"],
    description: "a posted chunk's num_ranges set to 4097, one more than KHOSER_RANGES_SIZE (4096)",
    expect: NO_KHO(["num_ranges at +0x8 is 0x1001"]),
    apply(ctx: FaultContext) {
      const r = rootOf(ctx);
      const m = mapFormat(ctx.image(), r.format, Number(r.value));
      ctx.need(m.kind === "ranges" && m.chunks.length > 0, "no chunks");
      const c = ctx.pick(m.chunks, "chunk");
      ctx.writeU64(c.phys + KHOSER_CHUNK_HDR_NUM_RANGES, POSTED_RANGES_SIZE + 1, `chunk at ${hex(c.phys)} num_ranges`);
      return { reasonIncludes: [`chunk ${m.chunks.indexOf(c)} at ${hex(c.phys)}`] };
    },
  },
  {
    kind: "posted-next-inside-chunk",
    group: "posted",
    formats: ["posted"],
    description: "a posted chunk's next pointing at its own second page: the next chunk overlaps this one's 25 pages",
    expect: NO_KHO(["overlaps"]),
    apply(ctx: FaultContext) {
      const r = rootOf(ctx);
      const m = mapFormat(ctx.image(), r.format, Number(r.value));
      ctx.need(m.kind === "ranges" && m.chunks.length > 0, "no chunks");
      const c = m.chunks[0]!;
      ctx.writeU64(c.phys, c.phys + PAGE_SIZE, `chunk at ${hex(c.phys)} next`);
    },
  },

  /* ---- bitmaps: chunk header ---- */
  {
    kind: "bm-num-elms-256",
    group: "bitmaps",
    formats: BITMAPS,
    description: `a bitmap chunk's num_elms set to ${KHOSER_BITMAPS_PER_CHUNK + 1}, one more than a page holds`,
    expect: NO_KHO(["num_elms at +0xc is 256, more than 255"]),
    apply(ctx: FaultContext) {
      const cs = bitmapChunks(ctx);
      const c = ctx.pick(cs, "chunk");
      ctx.write(c.phys + KHOSER_BM_HDR_NUM_ELMS, Uint8Array.of(0, 1, 0, 0), `chunk at ${hex(c.phys)} num_elms`);
      return { reasonIncludes: [`chunk ${cs.indexOf(c)} (order ${c.order}) at ${hex(c.phys)}`] };
    },
  },
  {
    kind: "bm-num-elms-2p32m1",
    group: "bitmaps",
    formats: BITMAPS,
    description: "a bitmap chunk's num_elms set to 2^32 - 1 (the kernel's loop would run off the page)",
    expect: NO_KHO(["num_elms at +0xc is 4294967295"]),
    apply(ctx: FaultContext) {
      const c = ctx.pick(bitmapChunks(ctx), "chunk");
      ctx.write(c.phys + KHOSER_BM_HDR_NUM_ELMS, Uint8Array.of(255, 255, 255, 255), `chunk at ${hex(c.phys)} num_elms`);
    },
  },
  {
    kind: "bm-order-53",
    group: "bitmaps",
    formats: BITMAPS,
    description: "a bitmap chunk's order set to 53: blocks of 2^65 bytes",
    expect: NO_KHO(["order at +0x8 is 53, above"]),
    apply(ctx: FaultContext) {
      const c = ctx.pick(bitmapChunks(ctx), "chunk");
      ctx.write(c.phys + KHOSER_BM_HDR_ORDER, Uint8Array.of(53, 0, 0, 0), `chunk at ${hex(c.phys)} order`);
    },
  },
  {
    kind: "bm-next-self",
    group: "bitmaps",
    formats: BITMAPS,
    description: "a bitmap chunk's next pointing at itself (a one-chunk cycle)",
    expect: NO_KHO(["cycle"]),
    apply(ctx: FaultContext) {
      const c = ctx.pick(bitmapChunks(ctx), "chunk");
      ctx.writeU64(c.phys + KHOSER_BM_HDR_NEXT, c.phys, `chunk at ${hex(c.phys)} next`);
    },
  },
  {
    kind: "bm-next-unaligned",
    group: "bitmaps",
    formats: BITMAPS,
    description: "a bitmap chunk's next set to an address 0x800 into its own page",
    expect: NO_KHO(["address is not page aligned"]),
    apply(ctx: FaultContext) {
      const c = ctx.pick(bitmapChunks(ctx), "chunk");
      ctx.writeU64(c.phys + KHOSER_BM_HDR_NEXT, c.phys + 0x800, `chunk at ${hex(c.phys)} next`);
    },
  },
  /* ---- bitmaps: bitmap pointers ---- */
  {
    kind: "bm-bitmap-zero",
    group: "bitmaps",
    formats: BITMAPS,
    description: "a bitmap pointer set to 0 (KHOSER_LOAD_PTR gives NULL: the kernel would dereference it)",
    expect: NO_KHO(["bitmap"]),
    apply(ctx: FaultContext) {
      const c = ctx.pick(bitmapChunks(ctx), "chunk");
      const p = ctx.pick(c.ptrs, "bitmap pointer");
      ctx.writeU64(p.at + KHOSER_BM_PTR_BITMAP, 0, `chunk at ${hex(c.phys)} bitmaps[${c.ptrs.indexOf(p)}].bitmap`);
    },
  },
  {
    kind: "bm-bitmap-unaligned",
    group: "bitmaps",
    formats: BITMAPS,
    description: "a bitmap pointer moved 8 bytes off its object's alignment",
    expect: NO_KHO(["bitmap", "not"]),
    apply(ctx: FaultContext) {
      const c = ctx.pick(bitmapChunks(ctx), "chunk");
      const p = ctx.pick(c.ptrs, "bitmap pointer");
      ctx.writeU64(p.at + KHOSER_BM_PTR_BITMAP, p.bitmap + 8, `chunk at ${hex(c.phys)} bitmaps[${c.ptrs.indexOf(p)}].bitmap`);
    },
  },
  {
    kind: "bm-bitmap-reused",
    group: "bitmaps",
    formats: BITMAPS,
    description: "two bitmap pointers at the same bitmap (needs 2 or more)",
    expect: NO_KHO(["bitmap"]),
    apply(ctx: FaultContext) {
      const all = bitmapChunks(ctx).flatMap((c) => c.ptrs);
      ctx.need(all.length >= 2, "fewer than 2 bitmaps");
      const i = 1 + ctx.rng.below(all.length - 1);
      ctx.writeU64(all[i]!.at + KHOSER_BM_PTR_BITMAP, all[0]!.bitmap, `bitmap pointer ${i} .bitmap`);
    },
  },
  {
    kind: "bm-phys-start-unaligned",
    group: "bitmaps",
    formats: BITMAPS,
    description: "a bitmap pointer's phys_start moved one page: no longer a multiple of what one bitmap covers",
    expect: NO_KHO(["phys_start"]),
    apply(ctx: FaultContext) {
      const c = ctx.pick(bitmapChunks(ctx), "chunk");
      const p = ctx.pick(c.ptrs, "bitmap pointer");
      ctx.writeU64(p.at + KHOSER_BM_PTR_PHYS_START, p.physStart + BigInt(PAGE_SIZE), `chunk at ${hex(c.phys)} bitmaps[${c.ptrs.indexOf(p)}].phys_start`);
    },
  },
  {
    kind: "bm-phys-start-outside-ram",
    group: "bitmaps",
    formats: BITMAPS,
    description: "a bitmap pointer's phys_start set to 2^52, far past RAM",
    expect: NO_KHO(["phys_start", "at or past RAM end"]),
    apply(ctx: FaultContext) {
      const c = ctx.pick(bitmapChunks(ctx), "chunk");
      const p = ctx.pick(c.ptrs, "bitmap pointer");
      ctx.writeU64(p.at + KHOSER_BM_PTR_PHYS_START, 1n << 52n, `chunk at ${hex(c.phys)} bitmaps[${c.ptrs.indexOf(p)}].phys_start`);
    },
  },

  /* ---- bitmaps: the bits ---- */
  {
    kind: "bm-bitmap-cleared",
    group: "bitmaps",
    formats: BITMAPS,
    description: "every bit of one bitmap cleared: its blocks are not reserved, so their folios cannot be restored",
    expect: VERIFY_FAILED(["verification failure(s)", "is not preserved memory"]),
    apply(ctx: FaultContext) {
      const r = rootOf(ctx);
      const m = mapFormat(ctx.image(), r.format, Number(r.value));
      ctx.need(m.kind === "bitmaps" && m.bitmaps.length > 0, "no bitmaps");
      const set = m.bitmaps.filter((b) => ctx.read(b, m.bitmapBytes).some((x) => x !== 0));
      const b = ctx.pick(set, "bitmap with a set bit");
      ctx.write(b, new Uint8Array(m.bitmapBytes), `bitmap at ${hex(b)}: every bit cleared`);
    },
  },

  /* ---- radix: table entries, table indices (key bits), leaves ---- */
  {
    kind: "radix-entry-self",
    group: "radix",
    formats: RADIX,
    description: "a root table entry pointing at the root itself (a cycle)",
    expect: NO_KHO(["cycle"]),
    apply(ctx: FaultContext) {
      const root = radixNodes(ctx)[0]!;
      const e = ctx.pick(root.entries, "root entry");
      ctx.writeU64(root.phys + e.index * 8, root.phys, `level-${KHO_RADIX_ROOT_LEVEL} table at ${hex(root.phys)} table[${e.index}]`);
    },
  },
  {
    kind: "radix-entry-unaligned",
    group: "radix",
    formats: RADIX,
    description: "a table entry moved 0x800 bytes into the page it points at",
    expect: NO_KHO(["address is not page aligned"]),
    apply(ctx: FaultContext) {
      const t = ctx.pick(radixNodes(ctx).filter((n) => n.level > 0), "table");
      const e = ctx.pick(t.entries, "entry");
      ctx.writeU64(t.phys + e.index * 8, e.value + 0x800, `level-${t.level} table at ${hex(t.phys)} table[${e.index}]`);
    },
  },
  {
    kind: "radix-entry-outside-ram",
    group: "radix",
    formats: RADIX,
    description: "a table entry set to the first page past the end of RAM",
    expect: NO_KHO(["outside RAM"]),
    apply(ctx: FaultContext) {
      const t = ctx.pick(radixNodes(ctx).filter((n) => n.level > 0), "table");
      const e = ctx.pick(t.entries, "entry");
      ctx.writeU64(t.phys + e.index * 8, ctx.ramEnd, `level-${t.level} table at ${hex(t.phys)} table[${e.index}]`);
    },
  },
  {
    kind: "radix-entry-shared",
    group: "radix",
    formats: RADIX,
    description: "a free entry of a table pointing at the node its first entry points at: refused as a shared node, or first where the copy's keys decode outside RAM",
    expect: NO_KHO(["radix metadata: "]),
    apply(ctx: FaultContext) {
      const t = radixNodes(ctx).find((n) => n.level > 0 && n.entries.length > 0)!;
      const e = t.entries[0]!;
      const free = [...Array(t.level === KHO_RADIX_ROOT_LEVEL ? KHO_RADIX_ROOT_MAX_INDEX : 512).keys()].filter((i) => !t.entries.some((x) => x.index === i));
      ctx.need(free.length > 0, "no free entry");
      const i = free[ctx.rng.below(free.length)]!;
      ctx.writeU64(t.phys + i * 8, e.value, `level-${t.level} table at ${hex(t.phys)} table[${i}]`);
    },
  },
  {
    kind: "radix-root-index-4",
    group: "radix",
    formats: RADIX,
    description: `a root entry moved to index ${KHO_RADIX_ROOT_MAX_INDEX}: its keys would carry bits above the order-0 bit 52`,
    expect: NO_KHO([`root index ${KHO_RADIX_ROOT_MAX_INDEX} sets key bits above`]),
    apply(ctx: FaultContext) {
      const root = radixNodes(ctx)[0]!;
      const e = ctx.pick(root.entries, "root entry");
      ctx.writeU64(root.phys + e.index * 8, 0, `level-${KHO_RADIX_ROOT_LEVEL} table at ${hex(root.phys)} table[${e.index}]`);
      ctx.writeU64(root.phys + KHO_RADIX_ROOT_MAX_INDEX * 8, e.value, `level-${KHO_RADIX_ROOT_LEVEL} table at ${hex(root.phys)} table[${KHO_RADIX_ROOT_MAX_INDEX}]`);
    },
  },
  {
    kind: "radix-order-bit-moved",
    group: "radix",
    formats: RADIX,
    description: "the order-0 subtree (root index 2, key bit 52) moved to index 3: key bit 51 set too, so its blocks decode at 2^63 and above",
    expect: NO_KHO(["order-0 block", "is not inside RAM"]),
    apply(ctx: FaultContext) {
      const root = radixNodes(ctx)[0]!;
      const e = root.entries.find((x) => x.index === 2);
      ctx.need(e && !root.entries.some((x) => x.index === 3), "no order-0 subtree at root index 2 alone");
      ctx.writeU64(root.phys + 2 * 8, 0, `level-${KHO_RADIX_ROOT_LEVEL} table at ${hex(root.phys)} table[2]`);
      ctx.writeU64(root.phys + 3 * 8, e.value, `level-${KHO_RADIX_ROOT_LEVEL} table at ${hex(root.phys)} table[3]`);
    },
  },
  {
    kind: "radix-leaf-bit-cleared",
    group: "radix",
    formats: RADIX,
    description: "every bit of one leaf cleared: its blocks are not reserved, so their folios cannot be restored",
    expect: VERIFY_FAILED(["verification failure(s)"]),
    apply(ctx: FaultContext) {
      const leaf = ctx.pick(radixNodes(ctx).filter((n) => n.level === 0 && n.bits.length > 0), "leaf");
      ctx.write(leaf.phys, new Uint8Array(PAGE_SIZE), `leaf at ${hex(leaf.phys)}: ${leaf.bits.length} set bits cleared`);
    },
  },
];
