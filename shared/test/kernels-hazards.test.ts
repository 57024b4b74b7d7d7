/*
 * The version successor carries on where the kernel would, without
 * crashing or running unbounded: a chunk list that loops, a num_elms far
 * past the chunk, a radix root entry that makes an undefined key, and
 * random damage to every version's default handoff.
 */
import { beforeAll, describe, expect, test } from "vitest";
import { SuccessorReportSchema } from "../src/abi/handoff-json.js";
import { Prng } from "../src/lib/prng.js";
import { initCsum, u64leBytes } from "../src/lib/index.js";
import { OverlayMem } from "../src/mm/physmem.js";
import { KHO_KERNEL_NAMES } from "../src/kho/kernels/versions.js";
import { MAX_ENTRIES_PAST_CHUNK } from "../src/kho/kernels/walk.js";
import { UnusableInputError } from "../src/kho/in/early.js";
import { bitmapChunk, bits, handBuilt, predecessorInProcess, successorInProcess } from "./kernels-helpers.js";
import { defaultScenario } from "../src/kho/out/scenario.js";

beforeAll(async () => {
  await initCsum();
});

const RAM1 = { base: 0x40000000, size: 2 ** 30 };
const SCRATCH1 = { addr: 0x78000000, size: 0x8000000 };
const CHUNK = 0x50000000;
const BM = 0x50001000;

describe("walks that would not end", () => {
  test("a chunk whose next is itself: walked once, named, would-corrupt (the kernel loops forever)", () => {
    const h = handBuilt({ ram: RAM1, scratch: SCRATCH1, map: u64leBytes(CHUNK), folios: [], writes: [[CHUNK, bitmapChunk(CHUNK, 0, [[0x40000000, BM]])], [BM, bits(4096, [1, 2])]] });
    for (const n of ["v6.16", "v6.18", "v6.19"] as const) {
      const r = successorInProcess(h, n).report;
      expect(r.kernel!.verdict).toBe("would-corrupt");
      expect(r.reason).toContain("would walk it forever");
      expect(r.chunks[0]).toBe("0x50000000");
    }
  });

  test("num_elms 0xffffffff: entries past the chunk read and counted, the walk cut short after MAX_ENTRIES_PAST_CHUNK", () => {
    const c = bitmapChunk(0, 0, [[0x40000000, BM]]);
    c.set([0xff, 0xff, 0xff, 0xff], 12);
    const h = handBuilt({ ram: RAM1, scratch: SCRATCH1, map: u64leBytes(CHUNK), folios: [], writes: [[CHUNK, c], [BM, bits(512, [1, 2])]] });
    const r = successorInProcess(h, "v6.16").report;
    expect(r.kernel!.hazards.join("\n")).toContain("walk cut short");
    // Every entry past the chunk page is counted: 16 bytes each, the first at the chunk's end.
    expect(r.kernel!.oobReadBytes).toBeGreaterThanOrEqual((0xffffffff - 255) * 16);
    expect(r.kernel!.firstOobRead).toBe("0x50001000");
    expect(r.kernel!.verdict).toBe("read-out-of-bounds");
    expect(MAX_ENTRIES_PAST_CHUNK).toBe(65536);
  });

  test("kho-v2: a root entry at index 4 gives keys above bit 52 (undefined shift): named, would-corrupt", () => {
    const writes: [number, Uint8Array][] = [];
    for (let i = 0; i < 5; i++) {
      const node = new Uint8Array(4096);
      node.set(u64leBytes(0x50001000 + i * 4096), i === 0 ? 4 * 8 : 0);
      writes.push([0x50000000 + i * 4096, node]);
    }
    writes.push([0x50005000, bits(4096, [0])]);
    const h = handBuilt({ ram: RAM1, scratch: SCRATCH1, map: u64leBytes(0x50000000), compatible: ["kho-v2"], subtreeProp: "preserved-data", folios: [], writes });
    const r = successorInProcess(h, "kho-v2").report;
    expect(r.kernel!.verdict).toBe("would-corrupt");
    expect(r.reason).toContain("above 52");
  });
});

test("posting: num_ranges 2^64 - 1 reads more than 2^53 bytes past the chunk: the count saturates and the report stays schema-valid", async () => {
  const h = await predecessorInProcess("posting", { ...defaultScenario(), ops: [{ op: "test_kho", maxMem: 1 << 20 }] });
  const mem = new OverlayMem(h.mem);
  mem.write(h.chunks![0]! + 8, new Uint8Array(8).fill(0xff));
  const r = successorInProcess({ bootDtb: h.bootDtb, mem }, "posting").report;
  expect(r.kernel!.oobReadBytes).toBe(Number.MAX_SAFE_INTEGER);
  expect(r.kernel!.verdict).toBe("read-out-of-bounds");
  expect(SuccessorReportSchema.safeParse(JSON.parse(JSON.stringify(r))).success).toBe(true);
});

describe("random damage", () => {
  test("every version on every version's damaged test_kho handoff: a schema-valid report, never a throw (but UnusableInputError)", { timeout: 120_000 }, async () => {
    const rng = new Prng(12);
    for (const p of KHO_KERNEL_NAMES) {
      // test_kho at 1 MiB, not its default 8 MiB: the damage lands in the chunks and the KHO FDT; 300 boots need not hash 8 MiB each.
      const h = await predecessorInProcess(p, { ...defaultScenario(), ops: [{ op: "test_kho", maxMem: 1 << 20 }] });
      const targets = [...h.chunks!, h.khoFdtPhys!];
      for (let round = 0; round < 12; round++) {
        const mem = new OverlayMem(h.mem);
        for (let i = 0; i < 8; i++) {
          const page = targets[rng.below(targets.length)]!;
          mem.write(page + rng.below(round < 6 ? 64 : 4096), new Uint8Array([rng.below(256)]));
        }
        for (const s of KHO_KERNEL_NAMES) {
          let rep;
          try {
            rep = successorInProcess({ bootDtb: h.bootDtb, mem }, s).report;
          } catch (e) {
            expect(e, `${p} -> ${s} round ${round}`).toBeInstanceOf(UnusableInputError);
            continue;
          }
          expect(SuccessorReportSchema.safeParse(JSON.parse(JSON.stringify(rep))).success, `${p} -> ${s} round ${round}`).toBe(true);
        }
      }
    }
  });
});
