/* Faults of the boot DTB (/memory, /chosen) and of the kho_scratch array it points at. */
import { BOOT_CHOSEN_PATH, BOOT_KHO_FDT_PROP, BOOT_KHO_SCRATCH_PROP, KHO_SCRATCH_SIZE, PAGE_SIZE } from "@khosim/shared/abi";
import { hex } from "@khosim/shared/lib";
import { type KhoMemRange } from "@khosim/shared/kho";
import type { FaultContext } from "./context.js";
import { NO_KHO, UNUSABLE, type Fault, type FaultResult } from "./fault.js";

function setBootPropAddr(ctx: FaultContext, prop: string, v: bigint | number): FaultResult {
  const at = ctx.chosenPropOffset(prop);
  ctx.need(at.length === 16, `${BOOT_CHOSEN_PATH}/${prop} is ${at.length} bytes, not 16`);
  ctx.patchBootU64(at.offset, v, `${BOOT_CHOSEN_PATH}/${prop} address`);
  return { reasonIncludes: [`${BOOT_CHOSEN_PATH}/${prop}: [${hex(BigInt(v))}`] };
}

function shortenBootProp(ctx: FaultContext, prop: string): FaultResult {
  ctx.rebuildBootDtb((root) => {
    const chosen = root.children.find((c) => c.name === "chosen")!;
    const p = chosen.props.find((q) => q.name === prop)!;
    p.value = p.value.slice(0, 12);
  }, `${BOOT_CHOSEN_PATH}/${prop} cut to 12 bytes (3 cells)`);
  return {};
}


export const BOOT_FAULTS: readonly Fault[] = [
  {
    kind: "boot-no-memory",
    group: "boot-dtb",
    description: "boot.dtb rebuilt without its /memory node: the machine has no RAM",
    expect: UNUSABLE(["boot.dtb", "/memory", 'no node with device_type = "memory"']),
    apply(ctx: FaultContext) {
      ctx.rebuildBootDtb((root) => {
        root.children = root.children.filter((c) => !c.props.some((p) => p.name === "device_type"));
      }, "/memory node removed");
    },
  },
  {
    kind: "boot-kho-fdt-outside-ram",
    group: "boot-dtb",
    description: "/chosen/linux,kho-fdt address set to the end of RAM",
    expect: NO_KHO([`/chosen/${BOOT_KHO_FDT_PROP}`, "is outside RAM"]),
    apply: (ctx: FaultContext) => setBootPropAddr(ctx, BOOT_KHO_FDT_PROP, ctx.ramEnd),
  },
  {
    kind: "boot-kho-fdt-wrong-length",
    group: "boot-dtb",
    description: "/chosen/linux,kho-fdt cut to 12 bytes (3 cells instead of 2+2)",
    expect: NO_KHO([`/chosen/${BOOT_KHO_FDT_PROP}`, "length 12, expected 16"]),
    apply: (ctx: FaultContext) => shortenBootProp(ctx, BOOT_KHO_FDT_PROP),
  },
  {
    kind: "boot-kho-scratch-outside-ram",
    group: "boot-dtb",
    description: "/chosen/linux,kho-scratch address set to the end of RAM",
    expect: NO_KHO([`/chosen/${BOOT_KHO_SCRATCH_PROP}`, "is outside RAM"]),
    apply: (ctx: FaultContext) => setBootPropAddr(ctx, BOOT_KHO_SCRATCH_PROP, ctx.ramEnd),
  },
  {
    kind: "boot-kho-scratch-wrong-length",
    group: "boot-dtb",
    description: "/chosen/linux,kho-scratch cut to 12 bytes (3 cells instead of 2+2)",
    expect: NO_KHO([`/chosen/${BOOT_KHO_SCRATCH_PROP}`, "length 12, expected 16"]),
    apply: (ctx: FaultContext) => shortenBootProp(ctx, BOOT_KHO_SCRATCH_PROP),
  },
  {
    kind: "scratch-overlaps-preserved",
    group: "boot-dtb",
    description: "the smallest kho_scratch entry (in the image) replaced by a preserved range",
    expect: NO_KHO(["chunk list: chunk", "overlaps scratch"]),
    apply(ctx: FaultContext) {
      const sa = ctx.scratchArray();
      ctx.need(sa.areas.length >= 2, `needs at least 2 scratch areas (one keeps the early allocations); the input has ${sa.areas.length}`);
      const k = ctx.khoFdt();
      const { locs } = ctx.walk();
      const j = sa.areas.reduce((best, a, i) => (a.size < sa.areas[best]!.size ? i : best), 0);
      const holds = (r: KhoMemRange, a: number, n: number): boolean => a < r.start + r.size && r.start < a + n;
      const l = ctx.pick(
        locs.filter((x) => !holds(x.range, k.addr, k.size) && !holds(x.range, sa.phys, sa.areas.length * KHO_SCRATCH_SIZE)),
        "preserved range clear of the KHO FDT and the scratch array",
      );
      const at = sa.phys + j * KHO_SCRATCH_SIZE;
      ctx.writeU64(at, l.range.start, `kho_scratch[${j}].addr`);
      ctx.writeU64(at + 8, l.range.size, `kho_scratch[${j}].size`);
      const end = l.range.start + l.range.size;
      return {
        reasonIncludes: [`chunk ${l.chunkIndex} at ${hex(l.chunkPhys)}`, `ranges[${l.entry}].start`, `overlaps scratch [${hex(l.range.start)}, ${hex(end)})`],
      };
    },
  },

  {
    kind: "scratch-too-small",
    group: "boot-dtb",
    description: "every kho_scratch entry (in the image) shrunk to one page: no room for the successor's early allocations",
    expect: UNUSABLE(["early allocation of", "KHO scratch memory"]),
    apply(ctx: FaultContext) {
      const sa = ctx.scratchArray();
      sa.areas.forEach((_, j) => ctx.writeU64(sa.phys + j * KHO_SCRATCH_SIZE + 8, PAGE_SIZE, `kho_scratch[${j}].size`));
    },
  },
];
