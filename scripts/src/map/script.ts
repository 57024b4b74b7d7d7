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

/*
 * Everything html.ts inlines into the page's script, in this order, by the
 * name the page's code calls it (object keys keep it when a bundler renames
 * the declaration, as esbuild does when another module uses the name as a
 * global: client.ts does).
 */
const BY_NAME: Readonly<Record<string, (...args: any[]) => unknown>> = {
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
};

/** Everything html.ts inlines into the page's script, in this order. */
export const MAP_VIEW_FUNCTIONS: ReadonlyArray<(...args: any[]) => unknown> = Object.values(BY_NAME);

/**
 * mapViewSource - the inlined script: the functions above, each also under
 * its own name when declared under another, and a shim for transpiler name
 * helpers.
 */
export function mapViewSource(): string {
  const fns = Object.entries(BY_NAME).map(([name, f]) => {
    const src = f.toString();
    const declared = /^function\s*([\w$]+)/.exec(src)?.[1];
    return declared && declared !== name ? `${src}\nvar ${name} = ${declared};` : src;
  });
  return ["var __name = function (f) { return f; };", ...fns].join("\n");
}
