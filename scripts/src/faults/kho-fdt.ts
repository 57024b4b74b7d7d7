/* Faults of the KHO FDT in the image: its header, structure, nodes and the metadata pointer. */
import { BOOT_CHOSEN_PATH, BOOT_KHO_FDT_PROP, KHOSER_CHUNK_HDR_NUM_RANGES, KHOSER_RANGES_PER_CHUNK, KHO_FDT_MEMORY_NODE, KHO_FDT_MEMORY_PATH, KHO_FDT_METADATA_PROP } from "@khosim/shared/abi";
import { FDT_HDR } from "@khosim/shared/fdt";
import { hex } from "@khosim/shared/lib";
import type { FaultContext } from "./context.js";
import { ALL_FORMATS, NO_KHO, filledFolios, type Fault } from "./fault.js";

export const KHO_FDT_FAULTS: readonly Fault[] = [
  {
    kind: "fdt-bad-magic",
    group: "kho-fdt",
    description: "KHO FDT header magic byte-swapped (0xedfe0dd0)",
    expect: NO_KHO(["KHO FDT at", "FDT_ERR_BADMAGIC at 0x0", "magic 0xedfe0dd0"]),
    apply(ctx: FaultContext) {
      const k = ctx.khoFdt();
      ctx.writeU32be(k.addr + FDT_HDR.magic, 0xedfe0dd0, "KHO FDT header magic");
      return { reasonIncludes: [`KHO FDT at ${hex(k.addr)}`] };
    },
  },
  {
    kind: "fdt-truncated",
    group: "kho-fdt",
    description: "/chosen/linux,kho-fdt size halved: the blob is shorter than its header's totalsize",
    expect: NO_KHO(["FDT_ERR_TRUNCATED at 0x4", "totalsize"]),
    apply(ctx: FaultContext) {
      const k = ctx.khoFdt();
      const at = ctx.chosenPropOffset(BOOT_KHO_FDT_PROP);
      const size = Math.max(40, Math.floor(k.size / 2));
      ctx.patchBootU64(at.offset + 8, size, `${BOOT_CHOSEN_PATH}/${BOOT_KHO_FDT_PROP} size`);
      return { reasonIncludes: [`totalsize ${hex(k.fdt.header.totalsize)} is beyond the ${hex(size)}-byte buffer`] };
    },
  },
  {
    kind: "fdt-totalsize-beyond-blob",
    group: "kho-fdt",
    description: "KHO FDT header totalsize 0x100 past the blob /chosen/linux,kho-fdt describes",
    expect: NO_KHO(["FDT_ERR_TRUNCATED at 0x4", "totalsize"]),
    apply(ctx: FaultContext) {
      const k = ctx.khoFdt();
      const v = k.size + 0x100;
      ctx.writeU32be(k.addr + FDT_HDR.totalsize, v, "KHO FDT header totalsize");
      return { reasonIncludes: [`totalsize ${hex(v)} is beyond the ${hex(k.size)}-byte buffer`] };
    },
  },
  {
    kind: "fdt-nameoff-out-of-range",
    group: "kho-fdt",
    description: "the nameoff of /preserved-memory/metadata set to size_dt_strings (one past the strings block)",
    expect: NO_KHO(["FDT_ERR_BADSTRUCTURE", "outside strings block"]),
    apply(ctx: FaultContext) {
      const k = ctx.khoFdt();
      const at = ctx.khoFdtPropPhys(KHO_FDT_MEMORY_PATH, KHO_FDT_METADATA_PROP);
      const v = k.fdt.header.sizeDtStrings;
      ctx.writeU32be(k.addr + at.tokenOffset + 8, v, `KHO FDT ${KHO_FDT_MEMORY_PATH}/${KHO_FDT_METADATA_PROP} nameoff`);
      return { reasonIncludes: [`at ${hex(at.tokenOffset)}`, `nameoff ${hex(v)}`] };
    },
  },
  {
    kind: "fdt-unterminated-node-name",
    group: "kho-fdt",
    description: "the name of /preserved-memory runs to the end of the structure block without a NUL",
    expect: NO_KHO(["FDT_ERR_TRUNCATED", "node name is not NUL-terminated"]),
    apply(ctx: FaultContext) {
      const k = ctx.khoFdt();
      const h = k.fdt.header;
      const node = k.fdt.pathOffset(KHO_FDT_MEMORY_PATH);
      const nameAt = h.offDtStruct + node + 4;
      const from = nameAt + KHO_FDT_MEMORY_NODE.length;
      const to = h.offDtStruct + h.sizeDtStruct;
      ctx.write(k.addr + from, new Uint8Array(to - from).fill(0x78), `KHO FDT struct block from the NUL of "${KHO_FDT_MEMORY_NODE}" to its end`);
      return { reasonIncludes: [`at ${hex(h.offDtStruct + node)}`] };
    },
  },
  {
    kind: "fdt-no-preserved-memory",
    group: "kho-fdt",
    description: "KHO FDT rebuilt without the /preserved-memory node",
    expect: NO_KHO(["/preserved-memory", "no preserved-memory node"]),
    apply(ctx: FaultContext) {
      ctx.rebuildKhoFdt((root) => {
        root.children = root.children.filter((c) => c.name !== KHO_FDT_MEMORY_NODE);
      }, `${KHO_FDT_MEMORY_PATH} removed`);
    },
  },
  {
    kind: "fdt-metadata-4-bytes",
    group: "kho-fdt",
    description: "KHO FDT rebuilt with /preserved-memory/metadata 4 bytes long (its low half)",
    expect: NO_KHO(["/preserved-memory/metadata", "length 4, expected 8"]),
    apply(ctx: FaultContext) {
      ctx.rebuildKhoFdt((root) => {
        const n = root.children.find((c) => c.name === KHO_FDT_MEMORY_NODE)!;
        const p = n.props.find((q) => q.name === KHO_FDT_METADATA_PROP)!;
        p.value = p.value.slice(0, 4);
      }, `${KHO_FDT_MEMORY_PATH}/${KHO_FDT_METADATA_PROP} cut to 4 bytes`);
    },
  },
  {
    kind: "fdt-metadata-outside-ram",
    group: "kho-fdt",
    description: "metadata (first chunk) set to the first page past the end of RAM",
    expect: NO_KHO(["chunk list: metadata is", "chunk 0 page is outside RAM"]),
    apply(ctx: FaultContext) {
      ctx.setMetadata(ctx.ramEnd);
      return { reasonIncludes: [`metadata is ${hex(ctx.ramEnd)}`] };
    },
  },
  {
    kind: "fdt-metadata-unaligned",
    group: "kho-fdt",
    description: "metadata (first chunk) moved 0x10 bytes off its page boundary",
    expect: NO_KHO(["chunk list: metadata is", "chunk 0 address is not page aligned"]),
    apply(ctx: FaultContext) {
      const m = ctx.khoFdt().kho.metadata;
      ctx.need(m !== 0n, "nothing was preserved (metadata is 0)");
      ctx.setMetadata(m + 0x10n);
      return { reasonIncludes: [`metadata is ${hex(m + 0x10n)}`] };
    },
  },
  {
    kind: "fdt-metadata-in-scratch",
    group: "kho-fdt",
    description: "metadata (first chunk) pointing at the first page of a scratch area",
    expect: NO_KHO(["chunk list: metadata is", "chunk 0 page overlaps scratch"]),
    apply(ctx: FaultContext) {
      const s = ctx.pick(ctx.scratchArray().areas, "scratch area");
      ctx.setMetadata(s.addr);
      return { reasonIncludes: [`metadata is ${hex(s.addr)}`, `scratch [${hex(s.addr)}, ${hex(s.addr + s.size)})`] };
    },
  },
  {
    kind: "fdt-metadata-to-folio",
    group: "kho-fdt",
    description: "metadata (first chunk) pointing at a filled preserved folio: its random bytes are read as a chunk",
    expect: NO_KHO(["chunk list: chunk 0 at"]),
    apply(ctx: FaultContext) {
      const f = ctx.pick(filledFolios(ctx), "filled folio");
      const num = ctx.u64(f.phys + KHOSER_CHUNK_HDR_NUM_RANGES);
      ctx.need(num > BigInt(KHOSER_RANGES_PER_CHUNK), `folio ${hex(f.phys)} happens to hold a plausible num_ranges ${num}; try another --seed`);
      ctx.setMetadata(f.phys);
      return { reasonIncludes: [`chunk 0 at ${hex(f.phys)}`, `num_ranges at +0x8 is ${hex(num)}`] };
    },
  },
  {
    kind: "fdt-compatible-kho-v3",
    group: "kho-fdt",
    formats: ALL_FORMATS,
    description: 'KHO FDT rebuilt with root compatible "kho-v3", as a newer kernel would write: fdt_node_check_compatible() fails in kho_populate()',
    expect: NO_KHO(["/compatible", 'root compatible "kho-v3" is not']),
    apply(ctx: FaultContext) {
      ctx.rebuildKhoFdt((root) => {
        const p = root.props.find((q) => q.name === "compatible")!;
        p.value = new TextEncoder().encode("kho-v3\0");
      }, 'root compatible "kho-v3"');
    },
  },
  {
    kind: "fdt-compatible-missing",
    group: "kho-fdt",
    description: "KHO FDT rebuilt without the root compatible",
    expect: NO_KHO(["/compatible", "missing root compatible"]),
    apply(ctx: FaultContext) {
      ctx.rebuildKhoFdt((root) => {
        root.props = root.props.filter((q) => q.name !== "compatible");
      }, "root compatible removed");
    },
  },
];
