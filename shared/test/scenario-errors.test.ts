/*
 * Bad scenarios against the loader, in process: each is refused with a
 * ScenarioError whose message is one line naming the file and the JSON path
 * of the first problem (kernel-a prints it and exits 2; one spawned check of
 * that stays in scripts/test/kernel-a/scenario-errors.test.ts).
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, describe, expect, test } from "vitest";
import { ScenarioError, loadScenario, parseScenario } from "../src/kho/out/scenario.js";
import { thrownBy } from "./thrown.js";

interface BadScenario {
  what: string;
  scenario: unknown;
  /** JSON path the error line must name. */
  jsonPath: string;
  /** Further words the line must contain. */
  mentions: string[];
}

const BAD: BadScenario[] = [
  { what: "an unknown key", scenario: { ops: [{ op: "test_kho", bogus: 1 }] }, jsonPath: "ops[0]", mentions: ['unknown key "bogus"'] },
  { what: "an unknown key in machine", scenario: { machine: { ram: "1G", bogus: 1 } }, jsonPath: "machine", mentions: ['unknown key "bogus"'] },
  { what: "an unknown top-level key", scenario: { opz: [] }, jsonPath: "", mentions: ['unknown key "opz"'] },
  { what: "a folio order above MAX_PAGE_ORDER", scenario: { ops: [{ op: "folios", count: 1, order: 11 }] }, jsonPath: "ops[0].order", mentions: ["11 is above MAX_PAGE_ORDER 10"] },
  { what: "a size that is not page aligned", scenario: { ops: [{ op: "test_kho" }, { op: "phys", size: "4097" }] }, jsonPath: "ops[1].size", mentions: ["multiple of the page size"] },
  { what: "a size that is not a size", scenario: { machine: { ram: "lots" } }, jsonPath: "machine.ram", mentions: ['"lots" is not a size'] },
  { what: "an unknown op", scenario: { ops: [{ op: "preserve-everything" }] }, jsonPath: "ops[0].op", mentions: [] },
  {
    what: "more memory than RAM",
    scenario: { machine: { ram: "256M", scratch: { lowmem: "16M", global: "32M" } }, ops: [{ op: "phys", size: "128M" }, { op: "phys", size: "200M" }] },
    jsonPath: "ops[1]",
    mentions: ["needs 328M so far, more than RAM (256M)"],
  },
  {
    what: "a phys range outside RAM",
    scenario: { machine: { ram: "256M" , scratch: { lowmem: "16M", global: "32M" } }, ops: [{ op: "phys", size: "4K", at: "0x1000" }] },
    jsonPath: "ops[0].at",
    mentions: ["is outside RAM"],
  },
  { what: "skipEvery without a contiguous layout", scenario: { ops: [{ op: "folios", count: 4, order: 0, skipEvery: 2 }] }, jsonPath: "ops[0].skipEvery", mentions: ['goes with layout "contiguous"'] },
  { what: "RAM above what khosim simulates", scenario: { machine: { ram: "32T" } }, jsonPath: "machine.ram", mentions: ["32T is above the 16T khosim simulates"] },
];

/** The ScenarioError @f throws (the test fails if it throws anything else, or nothing). */
function scenarioError(f: () => unknown): ScenarioError {
  return thrownBy(ScenarioError, f);
}

function expectOneLine(e: ScenarioError, file: string, jsonPath: string, mentions: string[]): void {
  expect(e.file).toBe(file);
  expect(e.jsonPath).toBe(jsonPath);
  expect(e.message).not.toContain("\n");
  expect(e.message).toBe(`${file}: ${jsonPath ? jsonPath + ": " : ""}${e.reason}`);
  for (const m of mentions) expect(e.message).toContain(m);
}

describe("parseScenario on bad input: one line naming the file and the JSON path", () => {
  test.for(BAD)("$what: names $jsonPath", ({ scenario, jsonPath, mentions }) => {
    expectOneLine(scenarioError(() => parseScenario(scenario, "bad.json")), "bad.json", jsonPath, mentions);
  });

  test("a good scenario is accepted, with its defaults filled in", () => {
    const s = parseScenario({ machine: { ram: "256M" } }, "good.json");
    expect(s.machine.ram).toBe(256 * 2 ** 20);
    expect(s.ops).toEqual([{ op: "test_kho" }]);
    expect(s.machine.scratch.global).toBeGreaterThan(0);
  });
});

describe("loadScenario: the file itself", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "khosim-scenario-"));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  test("a missing file names the file and the errno", () => {
    const file = path.join(dir, "missing.json");
    expectOneLine(scenarioError(() => loadScenario(file)), file, "", ["cannot read: ENOENT"]);
  });

  test("a file that is not JSON names the file", () => {
    const file = path.join(dir, "not-json.json");
    fs.writeFileSync(file, "{ ops: [ }\n");
    expectOneLine(scenarioError(() => loadScenario(file)), file, "", ["not JSON"]);
  });

  test.for(BAD)("$what, from a file: names the file and $jsonPath", ({ scenario, jsonPath, mentions }) => {
    const file = path.join(dir, "bad.json");
    fs.writeFileSync(file, JSON.stringify(scenario));
    expectOneLine(scenarioError(() => loadScenario(file)), file, jsonPath, mentions);
  });
});
