/*
 * The Live Update Orchestrator in the predecessor (v6.19), as user space
 * reaches it through /dev/liveupdate and session fds:
 *
 *  - luoFdtSetup (kernel/liveupdate/luo_core.c @cab056f2aa luo_fdt_setup, a
 *    late_initcall, without 7.0's FLB node): the LUO FDT page and the 64 KiB
 *    session block from kho_alloc_preserve, the FDT written at once (it only
 *    holds the number and the block's phys), sub-tree "LUO" added;
 *  - open/release (luo_open: exclusive, -EBUSY; there is no incoming state
 *    in a predecessor that cold-booted, the chain's successor consumed its
 *    own before handing off);
 *  - sessions (luo_session.c @7f790dd21a): create (table full -ENOMEM
 *    checked before a duplicate name -EEXIST, as luo_session_insert does),
 *    release before reboot unpreserves every file, last first;
 *  - files (luo_file.c @00d0b37237 luo_preserve_file): token in use
 *    -EEXIST, 128 files -ENOSPC, bad fd -EBADF, the 8 KiB array allocated
 *    at the first preserve (and freed again if that preserve fails), no
 *    handler -ENOENT, file preserved anywhere -EBUSY, then the handler;
 *  - liveupdate_reboot: luo_session_serialize (freeze every file, fill the
 *    file arrays and the session block), then kho_finalize (finalize.ts).
 *
 * Errors are LuoErrno, the kernel's errno names; nothing is half done
 * when one is thrown.
 */
import { buildLuoFdt, encodeLuoFileArray, encodeLuoSessionBlock, LIVEUPDATE_SESSION_NAME_LENGTH, LUO_FDT_SIZE, LUO_FILE_ARRAY_SIZE, LUO_FILE_MAX, LUO_SESSION_BLOCK_SIZE, LUO_SESSION_MAX } from "../../abi/luo.js";
import { MEMFD_LUO_FH_COMPATIBLE } from "../../abi/memfd-luo.js";
import type { Machine } from "../../mm/machine.js";
import type { KhoTracker } from "../formats/types.js";
import { khoAllocPreserve, khoUnpreserveFree } from "./pages.js";
import type { LuoErrno } from "./luo-steps.js";
import { memfdLuoFreeze, memfdLuoPreserve, memfdLuoUnpreserve, type Memfd, type MemfdPreserved } from "./memfd-luo.js";


/** A LUO call failed with @errno. */
export class LuoErrnoError extends Error {
  constructor(
    readonly errno: LuoErrno,
    message: string,
  ) {
    super(`-${errno}: ${message}`);
    this.name = "LuoErrnoError";
  }
}

/** One preserved file (struct luo_file). */
export interface LuoFile {
  token: bigint;
  memfd: Memfd;
  preserved: MemfdPreserved;
}

/** One outgoing session (struct luo_session). */
export interface LuoSession {
  name: string;
  files: LuoFile[];
  /** The 8 KiB luo_file_ser array, once a file was preserved. */
  filesMem?: { phys: number; order: number };
}

/** What a process holds behind an fd. */
export type LuoFd = { kind: "liveupdate" } | { kind: "session"; session: LuoSession } | { kind: "memfd"; memfd: Memfd } | { kind: "other"; path: string };

/** What finalize needs: the sub-tree page, and what the report says. */
export interface LuoHandoff {
  fdtPhys: number;
  sessionBlock: number;
  liveupdateNum: bigint;
  sessions: { name: string; files: { token: bigint; size: number; ser: number }[] }[];
}

const enc = new TextEncoder();

/**
 * LuoOut - the outgoing LUO state of one kernel and the fd table of the
 * user space that drives it.
 */
export class LuoOut {
  readonly liveupdateNum: bigint;
  readonly fdtPhys: number;
  readonly sessionBlock: { phys: number; order: number };
  /** The outgoing session list, in creation order (serialization order). */
  readonly sessions: LuoSession[] = [];
  private readonly fds = new Map<number, LuoFd>();
  private nextFd = 3;
  private devOpen = false;
  /** luo_preserved_files: which memfds are preserved, anywhere. */
  private readonly preserved = new Set<Memfd>();

  /**
   * luoFdtSetup - @incoming: the previous kernel's liveupdate-number (0
   * after a cold boot). Throws LuoErrnoError ENOMEM when the pages cannot be had.
   */
  constructor(
    private readonly m: Machine,
    private readonly track: KhoTracker,
    incoming: bigint,
  ) {
    this.liveupdateNum = incoming + 1n;
    const fdt = this.allocPreserve(LUO_FDT_SIZE, "the LUO FDT");
    this.fdtPhys = fdt.phys;
    this.sessionBlock = this.allocPreserve(LUO_SESSION_BLOCK_SIZE, "the LUO session block");
    m.mem.write(this.fdtPhys, buildLuoFdt(this.liveupdateNum, this.sessionBlock.phys));
  }

  private allocPreserve(size: number, what: string): { phys: number; order: number } {
    try {
      return khoAllocPreserve(this.m, this.track, size);
    } catch (e) {
      throw new LuoErrnoError("ENOMEM", `${what}: ${(e as Error).message}`);
    }
  }

  private install(f: LuoFd): number {
    const fd = this.nextFd++;
    this.fds.set(fd, f);
    return fd;
  }

  /** The file behind @fd, or -EBADF. */
  file(fd: number): LuoFd {
    const f = this.fds.get(fd);
    if (!f) throw new LuoErrnoError("EBADF", `fd ${fd} is not open`);
    return f;
  }

  /** open(@path): /dev/liveupdate exclusively (luo_open), anything else as a file no handler takes. */
  open(path: string): number {
    if (path === "/dev/liveupdate") {
      if (this.devOpen) throw new LuoErrnoError("EBUSY", "/dev/liveupdate is already open");
      this.devOpen = true;
      return this.install({ kind: "liveupdate" });
    }
    return this.install({ kind: "other", path });
  }

  /** memfd_create: a new fd for @memfd. */
  installMemfd(memfd: Memfd): number {
    return this.install({ kind: "memfd", memfd });
  }

  /** close(@fd): luo_release, or luo_session_release (unpreserves), or a plain close (LUO keeps its reference). */
  close(fd: number): void {
    const f = this.file(fd);
    this.fds.delete(fd);
    if (f.kind === "liveupdate") this.devOpen = false;
    else if (f.kind === "session") this.releaseSession(f.session);
  }

  private requireKind<K extends LuoFd["kind"]>(fd: number, kind: K, what: string): Extract<LuoFd, { kind: K }> {
    const f = this.file(fd);
    // A LUO ioctl on the other LUO fd is outside its table (-EINVAL); other files have no such ioctl (-ENOTTY).
    if (f.kind !== kind) throw new LuoErrnoError(f.kind === "liveupdate" || f.kind === "session" ? "EINVAL" : "ENOTTY", `fd ${fd} is not ${what}`);
    return f as Extract<LuoFd, { kind: K }>;
  }

  /**
   * LIVEUPDATE_IOCTL_CREATE_SESSION on @devFd: a session fd.
   * @name is copied with strscpy into 64 bytes (63 and the NUL).
   */
  createSession(devFd: number, name: string): number {
    this.requireKind(devFd, "liveupdate", "/dev/liveupdate");
    return this.install({ kind: "session", session: this.createSessionInternal(name) });
  }

  /** luo_session_create without an fd (the harness's own state session). */
  createSessionInternal(rawName: string): LuoSession {
    const b = enc.encode(rawName);
    const name = b.length >= LIVEUPDATE_SESSION_NAME_LENGTH ? new TextDecoder().decode(b.subarray(0, LIVEUPDATE_SESSION_NAME_LENGTH - 1)) : rawName;
    if (this.sessions.length === LUO_SESSION_MAX) throw new LuoErrnoError("ENOMEM", `${LUO_SESSION_MAX} sessions already (LUO_SESSION_MAX)`);
    if (this.sessions.some((s) => s.name === name)) throw new LuoErrnoError("EEXIST", `session '${name}' exists`);
    const s: LuoSession = { name, files: [] };
    this.sessions.push(s);
    return s;
  }

  /** LIVEUPDATE_SESSION_PRESERVE_FD on @sessFd. */
  preserveFd(sessFd: number, fd: number, token: bigint): void {
    this.preserveFile(this.requireKind(sessFd, "session", "a session").session, fd, token);
  }

  /** luo_preserve_file on @s, checks in the kernel's order. */
  preserveFile(s: LuoSession, fd: number, token: bigint): void {
    if (s.files.some((f) => f.token === token)) throw new LuoErrnoError("EEXIST", `token ${token} is in use in session '${s.name}'`);
    if (s.files.length === LUO_FILE_MAX) throw new LuoErrnoError("ENOSPC", `session '${s.name}' has ${LUO_FILE_MAX} files (LUO_FILE_MAX)`);
    const f = this.file(fd);
    if (!s.filesMem) s.filesMem = this.allocPreserve(LUO_FILE_ARRAY_SIZE, `the file array of session '${s.name}'`);
    const undoMem = (): void => {
      if (s.files.length === 0 && s.filesMem) {
        khoUnpreserveFree(this.m, this.track, s.filesMem.phys, s.filesMem.order);
        delete s.filesMem;
      }
    };
    // memfd_luo_can_preserve: a shmem file with no links; nothing else has a handler.
    if (f.kind !== "memfd") {
      undoMem();
      throw new LuoErrnoError("ENOENT", `no file handler can preserve fd ${fd} (${f.kind === "other" ? f.path : f.kind})`);
    }
    if (this.preserved.has(f.memfd)) {
      undoMem();
      throw new LuoErrnoError("EBUSY", `memfd '${f.memfd.name}' is already preserved`);
    }
    let p: MemfdPreserved;
    try {
      p = memfdLuoPreserve(this.m, this.track, f.memfd);
    } catch (e) {
      undoMem();
      throw new LuoErrnoError("ENOMEM", `memfd '${f.memfd.name}': ${(e as Error).message}`);
    }
    this.preserved.add(f.memfd);
    s.files.push({ token, memfd: f.memfd, preserved: p });
  }

  /* luo_session_release of an outgoing session: luo_file_unpreserve_files (last first), then forget it. */
  private releaseSession(s: LuoSession): void {
    while (s.files.length > 0) {
      const f = s.files.pop()!;
      memfdLuoUnpreserve(this.m, this.track, f.memfd, f.preserved);
      this.preserved.delete(f.memfd);
    }
    if (s.filesMem) {
      khoUnpreserveFree(this.m, this.track, s.filesMem.phys, s.filesMem.order);
      delete s.filesMem;
    }
    this.sessions.splice(this.sessions.indexOf(s), 1);
  }

  /**
   * liveupdateReboot - luo_session_serialize(): freeze each session's
   * files in preservation order, write its file array, then the session
   * block (count and one luo_session_ser per session, list order). The
   * memfd freeze cannot fail, so there is no unfreeze path to take.
   */
  liveupdateReboot(): LuoHandoff {
    const out: LuoHandoff = { fdtPhys: this.fdtPhys, sessionBlock: this.sessionBlock.phys, liveupdateNum: this.liveupdateNum, sessions: [] };
    const ser = this.sessions.map((s) => {
      for (const f of s.files) memfdLuoFreeze(this.m, f.memfd, f.preserved);
      if (s.files.length > 0 && s.filesMem) {
        this.m.mem.write(s.filesMem.phys, encodeLuoFileArray(s.files.map((f) => ({ compatible: MEMFD_LUO_FH_COMPATIBLE, data: BigInt(f.preserved.ser), token: f.token }))));
      }
      out.sessions.push({ name: s.name, files: s.files.map((f) => ({ token: f.token, size: f.memfd.size, ser: f.preserved.ser })) });
      // luo_file_freeze leaves files/count 0 for a session without files.
      return { name: s.name, files: s.files.length > 0 && s.filesMem ? BigInt(s.filesMem.phys) : 0n, count: BigInt(s.files.length) };
    });
    this.m.mem.write(this.sessionBlock.phys, encodeLuoSessionBlock(ser));
    return out;
  }
}

/** luoJson - @h as report.json's `luo` lists it. */
export function luoJson(h: LuoHandoff): { fdt: string; liveupdateNumber: string; sessionBlock: string; sessions: { name: string; files: { token: string; size: number; ser: string }[] }[] } {
  const hx = (v: number | bigint): string => "0x" + v.toString(16);
  return {
    fdt: hx(h.fdtPhys),
    liveupdateNumber: hx(h.liveupdateNum),
    sessionBlock: hx(h.sessionBlock),
    sessions: h.sessions.map((s) => ({ name: s.name, files: s.files.map((f) => ({ token: hx(f.token), size: f.size, ser: hx(f.ser) })) })),
  };
}
