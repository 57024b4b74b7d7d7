/* The registry of preservation formats (kernel-a --format, successor detection). */
import { rangesFormat } from "./ranges.js";
import { postedFormat } from "./posted.js";
import { radixFormat } from "./radix.js";
import { bitmapsFormat, bitmapsPageFormat } from "./bitmaps.js";
import type { KhoFormat, KhoFormatName } from "./types.js";

export * from "./types.js";
export { rangesFormat, KHO_POSTED_MARKER } from "./ranges.js";
export { postedFormat, radixFormat, bitmapsFormat, bitmapsPageFormat };

/** Every format a successor recognises, in detection order. */
export const KHO_FORMATS: readonly KhoFormat[] = [rangesFormat, postedFormat, radixFormat, bitmapsFormat, bitmapsPageFormat];

/** The default format. */
export const DEFAULT_FORMAT: KhoFormatName = "ranges";

/** khoFormat - the format called @name, or undefined. */
export function khoFormat(name: string): KhoFormat | undefined {
  return KHO_FORMATS.find((f) => f.name === name);
}
