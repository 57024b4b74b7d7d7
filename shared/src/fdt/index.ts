/*
 * khosim's own flattened device tree code, after libfdt: errors.ts (codes),
 * check.ts (format constants, strict validation), sw.ts (sequential
 * writer), ro.ts (read-only access, tree and dts views).
 */
export { FdtError, type FdtErrorCode } from "./errors.js";
export {
  FDT_BEGIN_NODE,
  FDT_END,
  FDT_END_NODE,
  FDT_HDR,
  FDT_HEADER_SIZE,
  FDT_LAST_COMP_VERSION,
  FDT_MAGIC,
  FDT_MAX_DEPTH,
  FDT_MIN_VERSION,
  FDT_NOP,
  FDT_PROP,
  FDT_RSV_ENTRY_SIZE,
  FDT_TAGSIZE,
  FDT_VERSION,
  type FdtHeader,
  type FdtReservation,
  type FdtToken,
  fdtCheckFull,
  fdtCheckHeader,
  fdtNextTag,
  fdtPropName,
  fdtReadHeader,
  fdtReservations,
  fdtTagAlign,
} from "./check.js";
export { FDT_PACKED_RSVMAP_OFFSET, FDT_SW_RSVMAP_OFFSET, FdtWriter, fdtFromTree, fdtPack } from "./sw.js";
export {
  FdtRo,
  type FdtNode,
  type FdtProperty,
  dtsValue,
  fdtToDts,
  fdtToTree,
  propString,
  propStringList,
  fdtStringlistContains,
  propU32be,
  propU64le,
} from "./ro.js";
