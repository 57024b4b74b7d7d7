/* The memory map (npm run map): regions -> aggregated segments -> SVG/HTML. */
export * from "./types.js";
export * from "./classes.js";
export * from "./layout.js";
export * from "./view.js";
export * from "./client.js";
export * from "./script.js";
export * from "./html.js";
