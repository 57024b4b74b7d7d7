/*
 * Faults of the memblock sub-FDT (reserve_mem=, abi/memblock-fdt.ts): its
 * root compatible, a row's compatible, the length and value of a row's
 * start and size. They need a handoff whose predecessor had reserve_mem=
 * words (Fault.needs), and run kernel-b with a --cmdline that asks for every
 * row as it was written (same name and size, alignment 4096). None of them
 * stops the boot: reserve_mem_kho_revive() (mm/memblock.c, v6.16
 * f99230780211) warns and allocates afresh; FaultExpect.reserveMem names the
 * row outcome kernel-b must report for the damaged name.
 */
import { MEMBLOCK_KHO_FDT, MEMBLOCK_KHO_NODE_COMPATIBLE, OUTCOME_EXIT, RESERVE_MEM_KHO_NODE_COMPATIBLE } from "@khosim/shared/abi";
import { FdtRo, fdtFromTree, fdtToTree, type FdtNode } from "@khosim/shared/fdt";
import { ByteReader, hex, u64ToNumber, u64leBytes } from "@khosim/shared/lib";
import { khoRetrieveSubtree } from "@khosim/shared/kho";
import type { FaultContext } from "./context.js";
import type { Fault, FaultExpect, FaultResult } from "./fault.js";

/* The sub-FDT in the image: where, its bytes and rows; @row is the seeded pick of a row to damage. */
function memblockFdt(ctx: FaultContext): { phys: number; blob: Uint8Array; fdt: FdtRo; rows: { name: string; node: number; start: bigint; size: bigint }[] } {
  const raw = khoRetrieveSubtree(ctx.khoFdt().kho, MEMBLOCK_KHO_FDT);
  ctx.need(raw !== undefined, `needs a '${MEMBLOCK_KHO_FDT}' sub-tree; the input has none (use a scenario with reserve_mem= in machine.cmdline)`);
  const phys = u64ToNumber(raw!);
  ctx.need(phys !== undefined, `the '${MEMBLOCK_KHO_FDT}' pointer ${hex(raw!)} is beyond 2^53`);
  const total = new ByteReader(ctx.read(phys!, 40)).u32be(4);
  const blob = ctx.read(phys!, total);
  const fdt = new FdtRo(blob);
  const rows = fdt.subnodes(0).map((node) => {
    const r = (p: string): bigint => new ByteReader(fdt.getProp(node, p)!).u64le(0);
    return { name: fdt.nodeName(node), node, start: r("start"), size: r("size") };
  });
  ctx.need(rows.length > 0, `the '${MEMBLOCK_KHO_FDT}' sub-tree has no rows`);
  return { phys: phys!, blob, fdt, rows };
}

/* kernel-b's --cmdline asking for every row of @rows as written. */
function cmdline(rows: readonly { name: string; size: bigint }[]): string[] {
  return ["--cmdline", rows.map((r) => `reserve_mem=${hex(r.size)}:4096:${r.name}`).join(" ")];
}

/* Phys of the value of property @prop of node @node in the sub-FDT at @phys. */
function propPhys(m: ReturnType<typeof memblockFdt>, node: number, prop: string): number {
  const p = m.fdt.properties(node).find((q) => q.name === prop)!;
  return m.phys + m.fdt.header.offDtStruct + p.offset + 12;
}

/* Rewrite the sub-FDT from an edited tree over the old one (same page; the rest zeroed). */
function rebuild(ctx: FaultContext, m: ReturnType<typeof memblockFdt>, edit: (root: FdtNode) => void, field: string): void {
  const tree = fdtToTree(m.blob);
  edit(tree);
  const blob = fdtFromTree(tree);
  const out = new Uint8Array(Math.max(blob.length, m.blob.length));
  out.set(blob);
  ctx.write(m.phys, out, `memblock FDT: ${field}`);
}

const REVIVED = (reserveMem: string, reasonIncludes: string[]): FaultExpect => ({ outcome: "revived", exitCode: OUTCOME_EXIT.revived, reserveMem, reasonIncludes });

/* A fault on one seeded row: @damage edits it and returns the row reason's input-specific part. */
function rowFault(kind: string, description: string, expect: FaultExpect, damage: (ctx: FaultContext, m: ReturnType<typeof memblockFdt>, row: ReturnType<typeof memblockFdt>["rows"][number]) => string[]): Fault {
  return {
    kind,
    group: "memblock",
    needs: "reserve-mem",
    description,
    expect,
    apply(ctx: FaultContext): FaultResult {
      const m = memblockFdt(ctx);
      const row = ctx.pick(m.rows, "memblock row");
      return { kernelBArgs: cmdline(m.rows), reasonIncludes: damage(ctx, m, row), reserveMemName: row.name };
    },
  };
}

function setLength(prop: "start" | "size") {
  return (ctx: FaultContext, m: ReturnType<typeof memblockFdt>, row: { name: string }): string[] => {
    rebuild(ctx, m, (root) => {
      const p = root.children.find((c) => c.name === row.name)!.props.find((q) => q.name === prop)!;
      p.value = p.value.subarray(0, 4);
    }, `/${row.name}/${prop} cut to 4 bytes`);
    return [`Node '${row.name}': start/size missing or not 8 bytes`];
  };
}

export const MEMBLOCK_FAULTS: readonly Fault[] = [
  {
    kind: "memblock-compatible",
    group: "memblock",
    needs: "reserve-mem",
    description: `memblock sub-FDT root compatible "${MEMBLOCK_KHO_NODE_COMPATIBLE}" made "memblock-v0": nothing is revived, every name allocated afresh`,
    expect: REVIVED("fresh: not in handoff", [`FDT '${MEMBLOCK_KHO_FDT}' is incompatible with '${MEMBLOCK_KHO_NODE_COMPATIBLE}'`]),
    apply(ctx: FaultContext): FaultResult {
      const m = memblockFdt(ctx);
      const at = propPhys(m, 0, "compatible");
      ctx.write(at, new TextEncoder().encode("memblock-v0"), "memblock FDT /compatible");
      return { kernelBArgs: cmdline(m.rows), reserveMemName: ctx.pick(m.rows, "memblock row").name };
    },
  },
  rowFault(
    "memblock-row-compatible",
    `a row's compatible "${RESERVE_MEM_KHO_NODE_COMPATIBLE}" made "reserve-mem-v0": that name is allocated afresh`,
    REVIVED("fresh: not in handoff", [`is incompatible with '${RESERVE_MEM_KHO_NODE_COMPATIBLE}'`]),
    (ctx, m, row) => {
      ctx.write(propPhys(m, row.node, "compatible"), new TextEncoder().encode("reserve-mem-v0"), `memblock FDT /${row.name}/compatible`);
      return [`Node '${row.name}'`];
    },
  ),
  rowFault("memblock-start-length", "a row's start cut to 4 bytes: that name is allocated afresh", REVIVED("fresh: not in handoff", ["start/size missing or not 8 bytes"]), setLength("start")),
  rowFault("memblock-size-length", "a row's size cut to 4 bytes: that name is allocated afresh", REVIVED("fresh: not in handoff", ["start/size missing or not 8 bytes"]), setLength("size")),
  rowFault("memblock-start-misaligned", "a row's start moved by 0x800 (not 4096-aligned): that name is allocated afresh", REVIVED("fresh: wrong alignment", ["has wrong alignment"]), (ctx, m, row) => {
    const v = row.start + 0x800n;
    ctx.write(propPhys(m, row.node, "start"), u64leBytes(v), `memblock FDT /${row.name}/start`);
    return [`KHO reserve-mem '${row.name}' has wrong alignment (0x1000, ${hex(v)})`];
  }),
  rowFault("memblock-size-value", "a row's size grown by a page: that name is allocated afresh with the asked size", REVIVED("fresh: wrong size", ["has wrong size"]), (ctx, m, row) => {
    const v = row.size + 0x1000n;
    ctx.write(propPhys(m, row.node, "size"), u64leBytes(v), `memblock FDT /${row.name}/size`);
    return [`KHO reserve-mem '${row.name}' has wrong size (${hex(v)} != ${hex(row.size)})`];
  }),
];
