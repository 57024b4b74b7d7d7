/*
 * The map page's script: the source of view.ts's and client.ts's functions,
 * inlined by html.ts in this order.
 */
import { mapAddrAt, mapClientMain, mapSelectionSvg } from "./client.js";
import {
  mapAggregateView,
  mapCount,
  mapDescribe,
  mapEsc,
  mapFind,
  mapFit,
  mapHex,
  mapItem,
  mapMinBpr,
  mapOverview,
  mapPan,
  mapPoint,
  mapPrepare,
  mapRenderSvg,
  mapRuns,
  mapSize,
  mapWinEnd,
  mapZoom,
} from "./view.js";

/** Everything html.ts inlines into the page's script, in this order. */
export const MAP_VIEW_FUNCTIONS: ReadonlyArray<(...args: any[]) => unknown> = [
  mapHex,
  mapSize,
  mapCount,
  mapEsc,
  mapPrepare,
  mapFind,
  mapMinBpr,
  mapOverview,
  mapWinEnd,
  mapFit,
  mapZoom,
  mapPan,
  mapAggregateView,
  mapRuns,
  mapItem,
  mapDescribe,
  mapAddrAt,
  mapPoint,
  mapSelectionSvg,
  mapRenderSvg,
  mapClientMain,
];

/** mapViewSource - the inlined script: the functions above and a shim for transpiler name helpers. */
export function mapViewSource(): string {
  return ["var __name = function (f) { return f; };", ...MAP_VIEW_FUNCTIONS.map((f) => f.toString())].join("\n");
}
