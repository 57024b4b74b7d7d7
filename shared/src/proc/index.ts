/* @khosim/shared/proc */
export * from "./cli.js";
export * from "./handoff-dir.js";
export * from "./image-extents.js";
export * from "./progress.js";
export * from "./signals.js";
export * from "./successor-options.js";
