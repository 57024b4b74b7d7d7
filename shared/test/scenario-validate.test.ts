/*
 * The scenario validator's type and range checks (scenario.ts validates by
 * hand, not with zod, so that kernel-a starts fast): each wrong value is
 * refused at its JSON path with a message naming what was expected and what
 * was found, and every default is filled in. (The checks against the machine
 * are scenario-errors.test.ts's.)
 */
import { describe, expect, test } from "vitest";
import { ScenarioError, parseScenario } from "../src/kho/out/scenario.js";
import { thrownBy } from "./thrown.js";

const WRONG: { scenario: unknown; jsonPath: string; says: string }[] = [
  { scenario: [], jsonPath: "", says: "expected an object, got an array" },
  { scenario: { machine: null }, jsonPath: "machine", says: "expected an object, got null" },
  { scenario: { ops: {} }, jsonPath: "ops", says: "expected an array, got an object" },
  { scenario: { ops: [1] }, jsonPath: "ops[0]", says: "expected an object, got number 1" },
  { scenario: { ops: [{}] }, jsonPath: "ops[0].op", says: 'expected one of "test_kho", "folios", "phys", "unpreserve", "unpreserve-folio", "unpreserve-phys", "vmalloc", "preserve-pages", "alloc-preserve", "unpreserve-pages", "unpreserve-vmalloc", "unpreserve-free", "finalize", got nothing' },
  { scenario: { ops: [{ op: "folios", count: 2 }] }, jsonPath: "ops[0].order", says: 'expected a folio order or "random", got nothing' },
  { scenario: { ops: [{ op: "folios", count: 0, order: 1 }] }, jsonPath: "ops[0].count", says: "0 is below the minimum 1" },
  { scenario: { ops: [{ op: "folios", count: 1, order: 1.5 }] }, jsonPath: "ops[0].order", says: "1.5 is not an integer" },
  { scenario: { ops: [{ op: "folios", count: 1, order: 0, layout: "heap" }] }, jsonPath: "ops[0].layout", says: 'got the string "heap"' },
  { scenario: { ops: [{ op: "folios", count: 4, order: 0, layout: "contiguous", skipEvery: 1 }] }, jsonPath: "ops[0].skipEvery", says: "1 is below the minimum 2" },
  { scenario: { ops: [{ op: "unpreserve-phys", index: -1 }] }, jsonPath: "ops[0].index", says: "-1 is below the minimum 0" },
  { scenario: { ops: [{ op: "unpreserve", start: "0x1001", size: "4K" }] }, jsonPath: "ops[0].start", says: "must be page aligned (4K)" },
  { scenario: { ops: [{ op: "phys", size: "8K", fill: "yes" }] }, jsonPath: "ops[0].fill", says: 'expected true or false, got the string "yes"' },
  { scenario: { seed: "1" }, jsonPath: "seed", says: 'expected an integer, got the string "1"' },
  { scenario: { seed: 2 ** 32 }, jsonPath: "seed", says: "4294967296 is above the maximum 4294967295" },
  { scenario: { description: 5 }, jsonPath: "description", says: "expected a string, got number 5" },
  { scenario: { machine: { maxOrder: 19 } }, jsonPath: "machine.maxOrder", says: "19 is above the maximum 18" },
  { scenario: { machine: { scratch: { lowmem: 0 } } }, jsonPath: "machine.scratch.lowmem", says: "must be a non-zero multiple of the page size (4K)" },
  { scenario: { machine: { scratch: { high: "1M" } } }, jsonPath: "machine.scratch", says: 'unknown key "high"' },
  { scenario: { machine: { ram: true } }, jsonPath: "machine.ram", says: "true is not a size" },
];

describe("parseScenario: a wrong type or range is named at its JSON path", () => {
  test.for(WRONG)("$jsonPath: $says", ({ scenario, jsonPath, says }) => {
    const e = thrownBy(ScenarioError, () => parseScenario(scenario, "s.json"));
    expect(e.jsonPath).toBe(jsonPath);
    expect(e.reason).toContain(says);
    expect(e.message).not.toContain("\n");
  });
});

describe("parseScenario: defaults", () => {
  test("an empty object is test_kho on a 1 GiB machine, filled", () => {
    expect(parseScenario({}, "s.json")).toEqual({
      fill: true,
      machine: { ram: 2 ** 30, ramBase: 0x4000_0000, maxOrder: 10, kernelSize: 32 * 2 ** 20, scratch: { lowmem: 16 * 2 ** 20, global: 82 * 2 ** 20 } },
      ops: [{ op: "test_kho" }],
    });
  });

  test("each op keeps what it was given, with its defaults, and no key it was not given", () => {
    const s = parseScenario(
      {
        $schema: "x",
        seed: 7,
        fill: false,
        machine: { ram: "256M", scratch: { lowmem: "4M", global: "32M" } },
        ops: [
          { op: "test_kho", maxMem: "1M" },
          { op: "folios", count: 3, order: "random" },
          { op: "folios", count: 4, order: 0, layout: "contiguous", skipEvery: 2, fill: true },
          { op: "phys", size: "0x2000", align: "8K" },
          { op: "unpreserve", start: "0x40000000", size: 4096 },
          { op: "unpreserve-folio", index: 1 },
        ],
      },
      "s.json",
    );
    expect(s).toEqual({
      $schema: "x",
      seed: 7,
      fill: false,
      machine: { ram: 256 * 2 ** 20, ramBase: 0x4000_0000, maxOrder: 10, kernelSize: 32 * 2 ** 20, scratch: { lowmem: 4 * 2 ** 20, global: 32 * 2 ** 20 } },
      ops: [
        { op: "test_kho", maxMem: 2 ** 20 },
        { op: "folios", count: 3, order: "random", layout: "buddy" },
        { op: "folios", count: 4, order: 0, layout: "contiguous", skipEvery: 2, fill: true },
        { op: "phys", size: 0x2000, align: 8192 },
        { op: "unpreserve", start: 0x4000_0000, size: 4096 },
        { op: "unpreserve-folio", index: 1 },
      ],
    });
    expect(Object.keys(s.ops[0]!)).toEqual(["op", "maxMem"]);
  });
});
