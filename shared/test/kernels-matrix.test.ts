/*
 * The 25 (predecessor, successor) cells on test_kho's default workload, in
 * process: kernel-a's handoff builder with each version's predecessor
 * format, bootSuccessor with each version's successor. Each cell's outcome,
 * verdict and first consequence are pinned, so a change to any version's
 * behaviour fails here (docs/kernel-versions.md 4 derives each cell).
 */
import { beforeAll, expect, test } from "vitest";
import { KHO_KERNEL_NAMES, type KhoKernelName } from "../src/kho/kernels/versions.js";
import { predecessorInProcess, successorInProcess, type InProcessHandoff } from "./kernels-helpers.js";

const handoffs = new Map<KhoKernelName, InProcessHandoff>();
beforeAll(async () => {
  for (const p of KHO_KERNEL_NAMES) handoffs.set(p, await predecessorInProcess(p));
}, 120_000);

/* predecessor -> successor: verdict, lost pages, first lost, bytes read out of bounds, pfns outside RAM. */
const CELLS: Record<KhoKernelName, Record<KhoKernelName, [string, number, string | null, number, number]>> = {
  posting: {
    // The posting keeps its chunks reserved (spurious) but loses nothing.
    posting: ["intact", 0, null, 0, 0],
    // No root preserved-memory-map: kho_mem_deserialize returns, nothing reserved.
    "v6.16": ["pages-lost", 2051, "0x42000000", 0, 0],
    "v6.18": ["pages-lost", 2051, "0x42000000", 0, 0],
    "v6.19": ["refused", 0, null, 0, 0],
    "kho-v2": ["refused", 0, null, 0, 0],
  },
  "v6.16": {
    // No /preserved-memory node.
    posting: ["pages-lost", 2051, "0x42000000", 0, 0],
    "v6.16": ["intact", 0, null, 0, 0],
    // 4096 bytes read at each 512-byte bitmap; neighbouring slots' bits reach pfns outside RAM.
    "v6.18": ["would-corrupt", 0, null, 14336, 39],
    "v6.19": ["would-corrupt", 0, null, 14336, 39],
    "kho-v2": ["refused", 0, null, 0, 0],
  },
  "v6.18": {
    posting: ["pages-lost", 2051, "0x42000000", 0, 0],
    // Bits past 4096 of each one-page bitmap: the KHO FDT, kho_test FDT and info pages (the issue's 2048 of 2051).
    "v6.16": ["pages-lost", 3, "0x42800000", 0, 0],
    "v6.18": ["intact", 0, null, 0, 0],
    "v6.19": ["intact", 0, null, 0, 0],
    "kho-v2": ["refused", 0, null, 0, 0],
  },
  "v6.19": {
    posting: ["pages-lost", 2051, "0x42000000", 0, 0],
    "v6.16": ["pages-lost", 3, "0x42800000", 0, 0],
    "v6.18": ["intact", 0, null, 0, 0],
    "v6.19": ["intact", 0, null, 0, 0],
    "kho-v2": ["refused", 0, null, 0, 0],
  },
  "kho-v2": {
    posting: ["refused", 0, null, 0, 0],
    "v6.16": ["refused", 0, null, 0, 0],
    "v6.18": ["refused", 0, null, 0, 0],
    "v6.19": ["refused", 0, null, 0, 0],
    "kho-v2": ["intact", 0, null, 0, 0],
  },
};

const OUTCOME: Record<string, [string, number]> = {
  intact: ["revived", 0],
  refused: ["booted-without-kho", 3],
  "pages-lost": ["revived-unsafely", 4],
  "read-out-of-bounds": ["revived-unsafely", 4],
  "would-corrupt": ["revived-unsafely", 4],
};

for (const p of KHO_KERNEL_NAMES) {
  for (const s of KHO_KERNEL_NAMES) {
    const [verdict, lost, firstLost, oob, outside] = CELLS[p][s];
    test(`${p} -> ${s}: ${verdict}${lost ? `, ${lost} pages lost from ${firstLost}` : ""}`, () => {
      const r = successorInProcess(handoffs.get(p)!, s).report;
      const k = r.kernel!;
      expect([k.verdict, k.lostPages, k.firstLost, k.oobReadBytes, k.outsideRamPfns]).toEqual([verdict, lost, firstLost, oob, outside]);
      expect([r.outcome, r.exitCode]).toEqual(OUTCOME[verdict]);
      // A version that revives intact restores and verifies every kho_test folio.
      if (verdict === "intact") {
        expect(r.failureCount).toBe(0);
        expect(r.restored.folios).toBeGreaterThan(0);
      }
    });
  }
}

test("same-version pairs revive intact; the careful successor (no kernel) still revives every version's handoff but v6.18/v6.19 (unmarked one-page bitmaps)", () => {
  for (const p of KHO_KERNEL_NAMES) {
    expect(successorInProcess(handoffs.get(p)!, p).report.kernel!.verdict).toBe("intact");
    const careful = successorInProcess(handoffs.get(p)!, undefined).report;
    expect(careful.kernel).toBeUndefined();
    expect(careful.outcome, p).toBe(p === "v6.18" || p === "v6.19" ? "verification-failed" : "revived");
  }
});
