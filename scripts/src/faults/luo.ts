/*
 * Faults of the LUO state (abi/luo.ts, abi/memfd-luo.ts): one per field a
 * successor reads. They need a handoff whose scenario ran LUO steps and kept
 * a session with a non-empty memfd (scenarios/luo/kexec-simple.json); the
 * structures are found the way kernel-b finds them, from the LUO sub-tree.
 * FDT faults make 6.19 panic (luo_restore_fail, exit 5); a bad session
 * block or file array makes /dev/liveupdate -EIO; a bad memfd makes its
 * retrieve fail or its bytes differ from the manifest (exit 1).
 */
import { decodeKhoVmalloc, decodeKhoVmallocChunk } from "@khosim/shared/abi";
import {
  decodeLuoFileArray,
  decodeLuoSessionBlock,
  LUO_FDT_COMPATIBLE,
  LUO_FDT_KHO_ENTRY_NAME,
  LUO_FDT_LIVEUPDATE_NUM,
  LUO_FDT_SESSION_COMPATIBLE,
  LUO_FDT_SESSION_HEADER,
  LUO_FDT_SESSION_NODE_NAME,
  LUO_FILE_ARRAY_SIZE,
  LUO_SESSION_BLOCK_SIZE,
  LUO_SESSION_SER_SIZE,
  MEMFD_LUO_FOLIO_DIRTY,
  parseLuoFdt,
  PAGE_SIZE,
} from "@khosim/shared/abi";
import { FdtWriter } from "@khosim/shared/fdt";
import { hex, u64leBytes } from "@khosim/shared/lib";
import { khoRetrieveSubtree, LUO_STATE_SESSION } from "@khosim/shared/kho";
import type { FaultContext } from "./context.js";
import { expectOutcome, VERIFY_FAILED, type Fault } from "./fault.js";

const PANIC = expectOutcome("kernel-panic");

/** Where each LUO structure of the handoff is: the first session that is not the state session, its first file, that memfd's first record. */
interface LuoView {
  fdtPhys: number;
  header: number;
  sessionIdx: number;
  /** phys of luo_session_ser[sessionIdx]. */
  sessionAt: number;
  name: string;
  filesPhys: number;
  /** phys of the first luo_file_ser. */
  fileAt: number;
  token: bigint;
  serPhys: number;
  /** phys of folio record 0. */
  recordAt: number;
}

function luoView(ctx: FaultContext): LuoView {
  const raw = khoRetrieveSubtree(ctx.khoFdt().kho, LUO_FDT_KHO_ENTRY_NAME);
  ctx.need(raw !== undefined, `the KHO FDT has no ${LUO_FDT_KHO_ENTRY_NAME} sub-tree (the scenario has no "luo" steps)`);
  const fdtPhys = Number(raw);
  const fdt = parseLuoFdt(ctx.read(fdtPhys, PAGE_SIZE));
  const header = Number(fdt.sessionHeader);
  const sessions = decodeLuoSessionBlock(ctx.read(header, LUO_SESSION_BLOCK_SIZE), fdt.sessionHeader);
  const sessionIdx = sessions.findIndex((s) => s.name !== LUO_STATE_SESSION && s.count > 0n);
  ctx.need(sessionIdx >= 0, "no session but the state session holds a file");
  const s = sessions[sessionIdx]!;
  const filesPhys = Number(s.files);
  const files = decodeLuoFileArray(ctx.read(filesPhys, LUO_FILE_ARRAY_SIZE), s.files, s.count, "session");
  const serPhys = Number(files[0]!.data);
  const ser = ctx.read(serPhys, 40);
  const desc = decodeKhoVmalloc(ser, 24);
  ctx.need(desc.first !== 0, `memfd of token ${hex(files[0]!.token)} is empty (no folio records)`);
  const arr = Number(decodeKhoVmallocChunk(ctx.read(desc.first, PAGE_SIZE)).phys[0]!);
  return { fdtPhys, header, sessionIdx, sessionAt: header + 8 + sessionIdx * LUO_SESSION_SER_SIZE, name: s.name, filesPhys, fileAt: filesPhys, token: files[0]!.token, serPhys, recordAt: arr };
}

/* Rewrite the LUO FDT page with @build's tree (same page, so the KHO FDT still points at it). */
function rewriteLuoFdt(ctx: FaultContext, v: LuoView, field: string, build: (w: FdtWriter, fdt: { liveupdateNum: bigint; sessionHeader: bigint }) => void): void {
  const old = parseLuoFdt(ctx.read(v.fdtPhys, PAGE_SIZE));
  const w = new FdtWriter();
  w.finishReservemap();
  w.beginNode("");
  build(w, old);
  w.endNode();
  const blob = w.finish();
  const page = new Uint8Array(PAGE_SIZE);
  page.set(blob);
  ctx.write(v.fdtPhys, page, field);
}

function sessionNode(w: FdtWriter, compatible: string, header: bigint): void {
  w.beginNode(LUO_FDT_SESSION_NODE_NAME);
  w.propertyString("compatible", compatible);
  w.property(LUO_FDT_SESSION_HEADER, u64leBytes(header));
  w.endNode();
}

const luoFailure = { kind: "luo" as const };

export const LUO_FAULTS: readonly Fault[] = [
  {
    kind: "luo-fdt-compatible",
    group: "luo",
    description: "the LUO FDT's root compatible is luo-v9, not luo-v1",
    expect: PANIC(["The incoming tree failed to initialize properly", "incompatible with 'luo-v1'"]),
    apply(ctx) {
      const v = luoView(ctx);
      rewriteLuoFdt(ctx, v, "LUO FDT /compatible", (w, f) => {
        w.propertyString("compatible", "luo-v9");
        w.property(LUO_FDT_LIVEUPDATE_NUM, u64leBytes(f.liveupdateNum));
        sessionNode(w, LUO_FDT_SESSION_COMPATIBLE, f.sessionHeader);
      });
      return { reasonIncludes: [hex(v.fdtPhys)] };
    },
  },
  {
    kind: "luo-fdt-number",
    group: "luo",
    description: "the LUO FDT's liveupdate-number is 4 bytes, not a u64",
    expect: PANIC(["Unable to get live update number 'liveupdate-number' [4]"]),
    apply(ctx) {
      const v = luoView(ctx);
      rewriteLuoFdt(ctx, v, `LUO FDT /${LUO_FDT_LIVEUPDATE_NUM}`, (w, f) => {
        w.propertyString("compatible", LUO_FDT_COMPATIBLE);
        w.property(LUO_FDT_LIVEUPDATE_NUM, new Uint8Array(4));
        sessionNode(w, LUO_FDT_SESSION_COMPATIBLE, f.sessionHeader);
      });
    },
  },
  {
    kind: "luo-fdt-session-compatible",
    group: "luo",
    description: "the luo-session node is luo-session-v1, not luo-session-v2",
    expect: PANIC(["Session node incompatible [luo-session-v2]"]),
    apply(ctx) {
      const v = luoView(ctx);
      rewriteLuoFdt(ctx, v, `LUO FDT /${LUO_FDT_SESSION_NODE_NAME}/compatible`, (w, f) => {
        w.propertyString("compatible", LUO_FDT_COMPATIBLE);
        w.property(LUO_FDT_LIVEUPDATE_NUM, u64leBytes(f.liveupdateNum));
        sessionNode(w, "luo-session-v1", f.sessionHeader);
      });
    },
  },
  {
    kind: "luo-fdt-header",
    group: "luo",
    description: "luo-session-header points past the end of RAM: the first open of /dev/liveupdate is -EIO",
    expect: VERIFY_FAILED(["open /dev/liveupdate: -EIO", "luo_session_header_ser at"]),
    apply(ctx) {
      const v = luoView(ctx);
      const to = ctx.ramEnd;
      rewriteLuoFdt(ctx, v, `LUO FDT /${LUO_FDT_SESSION_NODE_NAME}/${LUO_FDT_SESSION_HEADER}`, (w, f) => {
        w.propertyString("compatible", LUO_FDT_COMPATIBLE);
        w.property(LUO_FDT_LIVEUPDATE_NUM, u64leBytes(f.liveupdateNum));
        sessionNode(w, LUO_FDT_SESSION_COMPATIBLE, BigInt(to));
      });
      return { reasonIncludes: [hex(to)], failure: luoFailure };
    },
  },
  {
    kind: "luo-session-count",
    group: "luo",
    description: "the session block's count is 820, above LUO_SESSION_MAX 819: -EIO",
    expect: VERIFY_FAILED(["-EIO", "+0x0 count: 820 is above LUO_SESSION_MAX 819"]),
    apply(ctx) {
      const v = luoView(ctx);
      ctx.writeU64(v.header, 820, "luo_session_header_ser.count");
      return { reasonIncludes: [hex(v.header)], failure: luoFailure };
    },
  },
  {
    kind: "luo-session-name",
    group: "luo",
    description: "a session's name changed: stage 2's RETRIEVE_SESSION of the manifest's name is -ENOENT",
    expect: VERIFY_FAILED(["RETRIEVE_SESSION", "no such session"]),
    apply(ctx) {
      const v = luoView(ctx);
      const old = ctx.read(v.sessionAt, 1)[0]!;
      ctx.write(v.sessionAt, Uint8Array.of(old ^ 0x20), `luo_session_ser[${v.sessionIdx}].name[0]`);
      return { reasonIncludes: [`'${v.name}'`], failure: luoFailure };
    },
  },
  {
    kind: "luo-session-files",
    group: "luo",
    description: "a session's file array pointer is past the end of RAM: -EIO",
    expect: VERIFY_FAILED(["-EIO", "files at"]),
    apply(ctx) {
      const v = luoView(ctx);
      ctx.writeU64(v.sessionAt + 64, ctx.ramEnd, `luo_session_ser[${v.sessionIdx}].files`);
      return { reasonIncludes: [hex(ctx.ramEnd)], failure: luoFailure };
    },
  },
  {
    kind: "luo-session-file-count",
    group: "luo",
    description: "a session's file count is 129, above LUO_FILE_MAX 128: -EIO",
    expect: VERIFY_FAILED(["-EIO", "count: 129 is above LUO_FILE_MAX 128"]),
    apply(ctx) {
      const v = luoView(ctx);
      ctx.writeU64(v.sessionAt + 72, 129, `luo_session_ser[${v.sessionIdx}].count`);
      return { reasonIncludes: [hex(v.filesPhys)], failure: luoFailure };
    },
  },
  {
    kind: "luo-file-compatible",
    group: "luo",
    description: "a file's handler compatible is memfd-v9: no registered handler, -EIO",
    expect: VERIFY_FAILED(["-EIO", "No registered handler for compatible 'memfd-v9'"]),
    apply(ctx) {
      const v = luoView(ctx);
      ctx.write(v.fileAt + 7, new TextEncoder().encode("9"), "luo_file_ser[0].compatible");
      return { failure: luoFailure };
    },
  },
  {
    kind: "luo-file-data",
    group: "luo",
    description: "a file's data (its memfd_luo_ser) is 0: RETRIEVE_FD is -EINVAL",
    expect: VERIFY_FAILED(["RETRIEVE_FD: -EINVAL", "luo_file_ser.data is 0"]),
    apply(ctx) {
      const v = luoView(ctx);
      ctx.writeU64(v.fileAt + 48, 0, "luo_file_ser[0].data");
      return { reasonIncludes: [hex(v.token)], failure: luoFailure };
    },
  },
  {
    kind: "luo-file-token",
    group: "luo",
    description: "a file's token changed: RETRIEVE_FD of the manifest's token is -ENOENT",
    expect: VERIFY_FAILED(["RETRIEVE_FD: -ENOENT", "has no file with token"]),
    apply(ctx) {
      const v = luoView(ctx);
      ctx.writeU64(v.fileAt + 56, v.token + 0x100n, "luo_file_ser[0].token");
      return { reasonIncludes: [hex(v.token)], failure: luoFailure };
    },
  },
  {
    kind: "memfd-ser-size",
    group: "luo",
    description: "a memfd's size is one byte more: stage 2 finds another i_size than the manifest's",
    expect: VERIFY_FAILED(["manifest says"]),
    apply(ctx) {
      const v = luoView(ctx);
      const old = ctx.u64(v.serPhys + 8);
      ctx.writeU64(v.serPhys + 8, old + 1n, "memfd_luo_ser.size");
      return { reasonIncludes: [`size ${old + 1n}`], failure: luoFailure };
    },
  },
  {
    kind: "memfd-ser-nr-folios",
    group: "luo",
    description: "a memfd's nr_folios is 2^40: more records than its vmalloc'ed array holds",
    expect: VERIFY_FAILED(["+0x10 nr_folios", "do not fit"]),
    apply(ctx) {
      const v = luoView(ctx);
      ctx.writeU64(v.serPhys + 16, 2n ** 40n, "memfd_luo_ser.nr_folios");
      return { reasonIncludes: [hex(v.serPhys)], failure: luoFailure };
    },
  },
  {
    kind: "memfd-ser-pos",
    group: "luo",
    description: "a memfd's f_pos moved by 3: stage 2 finds another position than the manifest's",
    expect: VERIFY_FAILED(["manifest says"]),
    apply(ctx) {
      const v = luoView(ctx);
      const old = ctx.u64(v.serPhys);
      ctx.writeU64(v.serPhys, old + 3n, "memfd_luo_ser.pos");
      return { reasonIncludes: [`pos ${old + 3n}`], failure: luoFailure };
    },
  },
  {
    kind: "memfd-folio-pfn",
    group: "luo",
    description: "a folio record's pfn is 1 (below RAM, never preserved): kho_restore_folio fails, RETRIEVE_FD -EIO",
    expect: VERIFY_FAILED(["RETRIEVE_FD: -EIO", "Unable to restore folio"]),
    apply(ctx) {
      const v = luoView(ctx);
      const w = ctx.u64(v.recordAt);
      ctx.writeU64(v.recordAt, (w & ~((1n << 52n) - 1n)) | 1n, "memfd_luo_folio_ser[0].pfn");
      return { reasonIncludes: ["physical address 0x1000"], failure: luoFailure };
    },
  },
  {
    kind: "memfd-folio-flags",
    group: "luo",
    description: "a folio record lacks UPTODATE: shmem zeroes the folio on first use, so the bytes differ",
    expect: VERIFY_FAILED(["contents xxhash64"]),
    apply(ctx) {
      const v = luoView(ctx);
      const w = ctx.u64(v.recordAt);
      ctx.writeU64(v.recordAt, (w & ((1n << 52n) - 1n)) | (BigInt(MEMFD_LUO_FOLIO_DIRTY) << 52n), "memfd_luo_folio_ser[0].flags");
      return { failure: luoFailure };
    },
  },
  {
    kind: "memfd-folio-index",
    group: "luo",
    description: "a folio record's index is past i_size: the page at index 0 is a hole, so the bytes differ",
    expect: VERIFY_FAILED(["contents xxhash64"]),
    apply(ctx) {
      const v = luoView(ctx);
      ctx.writeU64(v.recordAt + 8, 1n << 20n, "memfd_luo_folio_ser[0].index");
      return { failure: luoFailure };
    },
  },
];
