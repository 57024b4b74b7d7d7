/*
 * vmalloc preservation (kernel/liveupdate/kexec_handover.c @dd03dd60e8,
 * kho_preserve_vmalloc / kho_unpreserve_vmalloc / kho_restore_vmalloc):
 * descriptor and chunk bytes computed by hand, the chunk chain's shape at
 * the 511-entry boundary, huge (order 9) areas, rollback, and every restore
 * check on a successor-side KhoRestore built from the tracker's ranges.
 */
import { describe, expect, it } from "vitest";
import {
  KHO_VMALLOC_SIZE,
  decodeKhoVmalloc,
  decodeKhoVmallocChunk,
  encodeKhoVmalloc,
  encodeKhoVmallocChunk,
  khoVmallocEntryOffset,
  type KhoVmalloc,
} from "../src/abi/kho-vmalloc.js";
import { PAGE_SIZE } from "../src/abi/page.js";
import { rangesFormat, bitmapsPageFormat, type KhoTracker } from "../src/kho/formats/index.js";
import { KhoRestore, khoRangeTableOf } from "../src/kho/in/restore.js";
import { KhoVmallocRestoreError, khoRestoreVmalloc, khoRestoreVmallocChunks } from "../src/kho/in/vmalloc.js";
import { KhoErrnoError } from "../src/kho/out/pages.js";
import { khoPreserveVmalloc, khoUnpreserveVmalloc, vmallocArea } from "../src/kho/out/vmalloc.js";
import { defaultScenario } from "../src/kho/out/scenario.js";
import { coldBoot, type Machine } from "../src/mm/machine.js";
import { BuddyAllocator } from "../src/mm/buddy.js";
import { u64leBytes } from "../src/lib/bytes.js";
import { thrownBy } from "./thrown.js";

function machine(): Machine {
  return coldBoot(defaultScenario().machine);
}

/* The successor's view of what @track preserved (the walk's ranges, as the ranges format hands them over). */
function restoreOf(track: KhoTracker, maxOrder = 10): KhoRestore {
  return new KhoRestore(khoRangeTableOf([...track.ranges()]), maxOrder, true);
}

function chainOf(m: Machine, desc: KhoVmalloc): { phys: number; next: bigint; entries: bigint[] }[] {
  const out = [];
  for (let c = desc.first; c !== 0 && out.length < 100; ) {
    const d = decodeKhoVmallocChunk(m.mem.read(c, PAGE_SIZE));
    out.push({ phys: c, next: d.next, entries: d.phys });
    c = Number(d.next);
  }
  return out;
}

describe("struct kho_vmalloc bytes", () => {
  it("encodes first u64, total_pages u32, flags u16, order u16, little-endian", () => {
    const b = encodeKhoVmalloc({ first: 0x1_4123_4000, totalPages: 0x800, flags: 0x3, order: 9 });
    expect([...b]).toEqual([0x00, 0x40, 0x23, 0x41, 0x01, 0, 0, 0, 0x00, 0x08, 0, 0, 0x03, 0x00, 0x09, 0x00]);
    expect(decodeKhoVmalloc(b, 0)).toEqual({ first: 0x1_4123_4000, totalPages: 0x800, flags: 3, order: 9 });
  });

  it("decodes at an offset and refuses a first at or above 2^53 and a short buffer", () => {
    const buf = new Uint8Array(40);
    buf.set(encodeKhoVmalloc({ first: 0x5000, totalPages: 1, flags: 1, order: 0 }), 24);
    expect(decodeKhoVmalloc(buf, 24).first).toBe(0x5000);
    buf.set(u64leBytes(2n ** 53n), 24);
    expect(() => decodeKhoVmalloc(buf, 24)).toThrow(/first \(offset 24\).*not below 2\^53/);
    expect(() => decodeKhoVmalloc(buf, 30)).toThrow(/descriptor \(offset 30\): needs 16 bytes, 10 present/);
  });

  it("lays a chunk out as next then zero-terminated phys[511]", () => {
    const page = encodeKhoVmallocChunk(0x7000, [0x1000, 0x3000]);
    expect(page.length).toBe(4096);
    expect([...page.subarray(0, 8)]).toEqual([0x00, 0x70, 0, 0, 0, 0, 0, 0]);
    expect([...page.subarray(8, 16)]).toEqual([0x00, 0x10, 0, 0, 0, 0, 0, 0]);
    expect([...page.subarray(16, 24)]).toEqual([0x00, 0x30, 0, 0, 0, 0, 0, 0]);
    expect(page.subarray(24).every((x) => x === 0)).toBe(true);
    expect(khoVmallocEntryOffset(510)).toBe(4088);
    expect(decodeKhoVmallocChunk(page)).toEqual({ next: 0x7000n, phys: [0x1000n, 0x3000n] });
  });
});

describe("kho_preserve_vmalloc", () => {
  it("511 order-0 blocks fill one chunk and link an empty trailing chunk", () => {
    const m = machine();
    const track = rangesFormat.createTracker();
    const area = vmallocArea(m, KHO_VMALLOC_SIZE, 0);
    const desc = khoPreserveVmalloc(m, track, area);
    expect(desc).toMatchObject({ totalPages: 511, flags: 0x1, order: 0 });
    const chain = chainOf(m, desc);
    expect(chain.length).toBe(2);
    expect(chain[0]!.next).toBe(BigInt(chain[1]!.phys));
    expect(chain[0]!.entries.map(Number)).toEqual(area.pages);
    expect(chain[1]).toMatchObject({ next: 0n, entries: [] });
    // The chunk pages are preserved as order-0 pages too.
    for (const c of chain) expect(track.ranges()).toSatisfy((rs: Iterable<{ start: number; size: number }>) => [...rs].some((r) => c.phys >= r.start && c.phys < r.start + r.size));
    expect(track.totalBytes).toBe((511 + 2) * PAGE_SIZE);
  });

  it("512 order-0 blocks take two chunks, the second holding one entry", () => {
    const m = machine();
    const track = rangesFormat.createTracker();
    const area = vmallocArea(m, 512, 0);
    const chain = chainOf(m, khoPreserveVmalloc(m, track, area));
    expect(chain.map((c) => c.entries.length)).toEqual([511, 1]);
    expect(Number(chain[1]!.entries[0])).toBe(area.pages[511]);
  });

  it("a huge area of order 9 records one 2 MiB-aligned entry per block, HUGE_VMAP set", () => {
    const m = machine();
    const track = bitmapsPageFormat.createTracker();
    const area = vmallocArea(m, 4 * 512, 9);
    const desc = khoPreserveVmalloc(m, track, area);
    expect(desc).toMatchObject({ totalPages: 2048, flags: 0x3, order: 9 });
    const [c] = chainOf(m, desc);
    expect(c!.entries.length).toBe(4);
    for (const p of c!.entries) expect(Number(p) % (2 * 2 ** 20)).toBe(0);
    expect(track.totalBytes).toBe(2048 * PAGE_SIZE + PAGE_SIZE);
  });

  it("refuses vm flags outside VM_ALLOC | VM_ALLOW_HUGE_VMAP with EOPNOTSUPP and no area with EINVAL, preserving nothing", () => {
    const m = machine();
    const track = rangesFormat.createTracker();
    const free = m.buddy.freeBytes;
    const err = (() => {
      try {
        khoPreserveVmalloc(m, track, { pages: [0x5000_0000], order: 0, flags: 0x2 | 0x4 });
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(KhoErrnoError);
    expect((err as KhoErrnoError).errno).toBe("EOPNOTSUPP");
    expect(() => khoPreserveVmalloc(m, track, { pages: [], order: 0, flags: 0x2 })).toThrow(/-EINVAL/);
    expect(track.totalBytes).toBe(0);
    expect(m.buddy.freeBytes).toBe(free);
  });

  it("rolls back every block and chunk when a block fails mid-way (EBUSY after finalize on the 600th)", () => {
    const m = machine();
    const track = rangesFormat.createTracker();
    const area = vmallocArea(m, 700, 0);
    const free = m.buddy.freeBytes;
    const kho = { finalized: false };
    let calls = 0;
    const spy: KhoTracker = {
      khoPreservePhys: (p, s) => track.khoPreservePhys(p, s),
      khoPreserveFolio: (p, o) => {
        if (++calls === 600) kho.finalized = true;
        track.khoPreserveFolio(p, o);
      },
      khoUnpreserve: (p, s) => track.khoUnpreserve(p, s),
      khoUnpreservePhys: (p, s) => track.khoUnpreservePhys(p, s),
      khoUnpreserveFolio: (p, o) => track.khoUnpreserveFolio(p, o),
      ranges: () => track.ranges(),
      get totalBytes() {
        return track.totalBytes;
      },
    };
    expect(() => khoPreserveVmalloc(m, spy, area, kho)).toThrow(/-EBUSY/);
    expect(track.totalBytes).toBe(0);
    expect(m.buddy.freeBytes).toBe(free);
  });
});

describe("phys 0", () => {
  it("no block or chunk lands at phys 0 (a 0 entry would end the array): the page is kept aside", () => {
    const m = coldBoot({ ...defaultScenario().machine, ramBase: 0 });
    m.buddy = new BuddyAllocator(10);
    m.buddy.freeRange(0, 16 * 2 ** 20);
    const track = rangesFormat.createTracker();
    const area = vmallocArea(m, 4, 0);
    expect(area.pages).not.toContain(0);
    const desc = khoPreserveVmalloc(m, track, area);
    expect(desc.first).not.toBe(0);
    expect(khoRestoreVmalloc(m.mem, restoreOf(track), desc, "v")).toEqual(area.pages);
  });
});

describe("kho_unpreserve_vmalloc", () => {
  it("unpreserves every page of every order-9 block (pfn + 1 would leave 511 of each) and frees the chunks", () => {
    for (const format of [rangesFormat, bitmapsPageFormat]) {
      const m = machine();
      const track = format.createTracker();
      const area = vmallocArea(m, 3 * 512, 9);
      const free = m.buddy.freeBytes;
      const desc = khoPreserveVmalloc(m, track, area);
      khoUnpreserveVmalloc(m, track, desc);
      expect([...track.ranges()]).toEqual([]);
      expect(track.totalBytes).toBe(0);
      expect(m.buddy.freeBytes).toBe(free);
    }
  });
});

describe("kho_restore_vmalloc", () => {
  function preserved(nrPages: number, order = 0): { m: Machine; desc: KhoVmalloc; area: number[]; restore: () => KhoRestore } {
    const m = machine();
    const track = rangesFormat.createTracker();
    const a = vmallocArea(m, nrPages, order);
    const desc = khoPreserveVmalloc(m, track, a);
    const area = a.pages.flatMap((p) => Array.from({ length: 2 ** order }, (_, j) => p + j * PAGE_SIZE));
    return { m, desc, area, restore: () => restoreOf(track) };
  }

  it("returns every 4 KiB page in vm->pages order and the chunk pages it frees", () => {
    for (const [n, order] of [[511, 0], [512, 0], [2048, 9]] as const) {
      const { m, desc, area, restore } = preserved(n, order);
      const got = khoRestoreVmallocChunks(m.mem, restore(), desc, "vmalloc[0]");
      expect(got.pages).toEqual(area);
      expect(got.chunks).toEqual(chainOf(m, desc).map((c) => c.phys));
    }
  });

  const fails = (f: () => unknown): KhoVmallocRestoreError => thrownBy(KhoVmallocRestoreError, f);

  it("refuses unknown flags (careful successor), naming the field and offset 12", () => {
    const { m, desc, restore } = preserved(4);
    const e = fails(() => khoRestoreVmalloc(m.mem, restore(), { ...desc, flags: 0x5 }, "vmalloc[0]"));
    expect(e.message).toMatch(/^vmalloc\[0\]\.flags \(descriptor offset 12\): unknown flags 0x4/);
  });

  it("refuses idx + 2^order > total_pages at the entry that overflows, leaking what was restored", () => {
    const { m, desc, restore } = preserved(600);
    const e = fails(() => khoRestoreVmalloc(m.mem, restore(), { ...desc, totalPages: 300 }, "v"));
    expect(e.message).toMatch(new RegExp(`^v\\.phys\\[300\\] \\(chunk 0x${desc.first.toString(16)} offset ${8 + 8 * 300}\\): idx 300 \\+ 1 pages exceeds total_pages 300`));
    expect(e.leakedPages).toBe(300);
  });

  it("refuses a short count (idx != total_pages at the end)", () => {
    const { m, desc, restore } = preserved(512);
    const e = fails(() => khoRestoreVmalloc(m.mem, restore(), { ...desc, totalPages: 513 }, "v"));
    expect(e.message).toMatch(/^v\.total_pages \(descriptor offset 8\): the chunks list 512 pages, total_pages is 513/);
  });

  it("ends a looping chunk list: at total_pages when it has entries, at the chunk's second restore when empty", () => {
    const a = preserved(3);
    // The only chunk points back at itself: its entries come round again first.
    a.m.mem.write(a.desc.first, u64leBytes(BigInt(a.desc.first)));
    expect(fails(() => khoRestoreVmalloc(a.m.mem, a.restore(), a.desc, "v")).message).toMatch(/^v\.phys\[0\] \(chunk .* offset 8\): idx 3 \+ 1 pages exceeds total_pages 3/);
    const b = preserved(511);
    const empty = chainOf(b.m, b.desc)[1]!.phys;
    b.m.mem.write(empty, u64leBytes(BigInt(empty)));
    const e = fails(() => khoRestoreVmalloc(b.m.mem, b.restore(), b.desc, "v"));
    expect(e.message).toMatch(new RegExp(`^v\\.next \\(chunk 0x${empty.toString(16)} offset 0\\): kho_restore_pages\\(chunk 0x${empty.toString(16)}, 1\\): .*restored already`));
    expect(e.leakedPages).toBe(511);
  });

  it("refuses a next pointer outside RAM and an entry that is not preserved", () => {
    const { m, desc, restore } = preserved(512);
    m.mem.write(desc.first, u64leBytes(0x1_0000_0000_0000n));
    expect(fails(() => khoRestoreVmalloc(m.mem, restore(), desc, "v")).message).toMatch(/^v\.next \(chunk .* offset 0\): chunk 0x1000000000000 is not a page in RAM/);
    const p2 = preserved(4);
    const free = p2.m.buddy.allocFolio(0)!;
    p2.m.mem.write(p2.desc.first + khoVmallocEntryOffset(2), u64leBytes(BigInt(free)));
    expect(fails(() => khoRestoreVmalloc(p2.m.mem, p2.restore(), p2.desc, "v")).message).toMatch(/^v\.phys\[2\] .*offset 24\): .*is not preserved memory/);
  });
});
