/* npm run diff's pure cores: page comparison, metadata and FDT diff, successor check, output. */
export * from "./pages.js";
export * from "./meta.js";
export * from "./fdt-diff.js";
export * from "./model.js";
export * from "./successor.js";
export * from "./kernel.js";
export * from "./render.js";
export * from "./regions.js";
export * from "./view.js";
export * from "./readahead.js";
