/*
 * LUO in the successor (v6.19), then user space's stage 2 as the
 * selftests' luo_kexec_simple.c / luo_multi_session.c do it:
 *
 *  1. luo_early_startup (kernel/liveupdate/luo_core.c @cab056f2aa) and
 *     luo_session_setup_incoming (luo_session.c @7f790dd21a): sub-tree
 *     "LUO", luo-v1, liveupdate-number, luo-session-v2, the header phys.
 *     Any failure is luo_restore_fail(): a kernel panic (outcome
 *     "kernel-panic"). No "LUO" sub-tree: LUO has nothing incoming.
 *  2. the first open of /dev/liveupdate runs luo_session_deserialize: the
 *     session block, each session's file array (luo_file_deserialize:
 *     a compatible no handler has is -ENOENT), kho_restore_free of the
 *     block. A failure makes every open -EIO: user space gets nothing.
 *  3. user space retrieves the state session and its manifest memfd
 *     (luo-scenario.ts), then every listed session by name and file by
 *     token (RETRIEVE_SESSION: unknown -ENOENT, twice -EINVAL;
 *     RETRIEVE_FD: unknown -ENOENT, a second call gives the same file),
 *     and compares each memfd's size, pos and every byte with the manifest;
 *  4. SESSION_FINISH on every session (luo_file_finish: memfd has no
 *     can_finish; files never retrieved are discarded; the file array is
 *     freed).
 */
import { decodeLuoFileArray, decodeLuoSessionBlock, LUO_FDT_KHO_ENTRY_NAME, LUO_FDT_SIZE, LUO_FILE_ARRAY_SIZE, LUO_SESSION_BLOCK_SIZE, LUO_SESSION_SER_SIZE, LuoAbiError, parseLuoFdt, type LuoFileSer } from "../../abi/luo.js";
import { MEMFD_LUO_FH_COMPATIBLE } from "../../abi/memfd-luo.js";
import { PAGE_SIZE } from "../../abi/page.js";
import { FdtError } from "../../fdt/index.js";
import { ByteReader, hex, u64ToNumber } from "../../lib/bytes.js";
import { csum64Stream } from "../../lib/csum.js";
import { physInRam, type PhysMem } from "../../mm/physmem.js";
import { KhoFdtError, khoRetrieveSubtree } from "../fdt.js";
import type { KhoFdt } from "../formats/types.js";
import { LUO_MANIFEST_FORMAT, LUO_STATE_SESSION, LUO_STATE_TOKEN, type LuoCarried, type LuoManifest } from "../out/luo-scenario.js";
import type { Memfd } from "../out/memfd-luo.js";
import { KhoRestoreError, type KhoRestore } from "./restore.js";
import { LuoRetrieveError, memfdLuoRetrieve, type MemfdIn } from "./memfd-luo.js";
import { khoRestoreFree } from "./vmalloc.js";

/** successor.json's `luo`. */
export interface LuoInJson {
  liveupdateNumber: string;
  /** "ok", or why /dev/liveupdate could not be used (open -EIO, no state session, bad manifest). */
  status: string;
  sessions: { name: string; retrieved: boolean; finished: boolean; files: { token: string; size: number; outcome: string }[] }[];
}

/** What LUO did in the successor. */
export interface LuoIn {
  /** Set when luo_restore_fail() panics: the one-line reason. */
  panic?: string;
  json?: LuoInJson;
  /** One line per failure (a file not verified, a session missing, -EIO). */
  failures: string[];
  /** Retrieved, verified memfds, to preserve again (chain). */
  carried?: LuoCarried;
  consumed: { start: number; size: number }[];
}

/* An incoming session after deserialization. */
interface SessionIn {
  name: string;
  files: LuoFileSer[];
  filesPhys: number;
  retrieved: boolean;
  /** Retrieved files by token (RETRIEVE_FD is idempotent). */
  got: Map<bigint, MemfdIn | LuoRetrieveError>;
}

class Panic extends Error {}

/** Largest manifest stage 2 reads: 819 sessions of 128 files at under 100 bytes a file fit well below it. */
const LUO_MANIFEST_MAX = 16 << 20;

/* Read @len bytes at @phys, or throw @mk's error when they are not in RAM (the kernel would fault). */
function readPhys(mem: PhysMem, phys: bigint, len: number, what: string): { p: number; b: Uint8Array } {
  const p = u64ToNumber(phys);
  if (p === undefined || !physInRam(mem, p, len)) throw new LuoAbiError(`${what} at ${hex(phys)}: not ${len} bytes of RAM (the kernel would fault reading it)`);
  return { p, b: mem.read(p, len) };
}

/** luoEarlyStartup - step 1: the incoming number and session block phys, undefined without a LUO sub-tree. Throws Panic. */
function luoEarlyStartup(kho: KhoFdt, mem: PhysMem): { liveupdateNum: bigint; sessionHeader: bigint } | undefined {
  let raw: bigint | undefined;
  try {
    raw = khoRetrieveSubtree(kho, LUO_FDT_KHO_ENTRY_NAME);
  } catch (e) {
    if (e instanceof KhoFdtError) throw new Panic(`failed to retrieve FDT '${LUO_FDT_KHO_ENTRY_NAME}' from KHO: ${e.message}`);
    throw e;
  }
  if (raw === undefined) return undefined;
  try {
    const { b } = readPhys(mem, raw, LUO_FDT_SIZE, `FDT '${LUO_FDT_KHO_ENTRY_NAME}'`);
    const total = new ByteReader(b).u32be(4);
    // The FDT has one page (LUO_FDT_SIZE); libfdt checks the header against that.
    if (total > LUO_FDT_SIZE) throw new LuoAbiError(`FDT '${LUO_FDT_KHO_ENTRY_NAME}' at ${hex(raw)} +0x4 totalsize: ${hex(total)} is more than its page`);
    return parseLuoFdt(b.subarray(0, Math.max(total, 40)));
  } catch (e) {
    if (e instanceof LuoAbiError || e instanceof FdtError) throw new Panic(`FDT '${LUO_FDT_KHO_ENTRY_NAME}' at ${hex(raw)}: ${e.message}`);
    throw e;
  }
}

/** luoSessionDeserialize - step 2. Throws LuoAbiError (open gives -EIO). */
function luoSessionDeserialize(mem: PhysMem, restore: KhoRestore, header: bigint, consumed: LuoIn["consumed"]): SessionIn[] {
  const { p, b } = readPhys(mem, header, LUO_SESSION_BLOCK_SIZE, "luo_session_header_ser");
  const sers = decodeLuoSessionBlock(b, header);
  const out: SessionIn[] = [];
  sers.forEach((s, i) => {
    const at = `luo_session_ser[${i}] (+0x${(8 + i * LUO_SESSION_SER_SIZE).toString(16)})`;
    if (out.some((o) => o.name === s.name)) throw new LuoAbiError(`${at} name: session '${s.name}' twice (luo_session_insert: -EEXIST)`);
    const si: SessionIn = { name: s.name, files: [], filesPhys: 0, retrieved: false, got: new Map() };
    if (s.files !== 0n) {
      const a = readPhys(mem, s.files, LUO_FILE_ARRAY_SIZE, `${at} files`);
      si.files = decodeLuoFileArray(a.b, s.files, s.count, `${at} +0x48`);
      si.filesPhys = a.p;
      si.files.forEach((f, k) => {
        if (f.compatible !== MEMFD_LUO_FH_COMPATIBLE) throw new LuoAbiError(`luo_file_ser[${k}] of session '${s.name}' (${hex(s.files)} +0x${(k * 64).toString(16)}) compatible: No registered handler for compatible '${f.compatible}'`);
      });
    }
    out.push(si);
  });
  try {
    consumed.push(khoRestoreFree(restore, p));
  } catch (e) {
    if (!(e instanceof KhoRestoreError)) throw e; // kho_restore_free() WARNs and goes on
  }
  return out;
}

/* RETRIEVE_FD semantics: unknown token -ENOENT; a second retrieve gives what the first did. */
function retrieveFd(mem: PhysMem, restore: KhoRestore, s: SessionIn, token: bigint, consumed: LuoIn["consumed"]): MemfdIn {
  const prev = s.got.get(token);
  if (prev instanceof LuoRetrieveError) throw prev;
  if (prev) return prev;
  const f = s.files.find((x) => x.token === token);
  if (!f) throw new LuoRetrieveError("ENOENT", `session '${s.name}' has no file with token ${hex(token)}`);
  try {
    const m = memfdLuoRetrieve(mem, restore, f.data);
    consumed.push(...m.consumed);
    s.got.set(token, m);
    return m;
  } catch (e) {
    if (e instanceof LuoRetrieveError) s.got.set(token, e);
    throw e;
  }
}

/* The file's bytes as read(2) from 0 would give them, streamed into xxhash64 (holes read as zeros). */
function memfdCsum(mem: PhysMem, f: MemfdIn): bigint {
  const h = csum64Stream();
  const zero = new Uint8Array(PAGE_SIZE);
  for (let i = 0; i < f.pages.length; i++) {
    const len = Math.min(PAGE_SIZE, f.size - i * PAGE_SIZE);
    h.update(f.pages[i] === 0 || f.stale[i] ? zero.subarray(0, len) : mem.read(f.pages[i]!, len));
  }
  return h.digest();
}

/* The manifest memfd's text, checked; throws LuoRetrieveError naming what is wrong. */
function readManifest(mem: PhysMem, f: MemfdIn): LuoManifest {
  // The harness writes a few bytes per file; a damaged size must not make khosim allocate RAM-sized buffers.
  if (f.size > LUO_MANIFEST_MAX) throw new LuoRetrieveError("EINVAL", `manifest memfd: ${f.size} bytes, more than ${LUO_MANIFEST_MAX}`);
  const bytes = new Uint8Array(f.size);
  for (let i = 0; i < f.pages.length; i++) if (f.pages[i] !== 0 && !f.stale[i]) bytes.set(mem.read(f.pages[i]!, Math.min(PAGE_SIZE, f.size - i * PAGE_SIZE)), i * PAGE_SIZE);
  let j: unknown;
  try {
    j = JSON.parse(new TextDecoder().decode(bytes));
  } catch (e) {
    throw new LuoRetrieveError("EINVAL", `manifest memfd: not JSON: ${(e as Error).message}`);
  }
  const m = j as LuoManifest;
  const okFile = (x: unknown): boolean => {
    const f = x as Record<string, unknown>;
    return typeof f === "object" && f !== null && typeof f["token"] === "string" && /^0x[0-9a-f]+$/.test(f["token"]) && Number.isSafeInteger(f["size"]) && Number.isSafeInteger(f["pos"]) && typeof f["csum"] === "string";
  };
  if (m?.format !== LUO_MANIFEST_FORMAT || !Array.isArray(m.sessions) || !m.sessions.every((s) => typeof s?.name === "string" && Array.isArray(s.files) && s.files.every(okFile))) {
    throw new LuoRetrieveError("EINVAL", `manifest memfd: not a ${LUO_MANIFEST_FORMAT}`);
  }
  return m;
}

/**
 * luoRestore - steps 1-4 for a successor whose KHO state is @kho with the
 * preserved ranges @restore on @mem. Never throws for bad handoff data.
 */
export function luoRestore(kho: KhoFdt, mem: PhysMem, restore: KhoRestore): LuoIn {
  const res: LuoIn = { failures: [], consumed: [] };
  let early;
  try {
    early = luoEarlyStartup(kho, mem);
  } catch (e) {
    if (e instanceof Panic) {
      res.panic = `LUO: The incoming tree failed to initialize properly: ${e.message}`;
      return res;
    }
    throw e;
  }
  if (!early) return res;
  const json: LuoInJson = { liveupdateNumber: hex(early.liveupdateNum), status: "ok", sessions: [] };
  res.json = json;
  let sessions: SessionIn[];
  try {
    sessions = luoSessionDeserialize(mem, restore, early.sessionHeader, res.consumed);
  } catch (e) {
    if (!(e instanceof LuoAbiError)) throw e;
    json.status = `open /dev/liveupdate: -EIO (luo_session_deserialize: ${e.message})`;
    res.failures.push(json.status);
    return res;
  }
  const byName = new Map(sessions.map((s) => [s.name, s]));
  const retrieveSession = (name: string): SessionIn => {
    const s = byName.get(name);
    if (!s) throw new LuoRetrieveError("ENOENT", `RETRIEVE_SESSION '${name}': no such session`);
    if (s.retrieved) throw new LuoRetrieveError("EINVAL", `RETRIEVE_SESSION '${name}': retrieved already`);
    s.retrieved = true;
    return s;
  };
  let manifest: LuoManifest | undefined;
  try {
    const st = retrieveSession(LUO_STATE_SESSION);
    manifest = readManifest(mem, retrieveFd(mem, restore, st, LUO_STATE_TOKEN, res.consumed));
  } catch (e) {
    if (!(e instanceof LuoRetrieveError)) throw e;
    json.status = `state session '${LUO_STATE_SESSION}' token ${LUO_STATE_TOKEN}: ${e.message}`;
    res.failures.push(json.status);
  }
  const carried: LuoCarried = { liveupdateNum: early.liveupdateNum, sessions: [] };
  for (const ms of manifest?.sessions ?? []) {
    const row: LuoInJson["sessions"][number] = { name: ms.name, retrieved: false, finished: false, files: [] };
    json.sessions.push(row);
    let s: SessionIn;
    try {
      s = retrieveSession(ms.name);
    } catch (e) {
      if (!(e instanceof LuoRetrieveError)) throw e;
      res.failures.push(e.message);
      continue;
    }
    row.retrieved = true;
    const keep: LuoCarried["sessions"][number] = { name: ms.name, files: [] };
    for (const mf of ms.files) {
      const token = BigInt(mf.token);
      let outcome = "verified";
      try {
        const f = retrieveFd(mem, restore, s, token, res.consumed);
        if (f.size !== mf.size) outcome = `size ${f.size}, manifest says ${mf.size}`;
        else if (f.pos !== mf.pos) outcome = `pos ${f.pos}, manifest says ${mf.pos}`;
        else {
          const c = hex(memfdCsum(mem, f));
          if (c !== mf.csum) outcome = `contents xxhash64 ${c}, manifest says ${mf.csum}`;
        }
        if (outcome === "verified") keep.files.push({ token, memfd: memfdOf(f, `${ms.name}:${mf.token}`, BigInt(mf.csum)) });
      } catch (e) {
        if (!(e instanceof LuoRetrieveError)) throw e;
        outcome = `RETRIEVE_FD: ${e.message}`;
      }
      row.files.push({ token: mf.token, size: mf.size, outcome });
      if (outcome !== "verified") res.failures.push(`session '${ms.name}' token ${mf.token}: ${outcome}`);
    }
    carried.sessions.push(keep);
  }
  // SESSION_FINISH on every session user space holds (luo_file_finish).
  for (const s of sessions) {
    if (!s.retrieved) continue;
    luoFileFinish(mem, restore, s, res.consumed);
    const row = json.sessions.find((r) => r.name === s.name);
    if (row) row.finished = true;
  }
  for (const s of sessions) {
    if (!s.retrieved) json.sessions.push({ name: s.name, retrieved: false, finished: false, files: s.files.map((f) => ({ token: hex(f.token), size: 0, outcome: "not in the manifest: left to LUO" })) });
  }
  if (res.failures.length === 0) res.carried = carried;
  return res;
}

/* luo_file_finish: discard files never retrieved, then kho_restore_free the file array. */
function luoFileFinish(mem: PhysMem, restore: KhoRestore, s: SessionIn, consumed: LuoIn["consumed"]): void {
  for (const f of s.files) {
    if (s.got.has(f.token)) continue;
    try {
      // memfd_luo_finish -> memfd_luo_discard_folios: restore and put every folio.
      const m = memfdLuoRetrieve(mem, restore, f.data);
      consumed.push(...m.consumed);
      for (let i = 0; i < m.pages.length; i++) if (m.pages[i] !== 0) consumed.push({ start: m.pages[i]!, size: PAGE_SIZE });
    } catch (e) {
      if (!(e instanceof LuoRetrieveError)) throw e;
    }
  }
  if (s.filesPhys !== 0) {
    try {
      consumed.push(khoRestoreFree(restore, s.filesPhys));
    } catch (e) {
      if (!(e instanceof KhoRestoreError)) throw e;
    }
  }
}

/* A retrieved memfd in the predecessor's terms (what a daemon preserves again). */
function memfdOf(f: MemfdIn, name: string, csum: bigint): Memfd {
  const dirty = new Uint8Array(f.pages.length).fill(1);
  return { name, size: f.size, pos: f.pos, pages: f.pages, dirty, csum };
}
