/*
 * FDT error codes, after libfdt's FDT_ERR_* (libfdt/libfdt.h).
 *
 * Every failure in the fdt/ modules is an FdtError carrying one of a small
 * set of codes and the byte offset in the blob where the rule broke, so a
 * caller can both branch on the kind of fault and report where it is.
 */
import { hex } from "../lib/bytes.js";

/**
 * The codes, with the libfdt meaning they mirror:
 *  - NOTFOUND      the requested node or property does not exist
 *  - TRUNCATED     a block, name, entry or value runs past its container
 *  - BADMAGIC      the header magic is not 0xd00dfeed
 *  - BADVERSION    version/last_comp_version pair this reader cannot handle
 *  - BADSTRUCTURE  the structure block breaks the token grammar
 *  - BADOFFSET     an offset handed in does not name a node (or a bad nameoff)
 *  - BADLAYOUT     blocks overlap each other or the header
 *  - ALIGNMENT     a block starts at an offset that is not suitably aligned
 *  - BADVALUE      a property value (or a name handed to the writer) is malformed
 *  - BADSTATE      the sequential writer was called out of order
 */
export type FdtErrorCode =
  | "NOTFOUND"
  | "TRUNCATED"
  | "BADMAGIC"
  | "BADVERSION"
  | "BADSTRUCTURE"
  | "BADOFFSET"
  | "BADLAYOUT"
  | "ALIGNMENT"
  | "BADVALUE"
  | "BADSTATE";

/**
 * FdtError - a rule of the flattened device tree format was broken.
 * @code: which kind of fault (FdtErrorCode)
 * @offset: absolute byte offset in the blob where the fault is, or -1 when
 *	the fault has no place in a blob (e.g. a bare property value)
 * @detail: one line naming the rule
 *
 * The message reads `FDT_ERR_<code> at 0x<offset>: <detail>`.
 */
export class FdtError extends Error {
  constructor(
    readonly code: FdtErrorCode,
    readonly offset: number,
    readonly detail: string,
  ) {
    super(offset >= 0 ? `FDT_ERR_${code} at ${hex(offset)}: ${detail}` : `FDT_ERR_${code}: ${detail}`);
    this.name = "FdtError";
  }
}

/**
 * fdtQuote - @s as a JSON string literal, cut to 64 characters, so that a
 * name taken from a hostile blob cannot break the one-line message.
 */
export function fdtQuote(s: string): string {
  return JSON.stringify(s.length > 64 ? s.slice(0, 64) + "..." : s);
}
