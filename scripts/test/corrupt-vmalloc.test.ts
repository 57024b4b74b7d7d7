/*
 * The vmalloc faults of the catalogue (faults/vmalloc.ts), in process: each
 * kind applied to the handoff of its input scenario (Fault.input,
 * scenarios/vmalloc.json), made by kernel-a's own code, on the ranges and
 * bitmaps-page formats, and booted by the successor's boot function. Each
 * must give verification-failed (exit 1), name the area, field and offset,
 * fail only the damaged area (the others still verify), write nothing to its
 * input and leave the undamaged handoff as it was.
 */
import * as path from "node:path";
import { beforeAll, describe, expect, test } from "vitest";
import { OUTCOME_EXIT } from "@khosim/shared/abi";
import { FAULTS, applyFault, listFaults, type MemHandoff } from "../src/faults/index.js";
import { ROOT } from "../src/run.js";
import { bootMemHandoff, handoffDigest, makeMemHandoff } from "./fault-helpers.js";

const WITH_INPUT = FAULTS.filter((f) => f.input === "scenarios/vmalloc.json");
const FORMATS = ["ranges", "bitmaps-page"];
const good = new Map<string, MemHandoff>();
const goodDigest = new Map<string, string>();

beforeAll(async () => {
  for (const f of FORMATS) {
    const h = await makeMemHandoff(path.join(ROOT, "scenarios/vmalloc.json"), undefined, f as Parameters<typeof makeMemHandoff>[2]);
    good.set(f, h);
    goodDigest.set(f, handoffDigest(h));
  }
}, 120_000);

describe("vmalloc faults in process", () => {
  test("the catalogue has a kind for each descriptor field and chunk field, all on scenarios/vmalloc.json", () => {
    expect(WITH_INPUT.map((f) => f.kind).sort()).toEqual([
      "vmalloc-chunk-next-loop",
      "vmalloc-chunk-next-outside-ram",
      "vmalloc-first-unpreserved",
      "vmalloc-flags-unknown",
      "vmalloc-order",
      "vmalloc-phys-entry",
      "vmalloc-terminator",
      "vmalloc-total-pages-long",
      "vmalloc-total-pages-short",
    ]);
    for (const f of WITH_INPUT) expect(f.input).toBe("scenarios/vmalloc.json");
    const lines = listFaults();
    for (const f of WITH_INPUT) expect(lines).toContain(f.kind);
  });

  test("the undamaged handoffs revive with every area verified", () => {
    for (const f of FORMATS) {
      const b = bootMemHandoff(good.get(f)!, []);
      expect(b.outcome, b.reason).toBe("revived");
      expect(b.report!.vmalloc!.every((v) => v.outcome === "verified")).toBe(true);
    }
  });

  for (const fault of WITH_INPUT) {
    for (const format of FORMATS) {
      for (const seed of [1, 2]) {
        test(`${fault.kind} on ${format}, seed ${seed} -> ${fault.expect.outcome}`, () => {
          const damaged = good.get(format)!.clone();
          const applied = applyFault(damaged, fault, seed);
          expect(applied.details.length, "the fault changed something").toBeGreaterThan(0);
          const before = handoffDigest(damaged);
          const b = bootMemHandoff(damaged, applied.kernelBArgs);
          expect(b.writes).toBe(0);
          expect(handoffDigest(damaged)).toBe(before);
          expect(handoffDigest(good.get(format)!)).toBe(goodDigest.get(format));
          expect({ outcome: b.outcome, exitCode: b.exitCode }, b.reason).toEqual({ outcome: "verification-failed", exitCode: OUTCOME_EXIT["verification-failed"] });
          expect(b.reason).toMatch(/^\d+ verification failure\(s\); first: 0x[0-9a-f]+: kho_restore_vmalloc failed: vmalloc\[\d\]\.[a-z_]+(\[\d+\])? \((descriptor|chunk 0x[0-9a-f]+) offset \d+\): /);
          for (const s of applied.reasonIncludes) expect(b.reason).toContain(s);
          const rep = b.report!;
          const want = applied.failure!;
          expect(rep.failures.find((f) => f.kind === "vmalloc" && f.phys === want.phys), JSON.stringify(rep.failures)).toBeDefined();
          // Only the damaged area fails; the others restore and verify.
          const bad = rep.vmalloc!.filter((v) => v.outcome !== "verified");
          expect(bad).toHaveLength(1);
          expect(bad[0]!.outcome).toBe("restore-failed");
          expect(rep.vmalloc!.length).toBe(4);
          expect(rep.verified.folios).toBe(rep.restored.folios);
        });
      }
    }
  }
});
