/*
 * enum memblock_flags, values as in include/linux/memblock.h (6.15+, where
 * MEMBLOCK_KHO_SCRATCH was added by the KHO series), and their names as
 * memblock's debugfs prints them (mm/memblock.c: flagname[]).
 */
import { hex } from "../../lib/bytes.js";

/** No special request. */
export const MEMBLOCK_NONE = 0x0;
/** Hot(un)pluggable memory region. */
export const MEMBLOCK_HOTPLUG = 0x1;
/** Mirrored memory region. */
export const MEMBLOCK_MIRROR = 0x2;
/** Not added to the kernel direct mapping; never allocated, never freed to the buddy allocator. */
export const MEMBLOCK_NOMAP = 0x4;
/** Always detected via a driver; skipped like NOMAP. */
export const MEMBLOCK_DRIVER_MANAGED = 0x8;
/** Reserved region whose struct pages are not initialized (reserved regions only). */
export const MEMBLOCK_RSRV_NOINIT = 0x10;
/** Reserved for kernel use: set on everything memblock allocations reserve. */
export const MEMBLOCK_RSRV_KERN = 0x20;
/** Scratch memory for kexec handover: the only memory allocations may use in scratch-only mode. */
export const MEMBLOCK_KHO_SCRATCH = 0x40;

/** Every flag bit the model knows. */
export const MEMBLOCK_FLAGS_ALL =
  MEMBLOCK_HOTPLUG |
  MEMBLOCK_MIRROR |
  MEMBLOCK_NOMAP |
  MEMBLOCK_DRIVER_MANAGED |
  MEMBLOCK_RSRV_NOINIT |
  MEMBLOCK_RSRV_KERN |
  MEMBLOCK_KHO_SCRATCH;

const FLAG_NAMES: ReadonlyArray<readonly [number, string]> = [
  [MEMBLOCK_HOTPLUG, "HOTPLUG"],
  [MEMBLOCK_MIRROR, "MIRROR"],
  [MEMBLOCK_NOMAP, "NOMAP"],
  [MEMBLOCK_DRIVER_MANAGED, "DRV_MNG"],
  [MEMBLOCK_RSRV_NOINIT, "RSV_NIT"],
  [MEMBLOCK_RSRV_KERN, "RSV_KERN"],
  [MEMBLOCK_KHO_SCRATCH, "KHO_SCRATCH"],
];

/**
 * memblockFlagNames - render flags the way memblock's debugfs does.
 * @flags: region flags
 *
 * Return: "NONE" or the names joined by "|", e.g. "RSV_NIT|RSV_KERN".
 */
export function memblockFlagNames(flags: number): string {
  const names = FLAG_NAMES.filter(([bit]) => (flags & bit) !== 0).map(([, n]) => n);
  const unknown = flags & ~MEMBLOCK_FLAGS_ALL;
  if (unknown) names.push(hex(unknown));
  return names.length ? names.join("|") : "NONE";
}
