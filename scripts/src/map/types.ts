/*
 * The memory map's data model: what the HTML embeds (compact JSON) and what
 * the renderer in view.ts reads, in Node and in the browser alike.
 */

/** One colour of the map: a kind of page (a preserved range's order, chunk, scratch, ...). */
export interface MapClass {
  /** Stable key: "free", "scratch", "phys", "order-3", "chunk", "kho-fdt", ..., "same", "differs". */
  key: string;
  /** Legend and tooltip text ("order-3 folios", "chunk page", ...). */
  name: string;
  color: string;
  /** Importance: a pixel that aggregates several classes takes the colour of the highest rank. */
  rank: number;
  /** Drawn with a hatch pattern over `color` (scratch). */
  hatch?: boolean;
  /** Tooltip prefix for a region's index: "range #", "chunk ", "scratch area ". */
  item?: string;
  /** Shown in the legend even when absent from every map. */
  legend: boolean;
}

/** A landmark worth a callout: the KHO FDT, the scratch array, the sub-tree pages, scratch areas, the first chunk. */
export interface MapMark {
  start: number;
  end: number;
  cls: number;
  label: string;
}

/**
 * One map: a run-length list of segments covering [base, base + size).
 *
 * `seg` is a flat list of triples [lengthInPages, cls, idx]: a pure segment
 * has a class index and the index of its region (range in list order, chunk,
 * scratch area; -1 when none; for the difference map, an index into `pairs`).
 * An aggregated segment has cls -1 and idx pointing into `mix`, a flat list of
 * triples [cls, pages, regions] per class it contains. Segments never cross a
 * granule boundary inside aggregated detail, and consecutive aggregated
 * segments with the same set of classes are merged.
 */
export interface MapDataset {
  title: string;
  /** "a", "b" or "diff". */
  role: string;
  base: number;
  size: number;
  /** Bytes: the finest detail embedded (4096 = every page exact). */
  granule: number;
  /** Regions before aggregation. */
  regionCount: number;
  seg: number[];
  mix: number[][];
  /**
   * The chunk list (chunk i links to chunk i + 1), delta-encoded in pages:
   * the first chunk's address / 4096, then the difference to the previous
   * chunk (mostly 1: kernel-a allocates them back to back).
   */
  chunkPages: number[];
  marks: MapMark[];
  /** Difference map: [clsA, clsB] for each `differs` idx. */
  pairs?: number[][];
}

/** Drawing geometry (SVG user units = CSS pixels at 100 %). */
export interface MapGeometry {
  /** Pixel buckets per row. */
  cols: number;
  maxRows: number;
  rowH: number;
  /** Row height plus the gap under it (the gap carries callout leaders). */
  pitch: number;
  left: number;
  top: number;
  right: number;
  /** At most this many chunk links and chunk markers drawn per view (deduplicated per pixel first). */
  maxLinks: number;
}

/** A view: rows of `bpr` bytes from `start`. */
export interface MapWindow {
  start: number;
  bpr: number;
  rows: number;
}

export interface MapDoc {
  title: string;
  classes: MapClass[];
  maps: MapDataset[];
  /** The address span the windows move in (RAM, or the union of both RAMs). */
  span: { base: number; size: number };
  geo: MapGeometry;
}

/** A dataset with the start address of each segment (built once per dataset). */
export interface MapPrepared {
  ds: MapDataset;
  /** starts[i] = address of segment i; starts[n] = end. */
  starts: number[];
  /** Chunk addresses in list order (decoded chunkPages). */
  chunks: number[];
}
