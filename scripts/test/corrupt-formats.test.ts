/*
 * The per-format faults of the catalogue (Fault.formats), in process: each
 * kind applied to an in-memory handoff of every format it names, made by
 * kernel-a's own code, and booted by the successor's boot function as
 * kernel-b boots the same bytes. Each must give its documented outcome and
 * exit code, a reason naming what is wrong, write nothing to its input and
 * leave the undamaged handoff as it was.
 */
import { beforeAll, describe, expect, test } from "vitest";
import { OUTCOME_EXIT } from "@khosim/shared/abi";
import { FAULTS, applyFault, formatsOf, listFaults, type Fault, type FaultGroup, type MemHandoff } from "../src/faults/index.js";
import { bootMemHandoff, handoffDigest, kernelAInProcess } from "./fault-helpers.js";

const PER_FORMAT = FAULTS.filter((f) => f.formats !== undefined && f.input === undefined);
const FORMATS = [...new Set(PER_FORMAT.flatMap((f) => formatsOf(f)))].sort();
/* Two chunks in ranges, several bitmap chunks, bitmaps and leaves, 180 posted chunks: every structure has a second instance. */
const SCENARIO = {
  machine: { ram: "256M", scratch: { lowmem: "16M", global: "32M" } },
  ops: [
    { op: "test_kho", maxMem: "256K" },
    { op: "folios", count: 180, order: 0, layout: "isolated", fill: false },
    { op: "phys", size: "16K" },
  ],
};

/* What every reason of a group looks like: the object and where. */
const GROUP_REASON: Partial<Record<FaultGroup, RegExp>> = {
  "format-root": /^(KHO FDT at 0x[0-9a-f]+: \/|\d+ verification failure\(s\); first: 0x[0-9a-f]+: |.*(chunk list|metadata): [a-z-]+ is 0x[0-9a-f]+: )/,
  posted: /^chunk list: (chunk \d+ at 0x[0-9a-f]+: |.*chunk \d+ .*overlaps)/,
  bitmaps: /^(bitmaps(-page)? metadata: |\d+ verification failure\(s\); first: 0x[0-9a-f]+: )/,
  radix: /^(radix metadata: |\d+ verification failure\(s\); first: 0x[0-9a-f]+: )/,
};

const good = new Map<string, MemHandoff>();
const goodDigest = new Map<string, string>();
beforeAll(async () => {
  for (const f of FORMATS) {
    const h = (await kernelAInProcess(SCENARIO, 1, f as Parameters<typeof kernelAInProcess>[2], "(per-format faults)")).handoff;
    good.set(f, h);
    goodDigest.set(f, handoffDigest(h));
  }
}, 120_000);

function run(fault: Fault, format: string) {
  const damaged = good.get(format)!.clone();
  const applied = applyFault(damaged, fault, 1);
  const before = handoffDigest(damaged);
  const b = bootMemHandoff(damaged, applied.kernelBArgs);
  return { applied, b, unchanged: handoffDigest(damaged) === before };
}

describe("per-format faults in process: each kind on every format it names", () => {
  test("the undamaged handoff of every format revives", () => {
    for (const f of FORMATS) expect(bootMemHandoff(good.get(f)!, []).outcome, f).toBe("revived");
  });

  for (const fault of PER_FORMAT) {
    for (const format of formatsOf(fault)) {
      test(`${fault.kind} on ${format} -> ${fault.expect.outcome} (exit ${fault.expect.exitCode})`, () => {
        const { applied, b, unchanged } = run(fault, format);
        expect(applied.details.length, "the fault changed something").toBeGreaterThan(0);
        expect(b.writes, "the successor writes nothing to its input").toBe(0);
        expect(unchanged, "the successor's input is unchanged").toBe(true);
        expect(handoffDigest(good.get(format)!), "the undamaged handoff is unchanged").toBe(goodDigest.get(format));
        expect({ outcome: b.outcome, exitCode: b.exitCode }, b.reason).toEqual({ outcome: fault.expect.outcome, exitCode: OUTCOME_EXIT[fault.expect.outcome] });
        expect(b.reason).toMatch(GROUP_REASON[fault.group]!);
        for (const s of applied.reasonIncludes) expect(b.reason, "the reason names what is wrong").toContain(s);
      });
    }
  }

  test("--list names the formats of every kind", () => {
    const lines = listFaults().trimEnd().split("\n");
    for (const f of PER_FORMAT) expect(lines.find((l) => l.split(/\s+/).includes(f.kind))).toContain(formatsOf(f).join(","));
    expect(FORMATS).toEqual(["bitmaps", "bitmaps-page", "posted", "radix", "ranges"]);
  });
});
