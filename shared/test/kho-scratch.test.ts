/*
 * kho_scratch= and kho_reserve_scratch() (kernel/liveupdate/kexec_handover.c
 * @ dd03dd60e8cd and 019fc3687237): the grammar with every reject, the 200 %
 * rule with CMA rounding and the explicit sizes on hand-computed memblocks,
 * the array order lowmem/global/per node, and the memoryless-node case per
 * kernel version.
 */
import { describe, expect, it } from "vitest";
import { Memblock } from "../src/mm/memblock/index.js";
import {
  CMA_MIN_ALIGNMENT_BYTES,
  khoParseScratchSize,
  khoReserveScratch,
  khoScratchDefaults,
  memblockReservedKernSize,
  parseKhoScratchCmdline,
  scratchSizeUpdate,
} from "../src/mm/kho-scratch.js";
import type { RamBank } from "../src/abi/ram.js";
import type { Logger } from "../src/lib/log.js";

const M = 2 ** 20;
const G = 2 ** 30;

function parsed(v: string | undefined): ReturnType<typeof khoScratchDefaults> | undefined {
  const p = khoScratchDefaults();
  return khoParseScratchSize(p, v) === undefined ? undefined : p;
}

describe("kho_scratch= grammar (kho_parse_scratch_size)", () => {
  it("accepts N% with at most 10 characters before the %, kstrtouint's '+' and the full u32 range", () => {
    expect(parsed("50%")).toMatchObject({ scale: 50 });
    expect(parsed("+7%")).toMatchObject({ scale: 7 });
    expect(parsed("0%")).toMatchObject({ scale: 0, lowmem: 0n });
    expect(parsed("4294967295%")).toMatchObject({ scale: 4294967295 });
  });

  it("accepts exactly three memparse values: suffixes, 0x hex and leading-0 octal, one of them non-zero", () => {
    expect(parsed("16M,512M,256M")).toEqual({ scale: 0, lowmem: 16n * 2n ** 20n, global: 512n * 2n ** 20n, pernode: 256n * 2n ** 20n });
    expect(parsed("0x1000,0,0")).toEqual({ scale: 0, lowmem: 4096n, global: 0n, pernode: 0n });
    expect(parsed("010,0,1k")).toEqual({ scale: 0, lowmem: 8n, global: 0n, pernode: 1024n });
  });

  it.each([
    ["bare word", undefined],
    ["empty value", ""],
    ["just %", "%"],
    ["11 digits before %", "12345678901%"],
    ["u32 overflow (-ERANGE)", "4294967296%"],
    ["negative scale", "-1%"],
    ["fractional scale", "1.5%"],
    ["two sizes", "16M,512M"],
    ["four sizes", "1M,1M,1M,1M"],
    ["trailing comma", "16M,512M,256M,"],
    ["empty middle value", "16M,,256M"],
    ["unknown suffix", "16Q,1M,1M"],
    ["all zero", "0,0,0"],
    ["sum wraps to 0 in size_t", "0x8000000000000000,0x8000000000000000,0"],
    ["space separated", "16M;512M;256M"],
  ])("rejects %s and keeps the values it had", (_why, v) => {
    const p = khoScratchDefaults();
    p.scale = 123;
    expect(khoParseScratchSize(p, v)).toBeUndefined();
    expect(p).toEqual({ scale: 123, lowmem: 0n, global: 0n, pernode: 0n });
  });

  it("runs every word in order: a malformed one warns as do_early_param and keeps the earlier setting", () => {
    const lines: string[] = [];
    const log = { info: (m: string) => lines.push(`info ${m}`), warn: (m: string) => lines.push(`warn ${m}`) } as unknown as Logger;
    expect(parseKhoScratchCmdline("console=ttyS0 kho_scratch=50% kho_scratch=bogus", log)).toMatchObject({ scale: 50 });
    expect(lines).toEqual(["info KHO: scratch scale is 50%", "warn Malformed early option 'kho_scratch'"]);
    expect(parseKhoScratchCmdline("console=ttyS0 reserve_mem=1M:4K:x")).toBeUndefined();
    lines.length = 0;
    expect(parseKhoScratchCmdline("kho_scratch=16M,512M,256M", log)).toMatchObject({ scale: 0 });
    expect(lines).toEqual(["info KHO: scratch areas: lowmem: 16MiB global: 512MiB pernode: 256MiB"]);
  });
});

/* RAM [1G, 5G) on node 0; 32 MiB kernel at 1G (below 4G) and a 64 MiB memmap at the top (above 4G), both MEMBLOCK_RSRV_KERN. */
function machine(): { mb: Memblock; nodes: Map<number, RamBank[]> } {
  const mb = new Memblock();
  mb.memblockAdd(G, 4 * G);
  mb.memblockReserveKern(G, 32 * M);
  expect(mb.memblockPhysAllocRange(64 * M, 4096, 4 * G, 5 * G)).toBe(5 * G - 64 * M);
  return { mb, nodes: new Map([[0, [{ base: G, size: 4 * G, node: 0 }]]]) };
}

describe("scratch sizes and placement (scratch_size_update, scratch_size_node, kho_reserve_scratch)", () => {
  it("percent mode, by hand: lowmem 2 x 32M, global 2 x 96M - 64M, node 0 2 x everything kern on it by then, rounded to 2M", () => {
    const { mb, nodes } = machine();
    expect(memblockReservedKernSize(mb, 2 ** 32)).toBe(32 * M);
    expect(scratchSizeUpdate(khoScratchDefaults(), mb)).toEqual({ lowmem: 64n * 2n ** 20n, global: 128n * 2n ** 20n });
    const got = khoReserveScratch(mb, khoScratchDefaults(), nodes, false);
    if (!("areas" in got)) throw new Error(got.failed);
    // The array page sits just below the memmap; lowmem is the top 64M below 4G; global the highest 2M-aligned 128M below the array.
    expect(got.array).toBe(5 * G - 64 * M - 4096);
    // Node 0 by then holds kernel 32M + memmap 64M + array 4K + lowmem 64M + global 128M = 288M + 4K: x 2 = 576M + 8K, up to 578M.
    expect(got.areas).toEqual([
      { kind: "lowmem", addr: 0xfc00_0000, size: 64 * M },
      { kind: "global", addr: 0x1_33e0_0000, size: 128 * M },
      { kind: 0, addr: 0x1_0fc0_0000, size: 578 * M },
    ]);
    for (const a of got.areas) expect(a.addr % CMA_MIN_ALIGNMENT_BYTES).toBe(0);
  });

  it("rounds up to CMA_MIN_ALIGNMENT_BYTES, and a global size that goes below 0 in u64 wraps back to 0", () => {
    const mb = new Memblock();
    mb.memblockAdd(G, G);
    mb.memblockReserveKern(G, 3 * M + 4096);
    // 2 x (3M + 4K) = 6M + 8K -> 8M; global: 6M + 8K - 8M wraps, round_up wraps to 0.
    expect(scratchSizeUpdate(khoScratchDefaults(), mb)).toEqual({ lowmem: 8n * 2n ** 20n, global: 0n });
  });

  it("explicit mode: lowmem and global as given, the per-node size rounded up", () => {
    const { mb, nodes } = machine();
    const p = parseKhoScratchCmdline("kho_scratch=1M,16M,3M")!;
    const got = khoReserveScratch(mb, p, nodes, false);
    if (!("areas" in got)) throw new Error(got.failed);
    expect(got.areas.map((a) => [a.kind, a.size])).toEqual([
      ["lowmem", 1 * M],
      ["global", 16 * M],
      [0, 4 * M],
    ]);
  });

  it("orders the array lowmem, global, then nodes by id, each node's area inside that node's banks", () => {
    const mb = new Memblock();
    const banks: RamBank[] = [
      { base: G, size: 2 * G, node: 0 },
      { base: 4 * G, size: 2 * G, node: 1 },
    ];
    for (const b of banks) mb.memblockAdd(b.base, b.size);
    mb.memblockReserveKern(G, 32 * M);
    const nodes = new Map([
      [0, [banks[0]!]],
      [1, [banks[1]!]],
    ]);
    const got = khoReserveScratch(mb, khoScratchDefaults(), nodes, false);
    if (!("areas" in got)) throw new Error(got.failed);
    expect(got.areas.map((a) => a.kind)).toEqual(["lowmem", "global", 0, 1]);
    expect(got.areas[0]!.addr + got.areas[0]!.size).toBeLessThanOrEqual(2 ** 32);
    const n0 = got.areas[2]!;
    const n1 = got.areas[3]!;
    expect(n0.addr >= G && n0.addr + n0.size <= 3 * G).toBe(true);
    expect(n1.addr >= 4 * G && n1.addr + n1.size <= 6 * G).toBe(true);
  });

  it("a memoryless node: 6.16-6.19 (every online node) fail and free everything; the fix (N_MEMORY) skips it", () => {
    for (const online of [true, false]) {
      const { mb, nodes } = machine();
      nodes.set(1, []);
      const before = mb.memblockReservedSize();
      const got = khoReserveScratch(mb, khoScratchDefaults(), nodes, online);
      if (online) {
        expect(got).toEqual({ failed: expect.stringContaining("node 1 (memoryless) scratch") });
        expect((got as { failed: string }).failed).toContain("disabling kexec handover");
        expect(mb.memblockReservedSize()).toBe(before);
      } else {
        expect("areas" in got && got.areas.map((a) => a.kind)).toEqual(["lowmem", "global", 0]);
      }
    }
  });
});
