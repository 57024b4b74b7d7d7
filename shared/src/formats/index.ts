/* The registry of preservation formats (kernel-a --format, successor detection). */
import { rangesFormat } from "./ranges.js";
import type { KhoFormat, KhoFormatName } from "./types.js";

export * from "./types.js";
export { rangesFormat, KHO_POSTED_MARKER } from "./ranges.js";

/** Every format a successor recognises, in detection order. */
export const KHO_FORMATS: readonly KhoFormat[] = [rangesFormat];

/** The default format. */
export const DEFAULT_FORMAT: KhoFormatName = "ranges";

/** khoFormat - the format called @name, or undefined. */
export function khoFormat(name: string): KhoFormat | undefined {
  return KHO_FORMATS.find((f) => f.name === name);
}
