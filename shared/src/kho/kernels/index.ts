/* Kernel versions (issue 12): descriptors, the version successor, its walks and restore. */
export * from "./versions.js";
export * from "./boot.js";
export * from "./walk.js";
export * from "./restore.js";
export * from "./truth.js";
export * from "./intervals.js";
