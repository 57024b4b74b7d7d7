/*
 * Faults of a machine with RAM banks and NUMA nodes: the boot DTB's memory
 * nodes (reg, numa-node-id) and the per-node kho_scratch entries. They need
 * a handoff with at least two banks (scenarios/numa-2node.json).
 */
import { BOOT_NUMA_NODE_ID_PROP, KHO_SCRATCH_SIZE, type RamBank } from "@khosim/shared/abi";
import { hex, u64beCells } from "@khosim/shared/lib";
import type { FdtNode } from "@khosim/shared/fdt";
import type { FaultContext } from "./context.js";
import { NO_KHO, UNUSABLE, type Fault, type FaultResult } from "./fault.js";

/* The memory nodes of the boot DTB tree, in order. */
function memoryNodes(root: FdtNode): FdtNode[] {
  return root.children.filter((c) => c.props.some((p) => p.name === "device_type" && new TextDecoder().decode(p.value) === "memory\0"));
}

/* The input's banks; the fault needs two or more. */
function needBanks(ctx: FaultContext): RamBank[] {
  const banks = ctx.boot().banks;
  ctx.need(banks && banks.length >= 2, "needs a boot.dtb with two or more memory nodes (e.g. scenarios/numa-2node.json)");
  return banks;
}

/* Rewrite the reg of memory node @i to <@base @size>. */
function setBankReg(ctx: FaultContext, i: number, base: bigint | number, size: bigint | number, what: string): string {
  let name = "";
  ctx.rebuildBootDtb((root) => {
    const n = memoryNodes(root)[i]!;
    name = n.name;
    n.props.find((p) => p.name === "reg")!.value = u64beCells(base, size);
  }, `memory node ${i} reg: ${what}`);
  return `/${name}/reg`;
}

export const BANK_FAULTS: readonly Fault[] = [
  {
    kind: "bank-overlap",
    group: "boot-dtb",
    description: "the second memory node's reg moved to start inside the first bank (banks must be sorted and disjoint)",
    expect: UNUSABLE(["boot.dtb", "overlaps or precedes the memory node before it"]),
    apply(ctx: FaultContext): FaultResult {
      const b = needBanks(ctx);
      const at = setBankReg(ctx, 1, b[0]!.base + b[0]!.size / 2, b[1]!.size, "base inside bank 0");
      return { reasonIncludes: [at] };
    },
  },
  {
    kind: "bank-zero-size",
    group: "boot-dtb",
    description: "the last memory node's reg size set to 0",
    expect: UNUSABLE(["boot.dtb", "is empty or not page aligned"]),
    apply(ctx: FaultContext): FaultResult {
      const b = needBanks(ctx);
      const at = setBankReg(ctx, b.length - 1, b[b.length - 1]!.base, 0, "size 0");
      return { reasonIncludes: [at] };
    },
  },
  {
    kind: "bank-beyond-2-53",
    group: "boot-dtb",
    description: "the last memory node's reg base set to 2^53 (a physical address khosim cannot hold as a number)",
    expect: UNUSABLE(["boot.dtb", "is beyond 2^53"]),
    apply(ctx: FaultContext): FaultResult {
      const b = needBanks(ctx);
      const at = setBankReg(ctx, b.length - 1, 2n ** 53n, b[b.length - 1]!.size, "base 2^53");
      return { reasonIncludes: [at] };
    },
  },
  {
    kind: "numa-node-id-wrong-length",
    group: "boot-dtb",
    description: "the first memory node's numa-node-id made 8 bytes (bindings/numa.txt: one u32 cell)",
    expect: UNUSABLE(["boot.dtb", `${BOOT_NUMA_NODE_ID_PROP}: length 8, expected 4`]),
    apply(ctx: FaultContext): FaultResult {
      needBanks(ctx);
      ctx.need(ctx.boot().numa, `needs memory nodes with ${BOOT_NUMA_NODE_ID_PROP}`);
      let name = "";
      ctx.rebuildBootDtb((root) => {
        const n = memoryNodes(root)[0]!;
        name = n.name;
        n.props.find((p) => p.name === BOOT_NUMA_NODE_ID_PROP)!.value = new Uint8Array(8);
      }, `memory node 0 ${BOOT_NUMA_NODE_ID_PROP}: 8 bytes`);
      return { reasonIncludes: [`/${name}/${BOOT_NUMA_NODE_ID_PROP}`] };
    },
  },
  {
    kind: "scratch-node-in-hole",
    group: "boot-dtb",
    description: "the last per-node kho_scratch entry (in the image) moved into the hole after the first bank",
    expect: NO_KHO(["kho_scratch[", "is outside RAM"]),
    apply(ctx: FaultContext): FaultResult {
      const b = needBanks(ctx);
      const hole = b[0]!.base + b[0]!.size;
      ctx.need(b[1]!.base > hole, "needs a hole between the first two banks");
      const sa = ctx.scratchArray();
      ctx.need(sa.areas.length >= 3, `needs per-node scratch entries (lowmem, global, nodes); the input has ${sa.areas.length}`);
      const j = sa.areas.length - 1;
      ctx.writeU64(sa.phys + j * KHO_SCRATCH_SIZE, hole, `kho_scratch[${j}].addr`);
      ctx.writeU64(sa.phys + j * KHO_SCRATCH_SIZE + 8, Math.min(sa.areas[j]!.size, b[1]!.base - hole), `kho_scratch[${j}].size`);
      return { reasonIncludes: [`[${hex(hole)}, +`] };
    },
  },
];
