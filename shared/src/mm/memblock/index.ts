/*
 * memblock, split the way mm/memblock.c reads:
 *   flags.ts    enum memblock_flags and their debugfs names
 *   types.ts    struct memblock_region, limits, MemblockError, argument checks
 *   chunk.ts    typed-array storage of a run of regions
 *   regions.ts  struct memblock_type: the sorted list, add/remove/isolate/merge
 *   alloc.ts    the free-range walk and the allocation API
 *   memblock.ts struct memblock: Memblock, the region API and queries
 */
export * from "./flags.js";
export { Memblock } from "./memblock.js";
export {
  MEMBLOCK_ALLOC_ACCESSIBLE,
  MEMBLOCK_ALLOC_ANYWHERE,
  MEMBLOCK_ALLOC_NOLEAKTRACE,
  MemblockError,
  PHYS_ADDR_MAX,
  SMP_CACHE_BYTES,
  type MemblockErrorCode,
  type MemblockRegion,
  type MemblockTypeName,
  type PhysRange,
} from "./types.js";
