/*
 * The LUO and memfd ABI (abi/luo.ts, abi/memfd-luo.ts): hand-computed bytes
 * of each structure, and the LUO sub-FDT against libfdt's sequential writer
 * and fdtget.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  buildLuoFdt,
  decodeLuoFileArray,
  decodeLuoSessionBlock,
  encodeLuoFileArray,
  encodeLuoSessionBlock,
  LUO_FILE_MAX,
  LUO_SESSION_MAX,
  LuoAbiError,
  parseLuoFdt,
} from "../src/abi/luo.js";
import { decodeMemfdFolioSer, decodeMemfdLuoSer, encodeMemfdFolioSer, encodeMemfdLuoSer, MEMFD_LUO_FOLIO_DIRTY, MEMFD_LUO_FOLIO_UPTODATE } from "../src/abi/memfd-luo.js";
import { FdtWriter } from "../src/fdt/index.js";
import { u64leBytes } from "../src/lib/bytes.js";
import { fdtCheckFullOracle, fdtget, pylibfdtBuild, requireOracles, type SwOp } from "./oracles.js";

let dir = "";
beforeAll(() => {
  requireOracles();
  dir = mkdtempSync(join(tmpdir(), "khosim-luo-abi-"));
});
afterAll(() => {
  if (dir !== "") rmSync(dir, { recursive: true, force: true });
});

const hexOf = (b: Uint8Array): string => Buffer.from(b).toString("hex");
const str = (s: string): Uint8Array => new TextEncoder().encode(s + "\0");

describe("the LUO sub-FDT (luo_fdt_setup + luo_session_setup_outgoing)", () => {
  it("has the hand-computed layout and libfdt reads it", () => {
    const blob = buildLuoFdt(3n, 0x4280_0000n);
    const dv = new DataView(blob.buffer, blob.byteOffset, blob.byteLength);
    // rsvmap at 0x30, struct at 0x40: root 8 + compatible 20 + liveupdate-number 20 + "luo-session" 16
    // + compatible 28 + luo-session-header 20 + END_NODE x2 + END 12 = 124 bytes;
    // strings "compatible" 11 + "liveupdate-number" 18 + "luo-session-header" 19 = 48.
    expect([dv.getUint32(4), dv.getUint32(8), dv.getUint32(12), dv.getUint32(16), dv.getUint32(36), dv.getUint32(32)]).toEqual([236, 64, 188, 48, 124, 48]);
    // liveupdate-number's value at 0x40 + 8 + 20 + 12, the header's at 0x40 + 8 + 20 + 20 + 16 + 28 + 12: native (LE) u64s.
    expect(hexOf(blob.subarray(104, 112))).toBe("0300000000000000");
    expect(hexOf(blob.subarray(168, 176))).toBe("0000804200000000");
    const f = join(dir, "luo.dtb");
    writeFileSync(f, blob);
    expect(fdtCheckFullOracle(f)).toBe(true);
    expect(fdtget(f, "/", "compatible", "s")).toBe("luo-v1");
    expect(fdtget(f, "/luo-session", "compatible", "s")).toBe("luo-session-v2");
    expect(fdtget(f, "/luo-session", "luo-session-header")).toBe("8042 0"); // the LE u64 read as two big-endian cells
  });

  it("equals libfdt's sequential writer for the kernel's calls", () => {
    const prog: SwOp[] = [
      { op: "finishReservemap" },
      { op: "begin", name: "" },
      { op: "prop", name: "compatible", value: str("luo-v1") },
      { op: "prop", name: "liveupdate-number", value: u64leBytes(1n) },
      { op: "begin", name: "luo-session" },
      { op: "prop", name: "compatible", value: str("luo-session-v2") },
      { op: "prop", name: "luo-session-header", value: u64leBytes(0x1_2345_6000n) },
      { op: "end" },
      { op: "end" },
    ];
    const [oracle] = pylibfdtBuild([prog]);
    expect(hexOf(buildLuoFdt(1n, 0x1_2345_6000n))).toBe(hexOf(oracle!.finished));
  });

  it("parses back, and names what a damaged tree lacks", () => {
    expect(parseLuoFdt(buildLuoFdt(7n, 0x1000n))).toEqual({ liveupdateNum: 7n, sessionHeader: 0x1000n });
    const bad = (build: (w: FdtWriter) => void): Uint8Array => {
      const w = new FdtWriter();
      w.finishReservemap();
      w.beginNode("");
      build(w);
      w.endNode();
      return w.finish();
    };
    expect(() => parseLuoFdt(bad((w) => w.propertyString("compatible", "luo-v2")))).toThrow(/incompatible with 'luo-v1'/);
    expect(() => parseLuoFdt(bad((w) => (w.propertyString("compatible", "luo-v1"), w.property("liveupdate-number", new Uint8Array(4)))))).toThrow(/live update number 'liveupdate-number' \[4\]/);
    expect(() => parseLuoFdt(bad((w) => (w.propertyString("compatible", "luo-v1"), w.property("liveupdate-number", u64leBytes(1n)))))).toThrow(/session node/);
    expect(() => parseLuoFdt(bad((w) => (w.propertyString("compatible", "luo-v1"), w.property("liveupdate-number", u64leBytes(1n)), w.beginNode("luo-session"), w.propertyString("compatible", "luo-session-v1"), w.endNode())))).toThrow(LuoAbiError);
  });
});

describe("the session block and file arrays", () => {
  it("packs 80-byte sessions after the u64 count, 819 of them", () => {
    expect(LUO_SESSION_MAX).toBe(819);
    const b = encodeLuoSessionBlock([
      { name: "a", files: 0n, count: 0n },
      { name: "test-session", files: 0x4321_0000n, count: 2n },
    ]);
    expect(b.length).toBe(65536);
    expect(hexOf(b.subarray(0, 8))).toBe("0200000000000000");
    // Entry 1 at 8 + 80: name, NUL-padded to 64, then files and count.
    expect(hexOf(b.subarray(88, 88 + 13))).toBe(hexOf(str("test-session")));
    expect(b.subarray(88 + 13, 88 + 64).every((x) => x === 0)).toBe(true);
    expect(hexOf(b.subarray(88 + 64, 88 + 80))).toBe("0000214300000000" + "0200000000000000");
    expect(decodeLuoSessionBlock(b, 0x1000n)).toEqual([
      { name: "a", files: 0n, count: 0n },
      { name: "test-session", files: 0x4321_0000n, count: 2n },
    ]);
    // A 64-byte name is cut to 63 (strscpy).
    expect(decodeLuoSessionBlock(encodeLuoSessionBlock([{ name: "x".repeat(64), files: 0n, count: 0n }]), 0n)[0]!.name).toBe("x".repeat(63));
    const over = new Uint8Array(65536);
    over[0] = 820 & 0xff;
    over[1] = 820 >> 8;
    expect(() => decodeLuoSessionBlock(over, 0x5000n)).toThrow("luo_session_header_ser at 0x5000 +0x0 count: 820 is above LUO_SESSION_MAX 819");
  });

  it("packs 64-byte files: compatible[48], data, token; 128 of them", () => {
    expect(LUO_FILE_MAX).toBe(128);
    const a = encodeLuoFileArray([{ compatible: "memfd-v1", data: 0x4000_1000n, token: 0x1an }]);
    expect(a.length).toBe(8192);
    expect(hexOf(a.subarray(0, 9))).toBe(hexOf(str("memfd-v1")));
    expect(hexOf(a.subarray(48, 64))).toBe("0010004000000000" + "1a00000000000000");
    expect(decodeLuoFileArray(a, 0n, 1n, "s")).toEqual([{ compatible: "memfd-v1", data: 0x4000_1000n, token: 0x1an }]);
    expect(() => decodeLuoFileArray(a, 0x9000n, 129n, "luo_session_ser[0] +0x48")).toThrow("luo_session_ser[0] +0x48 count: 129 is above LUO_FILE_MAX 128 (file array at 0x9000)");
  });
});

describe("memfd-v1", () => {
  it("packs memfd_luo_ser in 40 bytes with the kho_vmalloc descriptor at +24", () => {
    const desc = new Uint8Array(16).map((_, i) => i + 1);
    const b = encodeMemfdLuoSer({ pos: 5n, size: 0x1000_0000n, nrFolios: 0x10000n, folios: desc });
    expect(hexOf(b)).toBe("0500000000000000" + "0000001000000000" + "0000010000000000" + "0102030405060708090a0b0c0d0e0f10");
    expect(decodeMemfdLuoSer(b)).toEqual({ pos: 5n, size: 0x1000_0000n, nrFolios: 0x10000n, folios: desc });
  });

  it("packs a folio record as pfn:52 | flags:12, then index", () => {
    const b = new Uint8Array(32);
    const v = new DataView(b.buffer);
    encodeMemfdFolioSer(v, 0, 0x12345, MEMFD_LUO_FOLIO_DIRTY | MEMFD_LUO_FOLIO_UPTODATE, 7);
    // 0x0030000000012345 little-endian, then index 7.
    expect(hexOf(b.subarray(0, 16))).toBe("4523010000003000" + "0700000000000000");
    encodeMemfdFolioSer(v, 1, 2 ** 52 - 1, 0xfff, 2 ** 40);
    expect(hexOf(b.subarray(16, 32))).toBe("ffffffffffffffff" + "0000000000010000");
    expect(decodeMemfdFolioSer(v, 0)).toEqual({ pfn: 0x12345, flags: 3, index: 7n });
    expect(decodeMemfdFolioSer(v, 1)).toEqual({ pfn: 2 ** 52 - 1, flags: 0xfff, index: 2n ** 40n });
    expect(() => encodeMemfdFolioSer(v, 0, 2 ** 52, 0, 0)).toThrow(/52 bits/);
  });
});
