/*
 * DOC: the simulated machine's page geometry (x86-64).
 *
 * Every other abi module builds on these. Any change here is a format break
 * for every contract: a new compatible for all of them.
 */

/** PAGE_SHIFT / PAGE_SIZE of the simulated machine (x86-64). */
export const PAGE_SHIFT = 12;
export const PAGE_SIZE = 1 << PAGE_SHIFT;

/** Highest folio order the predecessor's buddy allocator hands out by default. */
export const MAX_PAGE_ORDER = 10;
