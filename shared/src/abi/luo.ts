/**
 * DOC: the Live Update Orchestrator's KHO ABI (v6.19: luo-v1, luo-session-v2)
 *
 * include/linux/kho/abi/luo.h @cc4adab164 (the 6.19 header, before FLB):
 * KHO sub-tree "LUO" names one page (LUO_FDT_SIZE) holding an FDT that
 * kernel/liveupdate/luo_core.c luo_fdt_setup() writes at late_initcall with
 * the sequential writer, calls in this order:
 *
 *   / { compatible = "luo-v1"; liveupdate-number = <u64, native endian>;
 *       luo-session { compatible = "luo-session-v2";
 *                     luo-session-header = <u64 phys, native endian>; }; };
 *
 * (the luo-session node is luo_session_setup_outgoing(), luo_session.c
 * @7f790dd21a, called between the number and the root's end). The session
 * block it points at is LUO_SESSION_PGCNT = 16 pages from
 * kho_alloc_preserve(): `+0 u64 count` (struct luo_session_header_ser),
 * then packed 80-byte struct luo_session_ser { char name[64]; u64 files;
 * u64 count; } — (65536 - 8) / 80 = 819 sessions (the C comment's "744" is
 * stale). Each session's files are a LUO_FILE_PGCNT = 2 page array
 * (luo_file.c @00d0b37237 luo_alloc_files_mem) of packed 64-byte struct
 * luo_file_ser { char compatible[48]; u64 data; u64 token; }: 128 files.
 *
 * Any change to these bytes is a new compatible string (the header says so
 * for every struct); khosim writes exactly these and nothing else.
 */
import { FdtError, FdtRo, FdtWriter, fdtStringlistContains } from "../fdt/index.js";
import { ByteReader, ByteWriter, u64leBytes } from "../lib/bytes.js";
import { PAGE_SIZE } from "./page.js";

/** LUO_FDT_KHO_ENTRY_NAME: the KHO sub-tree name. */
export const LUO_FDT_KHO_ENTRY_NAME = "LUO";
/** LUO_FDT_SIZE: the FDT's page. */
export const LUO_FDT_SIZE = PAGE_SIZE;
/** LUO_FDT_COMPATIBLE. */
export const LUO_FDT_COMPATIBLE = "luo-v1";
/** LUO_FDT_LIVEUPDATE_NUM: the u64 count of live updates on this machine. */
export const LUO_FDT_LIVEUPDATE_NUM = "liveupdate-number";
/** LUO_FDT_SESSION_NODE_NAME. */
export const LUO_FDT_SESSION_NODE_NAME = "luo-session";
/** LUO_FDT_SESSION_COMPATIBLE. */
export const LUO_FDT_SESSION_COMPATIBLE = "luo-session-v2";
/** LUO_FDT_SESSION_HEADER: u64 phys of the session block. */
export const LUO_FDT_SESSION_HEADER = "luo-session-header";

/** LIVEUPDATE_SESSION_NAME_LENGTH (uapi liveupdate.h @16cec0d265): 64 bytes with the NUL. */
export const LIVEUPDATE_SESSION_NAME_LENGTH = 64;
/** LIVEUPDATE_HNDL_COMPAT_LENGTH: the handler compatible field. */
export const LIVEUPDATE_HNDL_COMPAT_LENGTH = 48;

/** LUO_SESSION_PGCNT: pages of the session block. */
export const LUO_SESSION_PGCNT = 16;
/** Bytes of the session block (an order-4 folio). */
export const LUO_SESSION_BLOCK_SIZE = LUO_SESSION_PGCNT * PAGE_SIZE;
/** sizeof(struct luo_session_header_ser). */
export const LUO_SESSION_HEADER_SER_SIZE = 8;
/** sizeof(struct luo_session_ser), packed. */
export const LUO_SESSION_SER_SIZE = 80;
/** LUO_SESSION_MAX: 819. */
export const LUO_SESSION_MAX = Math.floor((LUO_SESSION_BLOCK_SIZE - LUO_SESSION_HEADER_SER_SIZE) / LUO_SESSION_SER_SIZE);

/** LUO_FILE_PGCNT: pages of one session's file array. */
export const LUO_FILE_PGCNT = 2;
/** Bytes of a file array (an order-1 folio). */
export const LUO_FILE_ARRAY_SIZE = LUO_FILE_PGCNT * PAGE_SIZE;
/** sizeof(struct luo_file_ser), packed. */
export const LUO_FILE_SER_SIZE = 64;
/** LUO_FILE_MAX: 128. */
export const LUO_FILE_MAX = LUO_FILE_ARRAY_SIZE / LUO_FILE_SER_SIZE;

/** A malformed LUO structure: what, and where (structure, field, byte offset). */
export class LuoAbiError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "LuoAbiError";
  }
}

/**
 * buildLuoFdt - the LUO sub-FDT as luo_fdt_setup() and
 * luo_session_setup_outgoing() write it (fdt_create(LUO_FDT_SIZE), no
 * reservations, root compatible, liveupdate-number, luo-session node).
 * @liveupdateNum: the incoming number + 1 (1 after a cold boot)
 * @sessionHeader: phys of the session block
 */
export function buildLuoFdt(liveupdateNum: bigint, sessionHeader: number | bigint): Uint8Array {
  const w = new FdtWriter();
  w.finishReservemap();
  w.beginNode("");
  w.propertyString("compatible", LUO_FDT_COMPATIBLE);
  w.property(LUO_FDT_LIVEUPDATE_NUM, u64leBytes(liveupdateNum));
  w.beginNode(LUO_FDT_SESSION_NODE_NAME);
  w.propertyString("compatible", LUO_FDT_SESSION_COMPATIBLE);
  w.property(LUO_FDT_SESSION_HEADER, u64leBytes(sessionHeader));
  w.endNode();
  w.endNode();
  return w.finish();
}

/** What luo_early_startup() and luo_session_setup_incoming() take from the sub-FDT. */
export interface LuoFdtIn {
  liveupdateNum: bigint;
  sessionHeader: bigint;
}

/**
 * parseLuoFdt - the successor's checks of the LUO sub-FDT, in the kernel's
 * order (luo_core.c luo_early_startup, luo_session.c
 * luo_session_setup_incoming): root compatible luo-v1, liveupdate-number
 * exactly 8 bytes, child luo-session, its compatible luo-session-v2,
 * luo-session-header exactly 8 bytes. Throws LuoAbiError (the kernel's
 * message, naming the property) or FdtError (a blob libfdt rejects).
 */
export function parseLuoFdt(blob: Uint8Array): LuoFdtIn {
  const fdt = new FdtRo(blob);
  const c = fdt.getProp(0, "compatible");
  if (!c || !fdtStringlistContains(c, LUO_FDT_COMPATIBLE)) throw new LuoAbiError(`FDT '${LUO_FDT_KHO_ENTRY_NAME}' is incompatible with '${LUO_FDT_COMPATIBLE}' (/compatible)`);
  const ln = fdt.getProp(0, LUO_FDT_LIVEUPDATE_NUM);
  if (!ln || ln.length !== 8) throw new LuoAbiError(`Unable to get live update number '${LUO_FDT_LIVEUPDATE_NUM}' [${ln ? ln.length : -1}]`);
  let off: number;
  try {
    off = fdt.subnodeOffset(0, LUO_FDT_SESSION_NODE_NAME);
  } catch (e) {
    if (e instanceof FdtError) throw new LuoAbiError(`Unable to get session node: [${LUO_FDT_SESSION_NODE_NAME}]`);
    throw e;
  }
  const sc = fdt.getProp(off, "compatible");
  if (!sc || !fdtStringlistContains(sc, LUO_FDT_SESSION_COMPATIBLE)) throw new LuoAbiError(`Session node incompatible [${LUO_FDT_SESSION_COMPATIBLE}] (/${LUO_FDT_SESSION_NODE_NAME}/compatible)`);
  const h = fdt.getProp(off, LUO_FDT_SESSION_HEADER);
  if (!h || h.length !== 8) throw new LuoAbiError(`Unable to get session header '${LUO_FDT_SESSION_HEADER}' [${h ? h.length : -1}]`);
  return { liveupdateNum: new ByteReader(ln).u64le(0), sessionHeader: new ByteReader(h).u64le(0) };
}

/** One struct luo_session_ser (files/count are struct luo_file_set_ser). */
export interface LuoSessionSer {
  name: string;
  /** Phys of the file array, 0 when the session has none. */
  files: bigint;
  count: bigint;
}

/** One struct luo_file_ser. */
export interface LuoFileSer {
  compatible: string;
  data: bigint;
  token: bigint;
}

const utf8 = new TextEncoder();
const latin = new TextDecoder("latin1");

/* strscpy into a @len-byte field: at most len - 1 bytes, always NUL terminated. */
function putCString(w: ByteWriter, off: number, s: string, len: number): void {
  const b = utf8.encode(s).subarray(0, len - 1);
  w.bytesAt(off, b);
  w.bytes.fill(0, off + b.length, off + len);
}

/* A C string field: the bytes up to the first NUL, or all @len when there is none (the caller decides). */
function getCString(r: ByteReader, off: number, len: number): { s: string; terminated: boolean } {
  const b = r.slice(off, len);
  const nul = b.indexOf(0);
  return { s: new TextDecoder().decode(b.subarray(0, nul < 0 ? len : nul)), terminated: nul >= 0 };
}

/**
 * encodeLuoSessionBlock - the 64 KiB session block luo_session_serialize()
 * leaves: count, then one entry per session in list order, zeros after.
 * Throws RangeError above LUO_SESSION_MAX sessions (the caller's -ENOMEM
 * keeps it from happening).
 */
export function encodeLuoSessionBlock(sessions: readonly LuoSessionSer[]): Uint8Array {
  if (sessions.length > LUO_SESSION_MAX) throw new RangeError(`${sessions.length} sessions, more than LUO_SESSION_MAX ${LUO_SESSION_MAX}`);
  const out = new Uint8Array(LUO_SESSION_BLOCK_SIZE);
  const w = new ByteWriter(out);
  w.u64le(0, sessions.length);
  sessions.forEach((s, i) => {
    const o = LUO_SESSION_HEADER_SER_SIZE + i * LUO_SESSION_SER_SIZE;
    putCString(w, o, s.name, LIVEUPDATE_SESSION_NAME_LENGTH);
    w.u64le(o + 64, s.files);
    w.u64le(o + 72, s.count);
  });
  return out;
}

/**
 * decodeLuoSessionBlock - the sessions of @block (LUO_SESSION_BLOCK_SIZE
 * bytes) found at @phys. The kernel reads header_ser->count entries and
 * trusts it; khosim bounds it by the block (a count above LUO_SESSION_MAX
 * would read past the preserved folio) and names the field. A name without
 * a NUL is what strscpy() in luo_session_alloc() makes of it: 63 bytes.
 */
export function decodeLuoSessionBlock(block: Uint8Array, phys: bigint): LuoSessionSer[] {
  const r = new ByteReader(block);
  const count = r.u64le(0);
  if (count > BigInt(LUO_SESSION_MAX)) {
    throw new LuoAbiError(`luo_session_header_ser at ${hexb(phys)} +0x0 count: ${count} is above LUO_SESSION_MAX ${LUO_SESSION_MAX}`);
  }
  const out: LuoSessionSer[] = [];
  for (let i = 0; i < Number(count); i++) {
    const o = LUO_SESSION_HEADER_SER_SIZE + i * LUO_SESSION_SER_SIZE;
    const n = getCString(r, o, LIVEUPDATE_SESSION_NAME_LENGTH);
    out.push({ name: n.terminated ? n.s : n.s.slice(0, LIVEUPDATE_SESSION_NAME_LENGTH - 1), files: r.u64le(o + 64), count: r.u64le(o + 72) });
  }
  return out;
}

/** encodeLuoFileArray - the 8 KiB file array luo_file_freeze() fills, zeros after the last entry. */
export function encodeLuoFileArray(files: readonly LuoFileSer[]): Uint8Array {
  if (files.length > LUO_FILE_MAX) throw new RangeError(`${files.length} files, more than LUO_FILE_MAX ${LUO_FILE_MAX}`);
  const out = new Uint8Array(LUO_FILE_ARRAY_SIZE);
  const w = new ByteWriter(out);
  files.forEach((f, i) => {
    const o = i * LUO_FILE_SER_SIZE;
    putCString(w, o, f.compatible, LIVEUPDATE_HNDL_COMPAT_LENGTH);
    w.u64le(o + 48, f.data);
    w.u64le(o + 56, f.token);
  });
  return out;
}

/**
 * decodeLuoFileArray - @count entries of the file array @arr at @phys.
 * luo_file_deserialize() trusts count; a count above LUO_FILE_MAX reads
 * past the preserved array, so khosim names it (@where: the session entry).
 */
export function decodeLuoFileArray(arr: Uint8Array, phys: bigint, count: bigint, where: string): LuoFileSer[] {
  if (count > BigInt(LUO_FILE_MAX)) throw new LuoAbiError(`${where} count: ${count} is above LUO_FILE_MAX ${LUO_FILE_MAX} (file array at ${hexb(phys)})`);
  const r = new ByteReader(arr);
  const out: LuoFileSer[] = [];
  for (let i = 0; i < Number(count); i++) {
    const o = i * LUO_FILE_SER_SIZE;
    // strcmp() against handler names stops at the NUL; an unterminated field matches none.
    const c = getCString(r, o, LIVEUPDATE_HNDL_COMPAT_LENGTH);
    out.push({ compatible: c.terminated ? c.s : latin.decode(r.slice(o, LIVEUPDATE_HNDL_COMPAT_LENGTH)), data: r.u64le(o + 48), token: r.u64le(o + 56) });
  }
  return out;
}

function hexb(v: bigint): string {
  return "0x" + v.toString(16);
}
