/*
 * The handoff directory's contract (abi/handoff.ts, abi/handoff-json.ts):
 * what the writers produce is what the schemas accept, key for key and in
 * the same order (so parsing and re-serialising gives the same bytes), a bad
 * file is one line naming the file and the JSON path, and the outcome table
 * is the README's.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { beforeAll, describe, expect, test } from "vitest";
import { OUTCOMES, OUTCOME_EXIT } from "../src/abi/handoff.js";
import { HandoffJsonError, PredecessorReportSchema, SuccessorJsonSchema, SuccessorReportSchema, parseHandoffJson, readHandoffJson } from "../src/abi/handoff-json.js";
import { parseBootDtb } from "../src/abi/boot-dtb.js";
import { initCsum } from "../src/lib/csum.js";
import { createLogger } from "../src/lib/log.js";
import { toJson, writeJsonFile } from "../src/proc/handoff-dir.js";
import * as os from "node:os";
import { RangeJsonStream } from "../src/abi/handoff.js";
import { bootSuccessor } from "../src/kho/in/successor.js";
import { predecessorReport } from "../src/kho/out/report.js";
import { coldBootMachine, runAndFinalize } from "../src/kho/out/predecessor.js";
import { parseScenario } from "../src/kho/out/scenario.js";
import { DEFAULT_FORMAT, khoFormat } from "../src/kho/formats/index.js";
import { thrownBy } from "./thrown.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

/** README.md and docs/**.md: wherever the exit-code table lives. */
function docsText(): string {
  const files = [path.join(ROOT, "README.md")];
  const walk = (d: string): void => {
    if (!fs.existsSync(d)) return;
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      if (e.isDirectory()) walk(path.join(d, e.name));
      else if (e.name.endsWith(".md")) files.push(path.join(d, e.name));
    }
  };
  walk(path.join(ROOT, "docs"));
  return files.map((f) => fs.readFileSync(f, "utf8")).join("\n");
}

let reportText = "";
let successorText = "";

beforeAll(async () => {
  await initCsum();
  const log = createLogger("test", "json", "silent");
  const s = parseScenario(
    { machine: { ram: "256M", scratch: { lowmem: "16M", global: "32M" } }, ops: [{ op: "test_kho", maxMem: "1M" }, { op: "phys", size: "16K" }] },
    "(contract test)",
  );
  const m = coldBootMachine(s, log);
  const { work, handoff } = runAndFinalize(m, s, 1, "(contract test)", log, khoFormat(DEFAULT_FORMAT)!);
  reportText = toJson(predecessorReport("khosim kernel-a", s, "(contract test)", 1, m, work, handoff));
  // The successor's report as kernel-b writes it, with a failure listed (phys and order present).
  const boot = parseBootDtb(handoff.bootDtb);
  successorText = toJson(bootSuccessor(boot, m.mem, { maxOrder: 0 }).report);
});

describe("writers and schemas agree", () => {
  test("report.json parses and re-serialises to the same bytes", () => {
    const r = readHandoffJson(PredecessorReportSchema, reportText, "report.json");
    expect(toJson(r)).toBe(reportText);
    expect(r.ranges.length).toBeGreaterThan(0);
  });

  test("successor.json parses and re-serialises to the same bytes (failures with phys and order)", () => {
    const r = readHandoffJson(SuccessorReportSchema, successorText, "successor.json");
    expect(toJson(r)).toBe(successorText);
    expect(r.outcome).toBe("verification-failed");
    expect(r.failures[0]).toHaveProperty("order");
    expect(toJson(readHandoffJson(SuccessorJsonSchema, successorText, "successor.json"))).toBe(successorText);
  });

  test("an unusable-input successor.json (outcome, exitCode, reason only) is a SuccessorJson", () => {
    const text = toJson({ outcome: "unusable-input", exitCode: OUTCOME_EXIT["unusable-input"], reason: "boot.dtb: bad magic" });
    expect(toJson(readHandoffJson(SuccessorJsonSchema, text, "successor.json"))).toBe(text);
    expect(() => readHandoffJson(SuccessorReportSchema, text, "successor.json")).toThrow(HandoffJsonError);
  });
});

describe("the streaming writer (writeJsonFile) prints toJson()'s bytes", () => {
  const roundTrip = (v: unknown): string => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "khosim-json-"));
    try {
      writeJsonFile(path.join(dir, "x.json"), v);
      return fs.readFileSync(path.join(dir, "x.json"), "utf8");
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  };

  test("both reports, re-read, are written byte for byte", () => {
    expect(roundTrip(JSON.parse(reportText))).toBe(reportText);
    expect(roundTrip(JSON.parse(successorText))).toBe(successorText);
  });

  test("a RangeJsonStream prints as its RangeJson objects, nested, empty or not, with odd values around it", () => {
    const ranges = [
      { start: 0x1000, size: 0x2000, data: 0 },
      { start: 2 ** 52, size: 2 ** 40, data: 0x2a },
    ];
    const v = { a: [], b: {}, c: [1, "x\n\"", null, true], d: { ranges: RangeJsonStream.fromRanges(ranges), u: undefined, e: new RangeJsonStream(0, () => undefined) }, f: -0.5 };
    expect(roundTrip(v)).toBe(toJson(v));
  });

  test("every digit count of a range's numbers, and enough ranges to flush the buffer many times, print as toJson() does", () => {
    const values = [0, 1, 0xf, 0x10, 0xff, 0xfff, 0x1000, 0xffffffff, 2 ** 32, 2 ** 32 + 1, 2 ** 36 - 1, 0x123456789ab, 2 ** 52, Number.MAX_SAFE_INTEGER];
    for (let d = 1; d <= 8; d++) values.push(16 ** d - 1, 16 ** d);
    for (let d = 9; d <= 13; d++) values.push(16 ** d - 4096, 16 ** d);
    const ranges = Array.from({ length: 40_000 }, (_, i) => ({ start: values[i % values.length]!, size: values[(i * 7) % values.length]!, data: i % 0x30 }));
    // Not a safe integer: printed as toString(16) prints it.
    ranges.push({ start: 2 ** 60, size: 1.5, data: 0 });
    const v = { ranges: RangeJsonStream.fromRanges(ranges) };
    expect(roundTrip(v)).toBe(toJson(v));
  });
});

describe("a bad file is one line naming the file and the JSON path", () => {
  const bad = (edit: (j: Record<string, any>) => void): unknown => {
    const j = JSON.parse(successorText) as Record<string, any>;
    edit(j);
    return j;
  };
  const errorOf = (f: () => unknown): HandoffJsonError => thrownBy(HandoffJsonError, f);

  test.for([
    { what: "a missing field", edit: (j: Record<string, any>) => delete j["verified"].bytes, path: "verified.bytes" },
    { what: "a range start that is not hex", edit: (j: Record<string, any>) => (j["ranges"][1].start = "4096"), path: "ranges[1].start" },
    { what: "an unknown outcome", edit: (j: Record<string, any>) => (j["outcome"] = "rebooted"), path: "outcome" },
    { what: "a negative count", edit: (j: Record<string, any>) => (j["failureCount"] = -1), path: "failureCount" },
    { what: "a failure of an unknown kind", edit: (j: Record<string, any>) => (j["failures"][0].kind = "page"), path: "failures[0].kind" },
  ])("$what: names $path", ({ edit, path: p }) => {
    const e = errorOf(() => parseHandoffJson(SuccessorJsonSchema, bad(edit), "/x/successor.json"));
    expect(e.file).toBe("/x/successor.json");
    expect(e.jsonPath).toBe(p);
    expect(e.message.startsWith(`/x/successor.json: ${p}: `)).toBe(true);
    expect(e.message).not.toContain("\n");
  });

  test("text that is not JSON names the file", () => {
    const e = errorOf(() => readHandoffJson(PredecessorReportSchema, "{ nope", "/x/report.json"));
    expect(e.message).toMatch(/^\/x\/report\.json: not JSON: /);
    expect(e.message).not.toContain("\n");
  });

  test("report.json without its stats names stats", () => {
    const j = JSON.parse(reportText) as Record<string, unknown>;
    delete j["stats"];
    expect(errorOf(() => parseHandoffJson(PredecessorReportSchema, j, "report.json")).jsonPath).toBe("stats");
  });
});

describe("the outcome table", () => {
  test("one exit code per outcome, 0..5, as the documentation's table says", () => {
    expect(OUTCOMES.map((o) => OUTCOME_EXIT[o])).toEqual([0, 1, 2, 3, 4, 5]);
    const readme = docsText();
    for (const o of OUTCOMES) expect(readme, `README's row for ${o}`).toContain(`| ${OUTCOME_EXIT[o]} | \`${o}\` |`);
  });
});
