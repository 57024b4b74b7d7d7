/*
 * Machines with RAM banks and holes: the memory.img mapping (abi/ram.ts),
 * the boot DTB's memory nodes with numa-node-id and their untrusted-input
 * checks, and in-process handoffs on the two-node scenario: every bank
 * memblock_add()ed, scratch learnt from the handoff alone, early
 * allocations confined to scratch, a preserved page in a hole refused.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildBootDtb, parseBootDtb, BootDtbError } from "../src/abi/boot-dtb.js";
import { ramContains, ramFileOffset, ramPhysOfFileOffset, ramTotal, type RamBank } from "../src/abi/ram.js";
import { FdtWriter } from "../src/fdt/index.js";
import { bootSuccessor } from "../src/kho/in/successor.js";
import { coldBootMachine, runAndFinalize } from "../src/kho/out/predecessor.js";
import { loadScenario, parseScenario, ScenarioError } from "../src/kho/out/scenario.js";
import { rangesFormat } from "../src/kho/formats/index.js";
import { initCsum } from "../src/lib/csum.js";
import { u64beCells } from "../src/lib/bytes.js";
import { ImageMem, writeImage } from "../src/mm/image.js";
import { MEMBLOCK_RSRV_KERN } from "../src/mm/memblock/index.js";
import { checkPhysAccess, PhysMemError, SparseMem, type PhysMem } from "../src/mm/physmem.js";
import { quiet } from "./kernels-helpers.js";
import { thrownBy } from "./thrown.js";

const K = 1024;
const M = 2 ** 20;
const G = 2 ** 30;
/* The x86-like map of scenarios/x86-holes.json. */
const X86: RamBank[] = [
  { base: 0, size: 640 * K, node: 0 },
  { base: M, size: 3 * G - M, node: 0 },
  { base: 4 * G, size: 2 * G, node: 0 },
];
const x86 = { base: 0, size: 6 * G, banks: X86 };

let dir = "";
beforeAll(async () => {
  await initCsum();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "khosim-banks-"));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe("memory.img maps the banks back to back", () => {
  it("file offsets by hand: a bank starts where the banks below it end in the file", () => {
    expect(ramFileOffset(x86, 0)).toBe(0);
    expect(ramFileOffset(x86, M)).toBe(640 * K);
    expect(ramFileOffset(x86, 4 * G)).toBe(640 * K + 3 * G - M);
    expect(ramFileOffset(x86, 4 * G + 0x1234)).toBe(640 * K + 3 * G - M + 0x1234);
    expect(ramTotal(x86)).toBe(640 * K + 3 * G - M + 2 * G);
    for (const off of [0, 640 * K - 1, 640 * K, 3 * G - 384 * K, ramTotal(x86) - 1]) expect(ramFileOffset(x86, ramPhysOfFileOffset(x86, off))).toBe(off);
    expect(() => ramFileOffset(x86, 3 * G)).toThrow(/hole/);
    // One bank is today's layout: offset = phys - base.
    expect(ramFileOffset({ base: G, size: G }, G + 4096)).toBe(4096);
  });

  it("RAM is the banks: a range may cross touching banks, never a hole", () => {
    const touching = { base: G, size: 2 * G, banks: [{ base: G, size: G, node: 0 }, { base: 2 * G, size: G, node: 1 }] };
    expect(ramContains(touching, 2 * G - 4096, 8192)).toBe(true);
    expect(ramContains(x86, 640 * K - 4096, 4096)).toBe(true);
    expect(ramContains(x86, 640 * K - 4096, 8192)).toBe(false);
    expect(ramContains(x86, 3 * G, 4096)).toBe(false);
    expect(ramContains(x86, 6 * G - 4096, 4096)).toBe(true);
  });

  it("a hole costs no file length: the image is the banks' total, and reads back at the same addresses", () => {
    const mem = new SparseMem(0, 6 * G, X86);
    const a = new Uint8Array(8192).fill(0xa5);
    const b = new Uint8Array(4096).fill(0x5a);
    mem.write(640 * K - 4096, a.subarray(0, 4096));
    mem.write(4 * G, b);
    expect(() => mem.write(3 * G + 4096, b)).toThrow(PhysMemError);
    const file = path.join(dir, "x86.img");
    writeImage(file, mem);
    // 6 GiB of address space, 1 GiB + 384 KiB of it holes: the file is 5 GiB - 384 KiB long.
    expect(fs.statSync(file).size).toBe(5 * G - 384 * K);
    const img = ImageMem.open(file, 0, 6 * G, X86);
    try {
      expect(img.read(640 * K - 4096, 4096)).toEqual(a.subarray(0, 4096));
      expect(img.read(4 * G, 4096)).toEqual(b);
      expect(img.read(M, 4096)).toEqual(new Uint8Array(4096));
      expect(() => img.read(3 * G, 16)).toThrow(/hole between RAM banks/);
    } finally {
      img.close();
    }
    expect(() => ImageMem.open(file, 0, 6 * G)).toThrow(/does not match RAM size/);
  });
});

/* A boot DTB with memory nodes given as [unit address, reg bytes, numa-node-id bytes?]. */
function dtbWith(mems: [string, Uint8Array, Uint8Array?][]): Uint8Array {
  const w = new FdtWriter();
  w.finishReservemap();
  w.beginNode("");
  w.propertyU32("#address-cells", 2);
  w.propertyU32("#size-cells", 2);
  for (const [name, reg, nid] of mems) {
    w.beginNode(`memory@${name}`);
    w.propertyString("device_type", "memory");
    w.property("reg", reg);
    if (nid) w.property("numa-node-id", nid);
    w.endNode();
  }
  w.endNode();
  return w.finish();
}

describe("boot DTB memory nodes", () => {
  it("one memory@ node per bank, numa-node-id on each when NUMA, read back as the banks", () => {
    const banks: RamBank[] = [
      { base: G, size: 2 * G, node: 0 },
      { base: 4 * G, size: 2 * G, node: 1 },
    ];
    const info = parseBootDtb(buildBootDtb({ base: G, size: 5 * G, banks, numa: true }));
    expect(info).toMatchObject({ ram: { base: G, size: 5 * G }, banks, numa: true });
    // One bank without NUMA stays the old shape: no banks, no numa.
    expect(parseBootDtb(buildBootDtb({ base: G, size: G }))).toEqual({ ram: { base: G, size: G } });
  });

  const be32 = (v: number): Uint8Array => new Uint8Array([v >>> 24, (v >>> 16) & 255, (v >>> 8) & 255, v & 255]);
  it.each([
    ["overlapping banks", [["40000000", u64beCells(G, G)], ["60000000", u64beCells(1.5 * G, G)]], /memory@60000000\/reg: .*overlaps or precedes/],
    ["unsorted banks", [["100000000", u64beCells(4 * G, G)], ["40000000", u64beCells(G, G)]], /memory@40000000\/reg: .*overlaps or precedes/],
    ["a zero-size bank", [["40000000", u64beCells(G, G)], ["100000000", u64beCells(4 * G, 0)]], /memory@100000000\/reg: .*empty or not page aligned/],
    ["a bank beyond 2^53", [["40000000", u64beCells(G, G)], ["big", u64beCells(2n ** 53n, 4096n)]], /memory@big\/reg: .*beyond 2\^53/],
    ["numa-node-id of 8 bytes", [["40000000", u64beCells(G, G), new Uint8Array(8)]], /numa-node-id: length 8, expected 4/],
    ["numa-node-id past MAX_NUMNODES", [["40000000", u64beCells(G, G), be32(4096)]], /numa-node-id: node 4096/],
    ["numa-node-id on some banks only", [["40000000", u64beCells(G, G), be32(0)], ["100000000", u64beCells(4 * G, G)]], /1 of 2 memory nodes have numa-node-id/],
  ] as [string, [string, Uint8Array, Uint8Array?][], RegExp][])("refuses %s with one line naming the node and field", (_why, mems, msg) => {
    const err = thrownBy(BootDtbError, () => parseBootDtb(dtbWith(mems)));
    expect(err.message).toMatch(msg);
    expect(err.message).not.toContain("\n");
  });
});

describe("scenario machine.banks", () => {
  it("banks replace ram/ramBase (span), nodes default past the highest bank node; both forms at once is one clear error", () => {
    const s = loadScenario(path.join(__dirname, "../../scenarios/numa-2node.json"));
    expect(s.machine).toMatchObject({ ramBase: G, ram: 5 * G, nodes: 2 });
    expect(() => parseScenario({ machine: { ram: "1G", banks: [{ base: "1G", size: "1G" }] } }, "x.json")).toThrow(/give machine.banks or machine.ram\/ramBase, not both/);
    expect(() => parseScenario({ machine: { banks: [{ base: "2G", size: "1G" }, { base: "1G", size: "1G" }] } }, "x.json")).toThrow(ScenarioError);
    expect(() => parseScenario({ machine: { banks: [{ base: "1G", size: "1G", node: 1 }], nodes: 1 } }, "x.json")).toThrow(/machine.nodes/);
    const twoBanks = [{ base: "1G", size: "1G" }, { base: "4G", size: "1G" }];
    expect(() => parseScenario({ machine: { banks: twoBanks }, ops: [{ op: "phys", size: "8K", at: "0x7ffff000" }] }, "x.json")).toThrow(/ops\[0\]\.at: .*hole between machine.banks/);
  });
});

/* A view of @mem as a machine with @banks (the same bytes at the same addresses). */
function asBanks(mem: PhysMem, banks: RamBank[]): PhysMem {
  const view: PhysMem = {
    base: banks[0]!.base,
    size: banks[banks.length - 1]!.base + banks[banks.length - 1]!.size - banks[0]!.base,
    banks,
    read: (p, l) => {
      checkPhysAccess(view, p, l);
      return mem.read(p, l);
    },
    write: () => {
      throw new Error("read-only");
    },
  };
  return view;
}

describe("a handoff on the two-node machine, in process", () => {
  const s = loadScenario(path.join(__dirname, "../../scenarios/numa-2node.json"));
  let m: ReturnType<typeof coldBootMachine>;
  let handoff: ReturnType<typeof runAndFinalize>["handoff"];
  beforeAll(async () => {
    await initCsum();
    m = coldBootMachine(s, quiet);
    handoff = runAndFinalize(m, s, 5, "numa-2node.json", quiet, rangesFormat).handoff;
  });

  it("the successor memblock_adds every bank, learns the four scratch areas from the array and allocates early only inside them", () => {
    const boot = parseBootDtb(handoff.bootDtb);
    expect(boot.banks).toEqual(s.machine.banks);
    const sb = bootSuccessor(boot, m.mem, { maxOrder: 10, log: quiet });
    expect(sb.report.outcome, sb.report.reason ?? "").toBe("revived");
    // memblock.memory is the banks (regions split where scratch is marked; merged back here).
    const merged: [number, number][] = [];
    for (const r of sb.memblock.regions("memory")) {
      const last = merged[merged.length - 1];
      if (last && last[0] + last[1] === r.base) last[1] += r.size;
      else merged.push([r.base, r.size]);
    }
    expect(merged).toEqual([
      [G, 2 * G],
      [4 * G, 2 * G],
    ]);
    // The array order of the predecessor, learnt back sorted by address.
    expect(sb.scratch).toEqual([...m.scratch].sort((a, b) => a.addr - b.addr));
    expect(m.scratch).toHaveLength(4);
    const early = sb.memblock.regions("reserved").filter((r) => r.flags & MEMBLOCK_RSRV_KERN);
    expect(early.length).toBeGreaterThan(0);
    // Touching scratch areas (node 1's ends where global starts) are one span for this check.
    const spans: [number, number][] = [];
    for (const a of sb.scratch) {
      const last = spans[spans.length - 1];
      if (last && last[1] === a.addr) last[1] = a.addr + a.size;
      else spans.push([a.addr, a.addr + a.size]);
    }
    for (const r of early) expect(spans.some(([lo, hi]) => r.base >= lo && r.base + r.size <= hi), `early allocation at ${r.base.toString(16)}`).toBe(true);
  });

  it("a preserved range that lies in a hole of the successor's RAM is refused: pfn_to_online_page is NULL", () => {
    // The scenario preserves 2M at 4G; a successor whose node 1 starts 4M higher has no memory there.
    const banks: RamBank[] = [
      { base: G, size: 2 * G, node: 0 },
      { base: 4 * G + 4 * M, size: 2 * G - 4 * M, node: 1 },
    ];
    const sa = { addr: handoff.scratchPhys, size: m.scratch.length * 16 };
    const boot = parseBootDtb(buildBootDtb({ base: G, size: 5 * G, banks, numa: true }, { addr: handoff.khoFdtPhys, size: handoff.khoFdt.length }, sa));
    const sb = bootSuccessor(boot, asBanks(m.mem, banks), { maxOrder: 10, log: quiet });
    expect(sb.report.outcome).toBe("verification-failed");
    expect(sb.report.failures).toContainEqual({ kind: "range", phys: "0x100000000", reason: "pfn_to_online_page(0x100000) is NULL: 0x100000000 lies in a hole between RAM banks, restore fails" });
  });
});

describe("the x86-like layout (scenarios/x86-holes.json), in process", () => {
  it("reserves [0, 1 MiB) and the kernel at 16 MiB, sizes scratch by hand and revives with the banks' memory only", async () => {
    await initCsum();
    const s = loadScenario(path.join(__dirname, "../../scenarios/x86-holes.json"));
    const m = coldBootMachine(s, quiet);
    // Kern: 32M kernel at 16M (below 4G) and an 80M - 6K memmap at the top of [4G, 6G): lowmem 2 x 32M = 64M at the
    // top of [1M, 3G); global 2 x (112M - 6K) - 64M -> 160M; node 0 (kernel, memmap, array page, lowmem, global)
    // 2 x (336M - 2K) -> 672M.
    expect(m.scratch).toEqual([
      { addr: 3 * G - 64 * M, size: 64 * M },
      { addr: 0x1_7100_0000, size: 160 * M },
      { addr: 0x1_4700_0000, size: 672 * M },
    ]);
    expect(m.memblock.memblockIsRegionReserved(0, 640 * K)).toBe(true);
    expect(m.memblock.memblockIsRegionReserved(16 * M, 32 * M)).toBe(true);
    expect(m.memblock.memblockPhysMemSize()).toBe(ramTotal({ base: 0, size: 6 * G, banks: X86 }));
    const { handoff } = runAndFinalize(m, s, 3, "x86-holes.json", quiet, rangesFormat);
    const sb = bootSuccessor(parseBootDtb(handoff.bootDtb), m.mem, { maxOrder: 10, log: quiet });
    expect(sb.report.outcome, sb.report.reason ?? "").toBe("revived");
    expect(sb.report.memblock.memory).toBe("0x" + ramTotal({ base: 0, size: 6 * G, banks: X86 }).toString(16));
  });
});

describe("kho_scratch= on the one-bank form", () => {
  it("switches to the kernel's placement with the explicit sizes, keeping one memory node without numa-node-id", async () => {
    await initCsum();
    const s = parseScenario({ machine: { ram: "1G", cmdline: "quiet kho_scratch=16M,32M,3M" }, ops: [{ op: "test_kho", maxMem: "1M" }] }, "one.json");
    const m = coldBootMachine(s, quiet);
    expect(m.scratch.map((a) => a.size)).toEqual([16 * M, 32 * M, 4 * M]);
    // Array order: lowmem, global, node 0 (top-down: each below the one before).
    expect(m.scratch[1]!.addr).toBeLessThan(m.scratch[0]!.addr);
    const { handoff } = runAndFinalize(m, s, 1, "one.json", quiet, rangesFormat);
    const boot = parseBootDtb(handoff.bootDtb);
    expect(boot.ram).toEqual({ base: G, size: G });
    expect(boot.banks).toBeUndefined();
    expect(bootSuccessor(boot, m.mem, { maxOrder: 10, log: quiet }).report.outcome).toBe("revived");
  });
});
