/*
 * The map's colours: one class per kind of page, preserved ranges split by
 * folio order (a viridis gradient, dark = small order) or phys range.
 */
import { khoDataIsFolio, khoDataOrder } from "@khosim/shared/abi";
import type { Region } from "../inspect.js";
import type { MapClass } from "./types.js";

/** Viridis at t = 0, 0.1, ..., 1. */
const VIRIDIS = ["#440154", "#482475", "#414487", "#355f8d", "#2a788e", "#21918c", "#22a884", "#44bf70", "#7ad151", "#bddf26", "#fde725"];

/** The default MAX_PAGE_ORDER: the legend always shows orders 0..10. */
export const MAP_LEGEND_MAX_ORDER = 10;

function mix(a: string, b: string, t: number): string {
  const pa = [1, 3, 5].map((i) => parseInt(a.slice(i, i + 2), 16));
  const pb = [1, 3, 5].map((i) => parseInt(b.slice(i, i + 2), 16));
  return "#" + pa.map((x, i) => Math.round(x + (pb[i]! - x) * t).toString(16).padStart(2, "0")).join("");
}

/** mapOrderColor - colour of folio order @order on a gradient over 0..@maxOrder. */
export function mapOrderColor(order: number, maxOrder: number): string {
  const t = maxOrder <= 0 ? 0 : Math.min(1, order / maxOrder);
  const x = t * (VIRIDIS.length - 1);
  const i = Math.min(VIRIDIS.length - 2, Math.floor(x));
  return mix(VIRIDIS[i]!, VIRIDIS[i + 1]!, x - i);
}

/** mapClassKey - the class of a region: its kind, or for a preserved range its order / "phys". */
export function mapClassKey(r: Pick<Region, "kind" | "data">): string {
  if (r.kind !== "preserved") return r.kind;
  const d = r.data ?? 0;
  if (khoDataIsFolio(d)) return `order-${khoDataOrder(d)}`;
  return d === 0 ? "phys" : "preserved-other";
}

/**
 * mapClasses - the class table for maps whose preserved folios go up to
 * @maxOrder (at least MAP_LEGEND_MAX_ORDER is listed). Index 0 is "outside"
 * (an address outside this map's RAM, not drawn). @lostUnder: the kernel
 * version whose lost pages are drawn (map --kernel), named in the legend.
 */
export function mapClasses(maxOrder = MAP_LEGEND_MAX_ORDER, lostUnder?: string): MapClass[] {
  const top = Math.max(MAP_LEGEND_MAX_ORDER, maxOrder);
  const c: MapClass[] = [
    { key: "outside", name: "outside RAM", color: "#ffffff", rank: -1, legend: false },
    { key: "free", name: "free memory", color: "#e9edf1", rank: 0, legend: true },
    { key: "scratch", name: "scratch area", color: "#dfe3f6", rank: 1, hatch: true, item: "scratch area ", legend: true },
  ];
  for (let o = 0; o <= top; o++) {
    c.push({ key: `order-${o}`, name: `order-${o} folios`, color: mapOrderColor(o, top), rank: 2, item: "range #", legend: o <= MAP_LEGEND_MAX_ORDER });
  }
  c.push(
    { key: "phys", name: "phys range", color: "#b0643c", rank: 2, item: "range #", legend: true },
    { key: "preserved-other", name: "preserved (unknown data)", color: "#7f7f7f", rank: 2, item: "range #", legend: false },
    { key: "chunk", name: "chunk page", color: "#e5202e", rank: 3, item: "chunk ", legend: true },
    { key: "subtree-info", name: "kho_test info blob", color: "#ffb300", rank: 4, legend: true },
    { key: "subtree-fdt", name: "kho_test FDT", color: "#ff6f00", rank: 5, legend: true },
    { key: "scratch-array", name: "kho_scratch array", color: "#00b8d4", rank: 6, legend: true },
    { key: "kho-fdt", name: "KHO FDT", color: "#d500f9", rank: 7, legend: true },
    { key: "same", name: "same classification", color: "#e9edf1", rank: 0, legend: false },
    { key: "differs", name: "classification differs", color: "#e5202e", rank: 8, legend: false },
    // Above everything: a lost KHO FDT page is drawn as lost (its label still says what it was).
    { key: "lost", name: lostUnder === undefined ? "lost (preserved, not reserved)" : `lost under ${lostUnder} (preserved, not reserved)`, color: "#111111", rank: 9, legend: lostUnder !== undefined },
    // Last, so the other classes keep their indices; in the legend whenever a map has one.
    { key: "hole", name: "hole between RAM banks (no memory, no image bytes)", color: "#fbf3dc", rank: 0.5, legend: false },
  );
  return c;
}

/** mapClassIndex - key -> index in @classes. */
export function mapClassIndex(classes: readonly MapClass[]): Map<string, number> {
  return new Map(classes.map((c, i) => [c.key, i]));
}
