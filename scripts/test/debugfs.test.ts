/*
 * npm run debugfs: the files of /sys/kernel/debug/kho/{out,in} per kernel
 * version (kexec_handover.c v6.16 00c010e130e5 / v6.18 a4a508df2aa3,
 * kexec_handover_debugfs.c 5add3c3c280a with kho_init() of dd03dd60e8cd
 * (6.19) and 019fc3687237 (kho-v2)), on hand-built handoffs whose every
 * byte the test knows, and on one kernel-a handoff written in process to a
 * directory (--write layout, refusal to overwrite). Two spawns: a run of the
 * command and one on a corrupt handoff (its --help, with the exit codes, is
 * cli.test.ts's run).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildBootDtb, buildMemblockFdt, parseBootDtb, HANDOFF_BOOT_DTB, HANDOFF_MEMORY_IMG, HANDOFF_REPORT } from "@khosim/shared/abi";
import { FdtWriter } from "@khosim/shared/fdt";
import { KHO_FORMATS, KhoFdtError, coldBootMachine, khoRetrieveSubtree, parseKhoFdt, parseScenario, runAndFinalize, KHO_KERNELS, KHO_KERNEL_NAMES, type KhoKernelName } from "@khosim/shared/kho";
import { createLogger, initCsum, u64leBytes } from "@khosim/shared/lib";
import { SparseMem, writeImage } from "@khosim/shared/mm";
import { DebugfsError, debugfsView, debugfsViewOf, scratchFiles, type DebugfsView } from "../src/debugfs/view.js";
import { DebugfsWriteError, debugfsJson, debugfsListing, debugfsWrite } from "../src/debugfs/render.js";
import { ROOT, copyHandoff, makeTmp, readFileAt, removeTmp, runKernelAsync } from "./handoff-helpers.js";
import { thrownBy } from "@khosim/shared/test/thrown";

const quiet = createLogger("test", "json", "silent");
const RAM = { base: 0x4000_0000, size: 0x1000_0000 };
const AT = { fdt: 0x4000_1000, sa: 0x4000_2000, sub: 0x4001_0000 };

/* A small FDT standing for a sub-tree's blob (its own compatible). */
function subBlob(compatible: string, pad: number): Uint8Array {
  const w = new FdtWriter();
  w.finishReservemap();
  w.beginNode("");
  w.propertyString("compatible", compatible);
  w.property("data", new Uint8Array(pad).fill(0xa5));
  w.endNode();
  return w.finish();
}

/*
 * Three scratch areas out of address order (debugfs prints array order, not
 * sorted), the last above 4 GiB; sub-trees kho_test, memblock and LUO each at
 * its own page; "bad" with a 4-byte pointer; a node without the property.
 */
const SCRATCH: [bigint, bigint][] = [
  [0x4a00_0000n, 0x200_0000n],
  [0x4100_0000n, 0x80_0000n],
  [0x1_2345_6000n, 0x1000n],
];

interface Built {
  bootDtb: Uint8Array;
  mem: SparseMem;
  blobs: Map<string, { phys: number; bytes: Uint8Array }>;
  khoFdt: Uint8Array;
}

function built(opts: { compatible?: string; prop?: string; map?: bigint | null; corruptSub?: string } = {}): Built {
  const mem = new SparseMem(RAM.base, RAM.size);
  const blobs = new Map<string, { phys: number; bytes: Uint8Array }>();
  const names = ["kho_test", "memblock", "LUO"];
  names.forEach((n, i) => {
    const bytes = n === "memblock" ? buildMemblockFdt([{ name: "trace", start: 0x4800_0000, size: 0x10_0000 }]) : subBlob(`${n}-v1`, 16 * (i + 1));
    const phys = AT.sub + i * 0x1000;
    mem.write(phys, bytes);
    blobs.set(n, { phys, bytes });
  });
  if (opts.corruptSub) mem.write(blobs.get(opts.corruptSub)!.phys, new Uint8Array(4));
  const prop = opts.prop ?? "fdt";
  const w = new FdtWriter();
  w.finishReservemap();
  w.beginNode("");
  w.propertyString("compatible", opts.compatible ?? "kho-v1");
  if (opts.map !== null) w.property("preserved-memory-map", u64leBytes(opts.map ?? 0x4002_0000n));
  w.beginNode("preserved-memory");
  w.propertyString("note", "no sub-tree property: skipped silently");
  w.endNode();
  for (const n of names) {
    w.beginNode(n);
    w.property(prop, u64leBytes(blobs.get(n)!.phys));
    w.endNode();
  }
  w.beginNode("bad");
  w.property(prop, new Uint8Array(4));
  w.endNode();
  w.endNode();
  const khoFdt = w.finish();
  mem.write(AT.fdt, khoFdt);
  const sa = new Uint8Array(16 * SCRATCH.length);
  SCRATCH.forEach(([a, s], i) => {
    sa.set(u64leBytes(a), 16 * i);
    sa.set(u64leBytes(s), 16 * i + 8);
  });
  mem.write(AT.sa, sa);
  // /chosen's size is the page kho_fill_kimage hands over; debugfs shows fdt_totalsize bytes.
  const bootDtb = buildBootDtb(RAM, { addr: AT.fdt, size: 0x1000 }, { addr: AT.sa, size: sa.length });
  return { bootDtb, mem, blobs, khoFdt };
}

function view(b: Built, kernel: KhoKernelName, predecessorKhoBooted = false): DebugfsView {
  return debugfsViewOf(parseBootDtb(b.bootDtb), b.mem, { kernel, predecessorKhoBooted });
}

const paths = (v: DebugfsView): string[] => v.files.map((f) => f.path);
const SUBS = (side: string): string[] => ["kho_test", "memblock", "LUO"].map((n) => `kho/${side}/sub_fdts/${n}`);

describe("the file list per version (kho_out_debugfs_init, kho_in_debugfs_init, kho_init)", () => {
  const withFinalize = ["kho/out/finalize", "kho/out/scratch_phys", "kho/out/scratch_len", "kho/out/fdt", ...SUBS("out"), "kho/in/fdt", ...SUBS("in")];

  it.each(["posting", "v6.16", "v6.18", "v6.19"] as const)("%s: finalize, scratch_phys, scratch_len, fdt and every sub-tree in out/ and in/", (k) => {
    const v = view(built(), k);
    expect(paths(v)).toEqual(withFinalize);
    expect(v.dirs).toEqual(["kho", "kho/out", "kho/out/sub_fdts", "kho/in", "kho/in/sub_fdts"]);
    expect(v.files.find((f) => f.path === "kho/out/finalize")).toMatchObject({ mode: 0o600, kind: "text" });
    expect(new TextDecoder().decode(v.files[0]!.bytes)).toBe("1\n");
    for (const f of v.files.slice(1)) expect(f.mode).toBe(0o400);
  });

  it("kho-v2: no finalize (no kho_finalize()); sub-trees read from preserved-data", () => {
    const v = view(built({ compatible: "kho-v2", prop: "preserved-data" }), "kho-v2");
    expect(paths(v)).toEqual(withFinalize.slice(1));
    // The same handoff as 6.19 reads it: compatible kho-v1 missing, so kho_populate refuses and in/ does not exist.
    const as619 = view(built({ compatible: "kho-v2", prop: "preserved-data" }), "v6.19");
    expect(as619.inAbsent).toMatch(/does not list "kho-v1"/);
    expect(paths(as619).some((p) => p.startsWith("kho/in"))).toBe(false);
    expect(as619.dirs).not.toContain("kho/in");
  });

  it("writing finalize: 6.16-era kho_abort(), 6.19 -EINVAL", () => {
    const w = (k: KhoKernelName): string | undefined => view(built(), k).files.find((f) => f.path === "kho/out/finalize")!.write;
    for (const k of ["posting", "v6.16", "v6.18"] as const) expect(w(k)).toMatch(/echo 0: kho_abort\(\)/);
    expect(w("v6.19")).toMatch(/echo 0: -EINVAL \(no abort\)/);
  });

  it("a KHO-booted predecessor: 6.19 and kho-v2 never register out/fdt; 6.16 still does once finalized", () => {
    expect(paths(view(built(), "v6.19", true))).not.toContain("kho/out/fdt");
    expect(paths(view(built({ compatible: "kho-v2", prop: "preserved-data" }), "kho-v2", true))).not.toContain("kho/out/fdt");
    for (const k of ["posting", "v6.16", "v6.18"] as const) expect(paths(view(built(), k, true))).toContain("kho/out/fdt");
    // Sub-trees added after boot stay in out/sub_fdts either way.
    expect(paths(view(built(), "v6.19", true))).toEqual(expect.arrayContaining(SUBS("out")));
  });

  it("a zero map: 6.19 and kho-v2 refuse it in kho_populate (no in/), 6.16 boots and has in/", () => {
    expect(view(built({ map: 0n }), "v6.19").inAbsent).toMatch(/preserved-memory-map is 0/);
    expect(view(built({ map: null }), "v6.19").inAbsent).toMatch(/preserved-memory-map missing/);
    expect(view(built({ map: 0n }), "v6.16").inAbsent).toBeNull();
  });

  it("the default version is the one that writes the handoff's format", () => {
    expect(debugfsViewOf(parseBootDtb(built().bootDtb), built().mem, { predecessorKhoBooted: false }).kernel).toBe("v6.19");
    const b = built({ compatible: "kho-v2", prop: "preserved-data" });
    expect(debugfsViewOf(parseBootDtb(b.bootDtb), b.mem, { predecessorKhoBooted: false }).kernel).toBe("kho-v2");
  });
});

describe("contents", () => {
  it("scratch_phys and scratch_len: one 0x%llx line per area, array order, lowercase, no padding", () => {
    const v = view(built(), "v6.19");
    const t = (p: string): string => new TextDecoder().decode(v.files.find((f) => f.path === p)!.bytes);
    expect(t("kho/out/scratch_phys")).toBe("0x4a000000\n0x41000000\n0x123456000\n");
    expect(t("kho/out/scratch_len")).toBe("0x2000000\n0x800000\n0x1000\n");
    // All 64 bits, as %llx prints a u64.
    const raw = new Uint8Array(16);
    raw.set(u64leBytes(0xffff_ffff_ffff_f000n), 0);
    expect(scratchFiles(raw)).toEqual({ phys: "0xfffffffffffff000\n", len: "0x0\n" });
  });

  it("fdt is the KHO FDT's fdt_totalsize bytes; each sub_fdts/NAME is its blob's bytes where the node points", () => {
    const b = built();
    for (const k of KHO_KERNEL_NAMES.filter((n) => n !== "kho-v2")) {
      const v = view(b, k);
      const get = (p: string) => v.files.find((f) => f.path === p)!;
      expect(Buffer.from(get("kho/out/fdt").bytes).equals(Buffer.from(b.khoFdt))).toBe(true);
      expect(get("kho/in/fdt").bytes.length).toBe(b.khoFdt.length);
      for (const [n, blob] of b.blobs) {
        for (const side of ["out", "in"]) {
          const f = get(`kho/${side}/sub_fdts/${n}`);
          expect(f.phys).toBe(blob.phys);
          expect(Buffer.from(f.bytes).equals(Buffer.from(blob.bytes))).toBe(true);
        }
      }
    }
  });

  it("a wrong-length pointer: the kernel's warning, per version, and the node is skipped", () => {
    expect(view(built(), "v6.16").warnings).toContain("KHO: node `bad`'s prop `fdt` has invalid length: 4");
    expect(view(built(), "v6.19").warnings).toContain("KHO: node bad prop fdt has invalid length: 4");
    expect(paths(view(built(), "v6.19")).some((p) => p.endsWith("/bad"))).toBe(false);
  });

  it("a half-built sub-tree node (kho_add_subtree before Breno Leitao's fix: node begun, no pointer): skipped without a warning; retrieving it is -EINVAL", () => {
    // /preserved-memory in the hand-built FDT is such a node: children of the root without the property.
    for (const k of ["v6.16", "v6.19"] as const) {
      const v = view(built(), k);
      expect(paths(v).some((p) => p.includes("preserved-memory"))).toBe(false);
      expect(v.warnings.some((w) => w.includes("preserved-memory"))).toBe(false);
    }
    const kho = parseKhoFdt(built().khoFdt, KHO_FORMATS.filter((f) => f.name === "bitmaps"));
    expect(() => khoRetrieveSubtree(kho, "preserved-memory")).toThrow(new KhoFdtError("/preserved-memory/fdt", "missing"));
  });

  it("listing and JSON carry every file; text content printed, blobs by phys", () => {
    const v = view(built(), "v6.16");
    const l = debugfsListing(v, "DIR");
    expect(l).toContain("  0400       34  scratch_phys\n      0x4a000000\n      0x41000000\n      0x123456000\n");
    expect(l).toContain(`sub_fdts/LUO  FDT blob at 0x40012000`);
    const j = JSON.parse(debugfsJson(v, "DIR")) as { schema: string; files: { path: string; mode: string; size: number; text?: string }[] };
    expect(j.schema).toBe("khosim-debugfs/1");
    expect(j.files.map((f) => f.path)).toEqual(paths(v));
    expect(j.files[0]).toMatchObject({ path: "kho/out/finalize", mode: "0600", size: 2, text: "1\n" });
  });
});

describe("a corrupt handoff: one DebugfsError naming file, offset and field", () => {
  const err = (f: () => unknown): DebugfsError => thrownBy(DebugfsError, f);

  it("a sub-FDT whose header is not an FDT", () => {
    const b = built({ corruptSub: "LUO" });
    expect(err(() => view(b, "v6.19")).message).toBe("memory.img offset 0x12000: /LUO/fdt -> sub-FDT fdt_header.magic: 0x0, expected 0xd00dfeed");
  });

  it("a KHO FDT totalsize past what can be shown, a pointer outside RAM, a scratch array size not a multiple of 16", () => {
    const b = built();
    b.mem.write(AT.fdt + 4, new Uint8Array([0x7f, 0, 0, 0]));
    expect(err(() => view(b, "v6.19")).message).toBe("memory.img offset 0x1004: KHO FDT fdt_header.totalsize: 0x7f000000 is not 40..0x1000000 bytes inside RAM");
    const c = built();
    const boot = parseBootDtb(c.bootDtb);
    boot.khoFdt = { addr: 0x1_0000_0000_0000n, size: 0x1000n };
    expect(err(() => debugfsViewOf(boot, c.mem, { predecessorKhoBooted: false })).message).toMatch(/^memory\.img: KHO FDT header: \[0x1000000000000, \+0x28\) is outside RAM/);
    const d = parseBootDtb(c.bootDtb);
    d.khoScratch = { addr: BigInt(AT.sa), size: 24n };
    expect(err(() => debugfsViewOf(d, c.mem, { predecessorKhoBooted: false })).message).toBe("boot.dtb: /chosen/linux,kho-scratch size: 0x18 is not 1..1024 kho_scratch entries of 16 bytes");
  });
});

describe("a kernel-a handoff directory (written in process), --write, and the command", () => {
  let tmp = "";
  let dir = "";
  beforeAll(async () => {
    await initCsum();
    tmp = makeTmp("debugfs");
    dir = path.join(tmp, "h");
    const s = parseScenario({ machine: { ram: "512M", cmdline: "reserve_mem=1M:4096:trace" }, ops: [{ op: "folios", count: 4, order: 1 }] }, "(test)");
    const m = coldBootMachine(s, quiet);
    const { handoff } = runAndFinalize(m, s, 3, "(test)", quiet, KHO_KERNELS["v6.19"].predecessor.format);
    fs.mkdirSync(dir);
    writeImage(path.join(dir, HANDOFF_MEMORY_IMG), m.mem);
    fs.writeFileSync(path.join(dir, HANDOFF_BOOT_DTB), handoff.bootDtb);
    fs.writeFileSync(path.join(dir, HANDOFF_REPORT), JSON.stringify({ tool: "khosim kernel-a" }, null, 2));
  });
  afterAll(() => removeTmp(tmp));

  it("sub_fdts are the bytes memory.img holds at each sub-tree's pointer", () => {
    // Mainline's one-page bitmaps carry no marker: the bytes are 6.16's, so the default is v6.16.
    expect(debugfsView(dir).kernel).toBe("v6.16");
    const v = debugfsView(dir, "v6.19");
    expect(v.predecessorKhoBooted).toBe(false);
    const img = path.join(dir, HANDOFF_MEMORY_IMG);
    const subs = v.files.filter((f) => f.path.startsWith("kho/in/sub_fdts/"));
    expect(subs.map((f) => f.path)).toEqual(["kho/in/sub_fdts/kho_test", "kho/in/sub_fdts/memblock"]);
    for (const f of subs) {
      // Only the blob's own bytes are read: the image is RAM-sized (1 GiB).
      const at = f.phys! - 0x4000_0000;
      expect(Buffer.from(f.bytes).equals(readFileAt(img, at, readFileAt(img, at + 4, 4).readUInt32BE(0)))).toBe(true);
    }
  });

  it("--write lays out kho/{out,in} byte for byte with debugfs modes, and never overwrites", async () => {
    const v = debugfsView(dir, "v6.19");
    const out = path.join(tmp, "w");
    await debugfsWrite(v, out);
    for (const f of v.files) {
      const p = path.join(out, f.path);
      expect(Buffer.from(fs.readFileSync(p)).equals(Buffer.from(f.bytes))).toBe(true);
      expect(fs.statSync(p).mode & 0o777).toBe(f.mode);
    }
    expect(fs.readFileSync(path.join(out, "kho/out/scratch_len"), "utf8")).toMatch(/^(0x[0-9a-f]+\n)+$/);
    expect(fs.readdirSync(path.join(out, "kho")).sort()).toEqual(["in", "out"]);
    // A second write is refused and the first stays as it was; no temporary sibling is left.
    await expect(debugfsWrite(v, out)).rejects.toBeInstanceOf(DebugfsWriteError);
    expect(fs.readdirSync(tmp).sort()).toEqual(["h", "w"]);
    // A KHO-booted predecessor (kernel-b --handoff-out) as 6.19: no out/fdt.
    fs.writeFileSync(path.join(dir, HANDOFF_REPORT), JSON.stringify({ tool: "khosim kernel-b" }, null, 2));
    expect(paths(debugfsView(dir, "v6.19")).includes("kho/out/fdt")).toBe(false);
    expect(paths(debugfsView(dir, "v6.16")).includes("kho/out/fdt")).toBe(true);
    fs.writeFileSync(path.join(dir, HANDOFF_REPORT), JSON.stringify({ tool: "khosim kernel-a" }, null, 2));
  });

  it("the command: a run prints the listing; a corrupt handoff is one line, exit 3", async () => {
    const bad = path.join(tmp, "bad");
    copyHandoff(dir, bad);
    const v = debugfsView(dir);
    const sub = v.files.find((f) => f.path === "kho/in/sub_fdts/memblock")!;
    const fd = fs.openSync(path.join(bad, HANDOFF_MEMORY_IMG), "r+");
    fs.writeSync(fd, new Uint8Array(4), 0, 4, sub.phys! - 0x4000_0000);
    fs.closeSync(fd);
    const main = path.join(ROOT, "scripts/src/debugfs.ts");
    const [run, corrupt] = await Promise.all([runKernelAsync(main, [dir]), runKernelAsync(main, [bad])]);
    expect(run.status).toBe(0);
    expect(run.stdout).toBe(debugfsListing(v, dir));
    expect(corrupt.status).toBe(3);
    expect(corrupt.stderr).toBe(`debugfs: memory.img offset ${"0x" + (sub.phys! - 0x4000_0000).toString(16)}: /memblock/fdt -> sub-FDT fdt_header.magic: 0x0, expected 0xd00dfeed\n`);
    expect(corrupt.stdout).toBe("");
  });
});
