/* The fault catalogue lives in faults/ (one file per group); this module keeps the old import path. */
export * from "./faults/index.js";
