/*
 * Damage a valid handoff of every format, field by field and at random, and
 * boot the successor in process: it must end, throw only its own typed
 * errors, never write its input, never reserve memory outside RAM or inside
 * scratch, stay within its work bound, and report a documented
 * outcome/exit code pair.
 *
 * The random campaigns boot a copy of each handoff whose memory holds every
 * written page (heldCopy): the same bytes (checked page by page), read
 * without making the workload's generated pages again on every read, which
 * was most of the campaigns' time.
 */
import fc from "fast-check";
import { beforeAll, describe, expect, test } from "vitest";
import { PAGE_SIZE } from "@khosim/shared/abi";
import { SparseMem, type PageSource } from "@khosim/shared/mm";
import { FUZZ_FORMATS, FuzzViolation, applyMutations, checkReport, fuzzProperty, makeFuzzHandoff, runCase, targetsOf, type FuzzHandoff } from "../src/fuzz-core.js";

/** @h with its memory copied into held pages: the same bytes at the same addresses, banks and size. */
function heldCopy(h: FuzzHandoff): FuzzHandoff {
  const src = h.mem as typeof h.mem & PageSource;
  const mem = new SparseMem(src.base, src.size, src.banks);
  for (const [pfn, n] of src.touchedRuns()) mem.write(pfn * PAGE_SIZE, src.read(pfn * PAGE_SIZE, n * PAGE_SIZE));
  return { ...h, mem };
}

/** Every page @b holds, @a holds with the same bytes, and the other way round. */
function expectSameMemory(a: PageSource, b: PageSource): void {
  expect([b.base, b.size, b.banks]).toEqual([a.base, a.size, a.banks]);
  expect(b.touchedRuns()).toEqual(a.touchedRuns());
  for (const [pfn, n] of a.touchedRuns()) {
    const x = Buffer.from((a as unknown as SparseMem).read(pfn * PAGE_SIZE, n * PAGE_SIZE));
    expect(x.equals(Buffer.from((b as unknown as SparseMem).read(pfn * PAGE_SIZE, n * PAGE_SIZE))), `pages ${pfn}+${n}`).toBe(true);
  }
}

const hs = new Map<string, FuzzHandoff>();
const held = new Map<string, FuzzHandoff>();
beforeAll(async () => {
  for (const f of FUZZ_FORMATS) {
    hs.set(f, await makeFuzzHandoff(1, f));
    held.set(f, heldCopy(hs.get(f)!));
  }
});
const h = (f: string): FuzzHandoff => hs.get(f)!;

describe("successor fuzzing", () => {
  test("every registered format is fuzzed", () => {
    expect([...FUZZ_FORMATS].sort()).toEqual(["bitmaps", "bitmaps-page", "posted", "radix", "ranges"]);
  });

  test.each(FUZZ_FORMATS)("%s: the undamaged handoff revives and verifies, and its held copy holds the same bytes", (f) => {
    expect(runCase(h(f), [])).toEqual({ outcome: "revived" });
    expectSameMemory(h(f).mem as SparseMem, held.get(f)!.mem as SparseMem);
    expect(runCase(held.get(f)!, [])).toEqual({ outcome: "revived" });
  });

  test("the handoffs have more than one of each structure, so links between them are exercised", () => {
    const r = h("ranges").map;
    expect(r.kind === "ranges" && r.chunks.length).toBeGreaterThanOrEqual(2);
    const b = h("bitmaps").map;
    expect(b.kind === "bitmaps" && b.chunks.length).toBeGreaterThanOrEqual(2);
    expect(b.kind === "bitmaps" && b.bitmaps.length).toBeGreaterThanOrEqual(2);
    const x = h("radix").map;
    expect(x.kind === "radix" && x.nodes.filter((n) => n.level === 0).length).toBeGreaterThanOrEqual(2);
  });

  test("mutations land in a copy: the original handoff is untouched", () => {
    const r = h("ranges");
    const c = r.map.kind === "ranges" ? r.map.chunks[0]!.phys : 0;
    const before = r.mem.read(c, PAGE_SIZE);
    const { mem } = applyMutations(r, [{ target: "chunk-header", pick: 16, pick2: 0, value: { u64: 171n } }]);
    expect(mem.read(c + 8, 1)[0]).toBe(171);
    expect(r.mem.read(c, PAGE_SIZE)).toEqual(before);
  });

  test("num_ranges 2^63 is refused without hanging (booted without KHO)", () => {
    const r = runCase(h("ranges"), [{ target: "chunk-header", pick: 16, pick2: 0, value: { u64: 1n << 63n } }]);
    expect(r.outcome).toBe("booted-without-kho");
    expect(r.reason).toMatch(/chunk 0 at 0x[0-9a-f]+: num_ranges at \+0x8 is 0x8000000000000000/);
  });

  test("bitmaps num_elms 2^32-1 and a radix entry pointing at its own table are refused, naming the field", () => {
    const b = runCase(h("bitmaps"), [{ target: "chunk-header", pick: 32, pick2: 0, value: { u64: 0xffffffffn } }]);
    expect(b.outcome).toBe("booted-without-kho");
    expect(b.reason).toMatch(/num_elms/);
    const x = h("radix");
    const root = x.map.kind === "radix" ? x.map.nodes[0]! : undefined;
    const self = x.pointers.indexOf(BigInt(root!.phys));
    const r = runCase(x, [{ target: "table-entry", pick: 0, pick2: 1, value: { ptr: self } }]);
    expect(r.outcome).toBe("booted-without-kho");
    expect(r.reason).toMatch(/cycle/);
  });

  test("checkReport catches a reservation inside scratch", () => {
    const rep = {
      outcome: "revived",
      exitCode: 0,
      reason: null,
      scratch: [{ addr: "0x40000000", size: "0x1000" }],
      ranges: [{ start: "0x40000000", size: "0x1000", data: "0x0" }],
    } as never;
    expect(() => checkReport(rep, { base: 0x40000000, size: 0x10000000 })).toThrow(/inside scratch/);
  });

  test("a case over its time bound is a violation", () => {
    expect(() => runCase(h("ranges"), [], 0)).toThrow(FuzzViolation);
  });

  test.each(FUZZ_FORMATS)("%s: 150 random damages: typed errors only, bounded, nothing reserved outside RAM or in scratch", (f) => {
    const seen = new Map<string, number>();
    fc.assert(
      fuzzProperty(held.get(f)!, (r) => seen.set(r.outcome, (seen.get(r.outcome) ?? 0) + 1)),
      { numRuns: 150, seed: 20261130 },
    );
    // The campaign reaches more than one outcome, or it is not exploring.
    expect(seen.size).toBeGreaterThanOrEqual(3);
    expect(targetsOf(f).length).toBeGreaterThan(5);
  });
});

describe("successor fuzzing on a two-node machine with a hole", () => {
  let made: FuzzHandoff;
  let banked: FuzzHandoff;
  beforeAll(async () => {
    made = await makeFuzzHandoff(1, "ranges", true);
    banked = heldCopy(made);
  });

  test("the undamaged banked handoff revives with lowmem, global and one scratch area per node (and its held copy holds the same bytes)", () => {
    expect(made.mem.banks).toHaveLength(2);
    expect(made.scratchSize).toBe(4 * 16);
    expect(runCase(made, [])).toEqual({ outcome: "revived" });
    expectSameMemory(made.mem as SparseMem, banked.mem as SparseMem);
    expect(runCase(banked, [])).toEqual({ outcome: "revived" });
  });

  test("boot.dtb bytes (memory regs, numa-node-id) and the scratch array damaged at random: typed errors only, bounded", () => {
    const seen = new Map<string, number>();
    const arb = fc.array(
      fc.record({
        target: fc.constantFrom("boot-dtb" as const, "scratch-array" as const),
        pick: fc.nat(),
        pick2: fc.nat(),
        value: fc.oneof(fc.record({ byte: fc.nat(255) }), fc.record({ flip: fc.constant(true as const) }), fc.record({ u64: fc.bigUint64Array({ minLength: 1, maxLength: 1 }).map((a) => a[0]!) })),
      }),
      { minLength: 1, maxLength: 3 },
    );
    fc.assert(
      fc.property(arb, (muts) => {
        const r = runCase(banked, muts);
        seen.set(r.outcome, (seen.get(r.outcome) ?? 0) + 1);
      }),
      { numRuns: 200, seed: 20261130 },
    );
    expect(seen.size).toBeGreaterThanOrEqual(2);
  });
});
