/* Faults of preserved data and the kho_test sub-tree: kernel-b revives KHO, then verification fails. */
import { KHO_TEST_FDT, PAGE_SIZE } from "@khosim/shared/abi";
import { hex } from "@khosim/shared/lib";
import { khoRetrieveSubtree } from "@khosim/shared/kho";
import type { FaultContext } from "./context.js";
import { VERIFY_FAILED, filledFolios, type Fault } from "./fault.js";

export const DATA_FAULTS: readonly Fault[] = [
  {
    kind: "data-bit-flip",
    group: "data",
    description: "one bit flipped in a filled preserved folio",
    expect: VERIFY_FAILED(["checksum", "does not match recorded"]),
    apply(ctx: FaultContext) {
      const f = ctx.pick(filledFolios(ctx), "filled folio (the scenario did not fill its memory)");
      const size = PAGE_SIZE * 2 ** f.order;
      const at = f.phys + ctx.rng.below(size);
      const bit = ctx.rng.below(8);
      const old = ctx.read(at, 1);
      ctx.write(at, Uint8Array.of(old[0]! ^ (1 << bit)), `bit ${bit} of folio ${hex(f.phys)} (order ${f.order}) + ${hex(at - f.phys)}`);
      return { reasonIncludes: [hex(f.phys)], failure: { kind: "folio", phys: hex(f.phys), order: f.order } };
    },
  },
  {
    kind: "data-info-checksum",
    group: "data",
    description: "one bit flipped in the kho_test info blob, so it no longer matches its csum",
    expect: VERIFY_FAILED(["folios_info checksum", "does not match csum"]),
    apply(ctx: FaultContext) {
      const t = ctx.khoTest();
      ctx.need(t.infoSize > 0, "the kho_test info blob is empty (nothing preserved)");
      const at = t.infoPhys + ctx.rng.below(t.infoSize);
      const bit = ctx.rng.below(8);
      const old = ctx.read(at, 1);
      ctx.write(at, Uint8Array.of(old[0]! ^ (1 << bit)), `bit ${bit} of the kho_test info blob + ${hex(at - t.infoPhys)}`);
      return { reasonIncludes: [hex(t.infoPhys)], failure: { kind: "subtree", phys: hex(t.infoPhys) } };
    },
  },
  {
    kind: "data-order-above-max",
    group: "data",
    description: "data intact; kernel-b run with --max-order one below the highest preserved folio order",
    expect: VERIFY_FAILED(["has order", "above this kernel's MAX_PAGE_ORDER"]),
    apply(ctx: FaultContext) {
      const folios = ctx.khoTest().folios;
      ctx.need(folios.length > 0, "no folios were preserved");
      const high = folios.reduce((m, f) => Math.max(m, f.order), 0);
      ctx.need(high >= 1, "every preserved folio has order 0: no --max-order is below it");
      const f = folios.find((x) => x.order === high)!;
      return {
        kernelBArgs: ["--max-order", String(high - 1)],
        reasonIncludes: [`folio ${hex(f.phys)} has order ${high}`, `MAX_PAGE_ORDER ${high - 1}`],
        failure: { kind: "folio", phys: hex(f.phys), order: high },
      };
    },
  },
  {
    kind: "subtree-fdt-at-range-end",
    group: "data",
    description: "/kho_test/fdt pointing 4 bytes before the end of its preserved range: no room for an FDT header",
    expect: VERIFY_FAILED(["kho_test"]),
    apply(ctx: FaultContext) {
      const k = ctx.khoFdt();
      const sub = khoRetrieveSubtree(k.kho, KHO_TEST_FDT);
      ctx.need(sub !== undefined, `the KHO FDT has no /${KHO_TEST_FDT} sub-tree`);
      const l = ctx.walk().locs.find((x) => x.range.start <= Number(sub) && Number(sub) < x.range.start + x.range.size);
      ctx.need(l, `/${KHO_TEST_FDT}/fdt ${hex(sub)} is not in a preserved range`);
      const to = l.range.start + l.range.size - 4;
      const at = ctx.khoFdtPropPhys(`/${KHO_TEST_FDT}`, "fdt");
      ctx.fdtTouched = true;
      ctx.writeU64(at.phys, to, `KHO FDT /${KHO_TEST_FDT}/fdt`);
      return { reasonIncludes: [hex(to)], failure: { kind: "subtree", phys: hex(to) } };
    },
  },
];
