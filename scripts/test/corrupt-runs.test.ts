/*
 * The run-table faults of the catalogue (faults/runs.ts), in process: each
 * kind applied to the ranges handoff of an unfilled scenario (its kho_test
 * folio table is runs, kho-test-v2), booted by the successor's boot
 * function. Each must give verification-failed (exit 1) with one line
 * naming the run entry, its offset in the blob and the field's fault,
 * write nothing to its input and leave the undamaged handoff as it was.
 */
import * as path from "node:path";
import { beforeAll, describe, expect, test } from "vitest";
import { HANDOFF_BOOT_DTB, MAX_PAGE_ORDER, OUTCOME_EXIT, PAGE_SIZE } from "@khosim/shared/abi";
import { bootSuccessor, parseSuccessorBootDtb } from "@khosim/shared/kho";
import { FAULTS, RUNS_INPUT, applyFault, listFaults, type MemHandoff } from "../src/faults/index.js";
import { ROOT } from "../src/run.js";
import { bootMemHandoff, handoffDigest, makeMemHandoff, readOnly } from "./fault-helpers.js";

const RUN_KINDS = FAULTS.filter((f) => f.input === RUNS_INPUT);
let good: MemHandoff;
let goodDigest: string;

beforeAll(async () => {
  good = await makeMemHandoff(path.join(ROOT, RUNS_INPUT));
  goodDigest = handoffDigest(good);
}, 120_000);

describe("kho_test run faults in process", () => {
  test("the catalogue has the four run kinds, listed", () => {
    expect(RUN_KINDS.map((f) => f.kind).sort()).toEqual(["runs-bad-order", "runs-count-past-ram", "runs-count-zero", "runs-overlap"]);
    for (const f of RUN_KINDS) expect(listFaults()).toContain(f.kind);
  });

  test("the undamaged handoff is run-encoded and revives with every folio restored", () => {
    const b = bootMemHandoff(good, []);
    expect(b.outcome, b.reason).toBe("revived");
    expect(b.report!.restored.folios).toBeGreaterThan(0);
  });

  test("folios a run table lists but the successor cannot restore are named and dropped, the table kept as runs", () => {
    const boot = parseSuccessorBootDtb(good.bootDtb!, HANDOFF_BOOT_DTB);
    const all = bootSuccessor(boot, readOnly(good.openImage(boot.ram.base, boot.banks)), { maxOrder: MAX_PAGE_ORDER });
    expect(all.report.outcome).toBe("revived");
    const total = all.carried.folios!.live;
    // data-order-above-max: kernel-b's --max-order one below the highest preserved order, so those folios are refused.
    const applied = applyFault(good.clone(), FAULTS.find((f) => f.kind === "data-order-above-max")!, 1);
    const maxOrder = Number(applied.kernelBArgs[applied.kernelBArgs.indexOf("--max-order") + 1]);
    const sb = bootSuccessor(boot, readOnly(good.openImage(boot.ram.base, boot.banks)), { maxOrder });
    expect(sb.report.outcome).toBe("verification-failed");
    expect(sb.report.failureCount).toBeGreaterThan(0);
    const t = sb.carried.folios!;
    // Killed without making the 17-bytes-a-folio columns: still runs, one folio fewer per failure.
    expect(t.isRuns).toBe(true);
    expect(t.live + sb.report.failureCount).toBe(total);
    const gone = new Set(sb.report.failures.filter((f) => f.kind === "folio").map((f) => Number(f.phys)));
    expect(gone.size).toBeGreaterThan(0);
    const r = t.liveRuns();
    let listed = 0;
    for (let k = 0; k < r.n; k++) {
      for (let j = 0; j < r.count[k]!; j++) expect(gone.has(r.base[k]! + j * PAGE_SIZE * 2 ** r.order[k]!)).toBe(false);
      listed += r.count[k]!;
    }
    expect(listed).toBe(t.live);
  });

  for (const fault of RUN_KINDS) {
    for (const seed of [1, 2]) {
      test(`${fault.kind}, seed ${seed} -> verification-failed, naming the entry and offset`, () => {
        const damaged = good.clone();
        const applied = applyFault(damaged, fault, seed);
        expect(applied.details.length).toBeGreaterThan(1);
        const before = handoffDigest(damaged);
        const b = bootMemHandoff(damaged, applied.kernelBArgs);
        expect(b.writes).toBe(0);
        expect(handoffDigest(damaged)).toBe(before);
        expect(handoffDigest(good)).toBe(goodDigest);
        expect({ outcome: b.outcome, exitCode: b.exitCode }, b.reason).toEqual({ outcome: "verification-failed", exitCode: OUTCOME_EXIT["verification-failed"] });
        expect(b.reason).toMatch(/^1 verification failure\(s\); first: kho_test folio_runs\[\d+\] \(info \+0x[0-9a-f]+\): /);
        for (const s of [...fault.expect.reasonIncludes!, ...applied.reasonIncludes]) expect(b.reason).toContain(s);
        // Refused before any folio was restored.
        expect(b.report!.restored.folios).toBe(0);
      });
    }
  }
});
