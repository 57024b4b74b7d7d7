/*
 * Faults of kho_test's run table (kho-test-v2, abi/kho-test.ts): one field
 * of one run entry damaged and the blob's csum made to match again, so that
 * the successor's run checks (KhoTestInfoDecoder) must refuse it, naming the
 * entry and its offset in the blob. Input: a handoff whose folios are all
 * unfilled (the folio table is runs), e.g. scenarios/matrix-many-orders.json.
 */
import { FdtRo } from "@khosim/shared/fdt";
import { KHO_TEST_DATA_NODE, KHO_TEST_FOLIO_ENTRY_SIZE, PAGE_SIZE } from "@khosim/shared/abi";
import { csum64, hex } from "@khosim/shared/lib";
import type { FaultContext } from "./context.js";
import { VERIFY_FAILED, type Fault, type FaultResult } from "./fault.js";

/** The unfilled scenario the run faults are tested on. */
export const RUNS_INPUT = "scenarios/matrix-many-orders.json";

interface Run {
  /** Entry index and phys of its first byte. */
  j: number;
  at: number;
  phys: number;
  order: number;
  count: bigint;
}

/* The run table, checked to be one. */
function runs(ctx: FaultContext): Run[] {
  const t = ctx.khoTest();
  const n = t.header.nrRuns;
  ctx.need(n !== undefined && n > 0, `the kho_test folio table is not runs (kho-test-v1: some folio is filled); use an unfilled scenario, e.g. ${RUNS_INPUT}`);
  const out: Run[] = [];
  for (let j = 0; j < n; j++) {
    const at = t.infoPhys + j * KHO_TEST_FOLIO_ENTRY_SIZE;
    const po = ctx.u64(at);
    const order = Number(po & BigInt(PAGE_SIZE - 1));
    out.push({ j, at, phys: Number(po - BigInt(order)), order, count: ctx.u64(at + 8) });
  }
  return out;
}

/* Write the csum of the (damaged) blob into /data/csum, so the blob's checksum holds and its entries are judged. */
function resum(ctx: FaultContext): void {
  const t = ctx.khoTest();
  const total = Number(new DataView(ctx.read(t.subPhys + 4, 4).buffer).getUint32(0, false));
  const fdt = new FdtRo(ctx.read(t.subPhys, total));
  const p = fdt.properties(fdt.pathOffset(`/${KHO_TEST_DATA_NODE}`)).find((q) => q.name === "csum");
  ctx.need(p, "the kho_test sub-tree has no /data/csum");
  ctx.writeU64(t.subPhys + fdt.header.offDtStruct + p.offset + 12, csum64(ctx.read(t.infoPhys, t.infoSize)), "kho_test /data/csum (made to match the damaged blob)");
}

/* A damaged run entry's field: what the refusal names. */
function refused(r: Run, why: string): FaultResult {
  return { reasonIncludes: [`folio_runs[${r.j}] (info +${hex(r.j * KHO_TEST_FOLIO_ENTRY_SIZE)})`, why], failure: { kind: "subtree" } };
}

const RUN_REASON = ["kho_test folio_runs["];

export const RUN_FAULTS: readonly Fault[] = [
  {
    kind: "runs-count-zero",
    group: "data",
    description: "a kho_test run (kho-test-v2) with count 0 (blob csum made to match)",
    expect: VERIFY_FAILED([...RUN_REASON, "count 0"]),
    input: RUNS_INPUT,
    apply(ctx: FaultContext) {
      const r = ctx.pick(runs(ctx), "run");
      ctx.writeU64(r.at + 8, 0n, `kho_test info folio_runs[${r.j}].count`);
      resum(ctx);
      return refused(r, "count 0");
    },
  },
  {
    kind: "runs-count-past-ram",
    group: "data",
    description: "a kho_test run (kho-test-v2) whose count spans more than RAM (blob csum made to match)",
    expect: VERIFY_FAILED([...RUN_REASON, "span more than RAM"]),
    input: RUNS_INPUT,
    apply(ctx: FaultContext) {
      const r = ctx.pick(runs(ctx), "run");
      const count = 1n << 40n;
      ctx.writeU64(r.at + 8, count, `kho_test info folio_runs[${r.j}].count`);
      resum(ctx);
      return refused(r, `count ${count}`);
    },
  },
  {
    kind: "runs-overlap",
    group: "data",
    description: "a kho_test run (kho-test-v2) moved onto the run before it (blob csum made to match)",
    expect: VERIFY_FAILED([...RUN_REASON, "overlaps"]),
    input: RUNS_INPUT,
    apply(ctx: FaultContext) {
      const all = runs(ctx);
      ctx.need(all.length >= 2, `needs at least 2 runs; the input has ${all.length}`);
      const r = ctx.pick(all.slice(1), "run after the first");
      const prev = all[r.j - 1]!;
      ctx.writeU64(r.at, BigInt(prev.phys) | BigInt(r.order), `kho_test info folio_runs[${r.j}].phys_order`);
      resum(ctx);
      return refused(r, "overlaps");
    },
  },
  {
    kind: "runs-bad-order",
    group: "data",
    description: "a kho_test run (kho-test-v2) of order 40, a folio larger than RAM (blob csum made to match)",
    expect: VERIFY_FAILED([...RUN_REASON, "larger than RAM"]),
    input: RUNS_INPUT,
    apply(ctx: FaultContext) {
      const r = ctx.pick(runs(ctx), "run");
      ctx.writeU64(r.at, BigInt(r.phys) | 40n, `kho_test info folio_runs[${r.j}].phys_order`);
      resum(ctx);
      return refused(r, "order 40");
    },
  },
];
