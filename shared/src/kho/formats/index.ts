/*
 * The registry of preservation formats (kernel-a --format, successor
 * detection). A format registered here gets the whole contract suite
 * (scripts/test/format-contract.test.ts).
 */
import { rangesFormat, postedFormat } from "./ranges.js";
import { radixFormat } from "./radix/format.js";
import { bitmapsFormat, bitmapsPageFormat } from "./bitmaps/format.js";
import type { KhoFormat, KhoFormatName } from "./types.js";

export * from "./types.js";
export { rangesFormat, postedFormat, khoMemWalk, KHO_POSTED_MARKER, type KhoMemWalkResult } from "./ranges.js";
export { radixFormat, bitmapsFormat, bitmapsPageFormat };

/** Every format a successor recognises, in detection order. */
export const KHO_FORMATS: readonly KhoFormat[] = [rangesFormat, postedFormat, radixFormat, bitmapsFormat, bitmapsPageFormat];

/** The default format. */
export const DEFAULT_FORMAT: KhoFormatName = "ranges";

/** khoFormat - the format called @name, or undefined. */
export function khoFormat(name: string): KhoFormat | undefined {
  return KHO_FORMATS.find((f) => f.name === name);
}
