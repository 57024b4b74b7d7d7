/*
 * Reading kho_test's info blob (abi/kho-test.ts) out of preserved memory in
 * pieces: one reused buffer, each piece checksummed and decoded as it
 * arrives. A 48 GiB run of order-0 folios has a 192 MiB blob; reading it
 * whole cost a fresh 192 MiB array (first touch of every page of it) before
 * the checksum and the decode walked it twice more.
 */
import { KHO_TEST_FOLIO_ENTRY_SIZE, KhoTestError, KhoTestInfoDecoder, khoTestInfoSize, type FolioTable, type KhoTestRange } from "../../abi/kho-test.js";
import { csum64Stream } from "../../lib/csum.js";
import { physReadInto, type PhysMem } from "../../mm/physmem.js";

/** Folio entries per piece (1 MiB). */
const PIECE_ENTRIES = 65536;

/** What readKhoTestInfo() found: the blob's checksum, and its tables or why they are malformed. */
export interface KhoTestInfoRead {
  /** xxhash64 of the whole blob (csum64 of what a single read would give). */
  csum: bigint;
  /** The tables, when every entry decoded. */
  table?: { folios: FolioTable; ranges: KhoTestRange[] };
  /** The first malformed entry, when one was found (the checksum still covers the whole blob). */
  error?: KhoTestError;
}

/**
 * readKhoTestInfo - read the info blob of @nrFolios folio (or @nrRuns run,
 * kho-test-v2) and @nrRanges range entries at @phys in @mem, checksum it and decode it, one piece at a time.
 * The same results as csum64(mem.read(phys, size)) and decodeKhoTestInfo()
 * of it: the caller checks the checksum first, then looks at table/error.
 * A malformed entry stops the decode, not the checksum. Throws what
 * mem.read() throws (the caller checked the blob lies in preserved RAM).
 */
export function readKhoTestInfo(mem: PhysMem, phys: number, nrFolios: number, nrRanges: number, nrRuns?: number): KhoTestInfoRead {
  const h = csum64Stream();
  // Runs are bounded by RAM (mem.size: the span of this kernel's RAM).
  const dec = new KhoTestInfoDecoder(nrFolios, nrRanges, nrRuns, mem.size);
  const entries = dec.nrEntries;
  let error: KhoTestError | undefined;
  const decode = (f: () => void): void => {
    if (error) return;
    try {
      f();
    } catch (e) {
      if (!(e instanceof KhoTestError)) throw e;
      error = e;
    }
  };
  const buf = new Uint8Array(Math.min(entries, PIECE_ENTRIES) * KHO_TEST_FOLIO_ENTRY_SIZE);
  let at = phys;
  for (let done = 0; done < entries; ) {
    const n = Math.min(PIECE_ENTRIES, entries - done);
    const piece = buf.subarray(0, n * KHO_TEST_FOLIO_ENTRY_SIZE);
    physReadInto(mem, at, piece);
    h.update(piece);
    decode(() => dec.decodeFolios(piece));
    at += piece.length;
    done += n;
  }
  const rest = khoTestInfoSize(0, nrRanges);
  if (rest > 0) {
    const piece = mem.read(at, rest);
    h.update(piece);
    decode(() => dec.decodeRanges(piece));
  } else decode(() => dec.decodeRanges(new Uint8Array(0)));
  const csum = h.digest();
  return error ? { csum, error } : { csum, table: { folios: dec.folios, ranges: dec.ranges } };
}
