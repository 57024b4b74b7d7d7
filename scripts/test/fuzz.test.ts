/*
 * Damage random bytes of a valid handoff and boot the successor in process:
 * it must end, throw only its own typed errors, never reserve memory outside
 * RAM or inside scratch, and report a documented outcome/exit code pair.
 */
import fc from "fast-check";
import { beforeAll, describe, expect, test } from "vitest";
import { applyMutations, checkReport, fuzzProperty, makeFuzzHandoff, runCase, type FuzzHandoff } from "../src/fuzz-core.js";

let h: FuzzHandoff;
beforeAll(async () => {
  h = await makeFuzzHandoff();
});

describe("successor fuzzing", () => {
  test("the undamaged handoff revives and verifies", () => {
    expect(runCase(h, [])).toEqual({ outcome: "revived" });
  });

  test("the fuzz handoff spans two chunks, so chunk links are exercised", () => {
    expect(h.chunks.length).toBeGreaterThanOrEqual(2);
  });

  test("mutations land in a copy: the original handoff is untouched", () => {
    const before = h.mem.read(h.chunks[0]!, 4096);
    const { mem } = applyMutations(h, [{ target: "chunk-header", pick: 8, chunk: 0, value: { u64: 171n } }]);
    expect(mem.read(h.chunks[0]! + 8, 1)[0]).toBe(171);
    expect(h.mem.read(h.chunks[0]!, 4096)).toEqual(before);
  });

  test("num_ranges 2^63 is refused without hanging (booted without KHO)", () => {
    const r = runCase(h, [{ target: "chunk-header", pick: 8, chunk: 0, value: { u64: 1n << 63n } }]);
    expect(r.outcome).toBe("booted-without-kho");
    expect(r.reason).toMatch(/chunk 0 at 0x[0-9a-f]+: num_ranges at \+0x8 is 0x8000000000000000/);
  });

  test("checkReport catches a reservation inside scratch", () => {
    const rep = {
      outcome: "revived",
      exitCode: 0,
      scratch: [{ addr: "0x40000000", size: "0x1000" }],
      ranges: [{ start: "0x40000000", size: "0x1000", data: "0x0" }],
    } as never;
    expect(() => checkReport(rep, { base: 0x40000000, size: 0x10000000 })).toThrow(/inside scratch/);
  });

  test("300 random damages: typed errors only, bounded, nothing reserved outside RAM or in scratch", () => {
    const seen = new Map<string, number>();
    fc.assert(
      fuzzProperty(h, (r) => seen.set(r.outcome, (seen.get(r.outcome) ?? 0) + 1)),
      { numRuns: 300, seed: 20261124 },
    );
    // The campaign reaches more than one outcome, or it is not exploring.
    expect(seen.size).toBeGreaterThanOrEqual(3);
  });
});
