/*
 * The test sub-tree ("kho_test"), after lib/test_kho.c: what the predecessor
 * preserved and each object's checksum, so that the successor can prove every
 * preserved byte survived. Layout in abi.ts (KHO_TEST_*).
 */
import {
  KHO_TEST_COMPAT,
  KHO_TEST_DATA_NODE,
  KHO_TEST_FOLIO_ENTRY_SIZE,
  KHO_TEST_MAGIC,
  KHO_TEST_RANGE_ENTRY_SIZE,
  KHO_TEST_UNFILLED_PROP,
  PAGE_SIZE,
} from "./abi.js";
import { ByteReader, ByteWriter, hex, u32leBytes, u64leBytes, u64ToNumber } from "./bytes.js";
import { FdtError, FdtRo, FdtWriter, propStringList } from "./fdt/index.js";

export interface KhoTestFolio {
  phys: number;
  order: number;
  csum: bigint;
}

export interface KhoTestRange {
  start: number;
  size: number;
  csum: bigint;
}

export interface KhoTestHeader {
  nrFolios: number;
  nrRanges: number;
  /** Raw u64 phys of the info blob (validated by the successor). */
  infoPhys: bigint;
  csum: bigint;
  unfilled: boolean;
}

/** The sub-tree or its info blob is malformed. */
export class KhoTestError extends Error {
  constructor(
    readonly field: string,
    reason: string,
  ) {
    super(`kho_test ${field}: ${reason}`);
    this.name = "KhoTestError";
  }
}

/** Bytes of the info blob for the given counts. */
export function khoTestInfoSize(nrFolios: number, nrRanges: number): number {
  return nrFolios * KHO_TEST_FOLIO_ENTRY_SIZE + nrRanges * KHO_TEST_RANGE_ENTRY_SIZE;
}

/** encodeKhoTestInfo - folio table then range table, little-endian. */
export function encodeKhoTestInfo(folios: readonly KhoTestFolio[], ranges: readonly KhoTestRange[]): Uint8Array {
  const out = new Uint8Array(khoTestInfoSize(folios.length, ranges.length));
  const w = new ByteWriter(out);
  let off = 0;
  for (const f of folios) {
    w.u64le(off, BigInt(f.phys) | BigInt(f.order));
    w.u64le(off + 8, f.csum);
    off += KHO_TEST_FOLIO_ENTRY_SIZE;
  }
  for (const r of ranges) {
    w.u64le(off, r.start);
    w.u64le(off + 8, r.size);
    w.u64le(off + 16, r.csum);
    off += KHO_TEST_RANGE_ENTRY_SIZE;
  }
  return out;
}

/**
 * decodeKhoTestInfo - parse the info blob. Addresses are checked to be JS-safe
 * and page aligned here; whether they are preserved is the successor's check.
 */
export function decodeKhoTestInfo(bytes: Uint8Array, nrFolios: number, nrRanges: number): { folios: KhoTestFolio[]; ranges: KhoTestRange[] } {
  const r = new ByteReader(bytes);
  const folios: KhoTestFolio[] = [];
  const ranges: KhoTestRange[] = [];
  let off = 0;
  for (let i = 0; i < nrFolios; i++, off += KHO_TEST_FOLIO_ENTRY_SIZE) {
    const v = r.u64le(off);
    const order = Number(v & BigInt(PAGE_SIZE - 1));
    const phys = u64ToNumber(v & ~BigInt(PAGE_SIZE - 1));
    if (phys === undefined) throw new KhoTestError(`folios[${i}]`, `phys ${hex(v)} is beyond 2^53`);
    folios.push({ phys, order, csum: r.u64le(off + 8) });
  }
  for (let i = 0; i < nrRanges; i++, off += KHO_TEST_RANGE_ENTRY_SIZE) {
    const start = u64ToNumber(r.u64le(off));
    const size = u64ToNumber(r.u64le(off + 8));
    if (start === undefined || size === undefined || start % PAGE_SIZE !== 0 || size % PAGE_SIZE !== 0 || size === 0) {
      throw new KhoTestError(`ranges[${i}]`, `${hex(r.u64le(off))}+${hex(r.u64le(off + 8))} is not a page-aligned range below 2^53`);
    }
    ranges.push({ start, size, csum: r.u64le(off + 16) });
  }
  return { folios, ranges };
}

/** buildKhoTestFdt - the sub-tree FDT, laid out as kho_test_prepare_fdt() does. */
export function buildKhoTestFdt(h: KhoTestHeader): Uint8Array {
  const w = new FdtWriter();
  w.finishReservemap();
  w.beginNode("");
  w.propertyString("compatible", KHO_TEST_COMPAT);
  w.property("magic", u32leBytes(KHO_TEST_MAGIC));
  w.beginNode(KHO_TEST_DATA_NODE);
  w.property("nr_folios", u32leBytes(h.nrFolios));
  w.property("nr_ranges", u32leBytes(h.nrRanges));
  w.property("folios_info", u64leBytes(h.infoPhys));
  w.property("csum", u64leBytes(h.csum));
  if (h.unfilled) w.property(KHO_TEST_UNFILLED_PROP, new Uint8Array(0));
  w.endNode();
  w.endNode();
  return w.finish();
}

/** parseKhoTestFdt - validate the sub-tree as kho_test_restore() does, strictly. */
export function parseKhoTestFdt(blob: Uint8Array): KhoTestHeader {
  let fdt: FdtRo;
  try {
    fdt = new FdtRo(blob);
  } catch (e) {
    if (e instanceof FdtError) throw new KhoTestError("fdt", e.message);
    throw e;
  }
  const compat = fdt.getProp(0, "compatible");
  let compats: string[] = [];
  try {
    if (compat) compats = propStringList(compat);
  } catch {
    /* reported below */
  }
  if (!compats.includes(KHO_TEST_COMPAT)) throw new KhoTestError("/compatible", `is not "${KHO_TEST_COMPAT}"`);
  const magic = fdt.getProp(0, "magic");
  if (!magic || magic.length !== 4) throw new KhoTestError("/magic", "missing or not 4 bytes");
  const m = new ByteReader(magic).u32le(0);
  if (m !== KHO_TEST_MAGIC) throw new KhoTestError("/magic", `${hex(m)} is not ${hex(KHO_TEST_MAGIC)}`);
  let data: number;
  try {
    data = fdt.pathOffset(`/${KHO_TEST_DATA_NODE}`);
  } catch (e) {
    if (e instanceof FdtError) throw new KhoTestError(`/${KHO_TEST_DATA_NODE}`, "missing");
    throw e;
  }
  const prop = (name: string, len: number): ByteReader => {
    const v = fdt.getProp(data, name);
    if (!v || v.length !== len) throw new KhoTestError(`/${KHO_TEST_DATA_NODE}/${name}`, `missing or not ${len} bytes`);
    return new ByteReader(v);
  };
  return {
    nrFolios: prop("nr_folios", 4).u32le(0),
    nrRanges: prop("nr_ranges", 4).u32le(0),
    infoPhys: prop("folios_info", 8).u64le(0),
    csum: prop("csum", 8).u64le(0),
    unfilled: fdt.getProp(data, KHO_TEST_UNFILLED_PROP) !== undefined,
  };
}
