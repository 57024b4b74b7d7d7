/* @khosim/shared/kho */
export * from "./fdt.js";
export * from "./formats/index.js";
export * from "./serialize.js";
export * from "./track.js";
export * from "./walk.js";
export * from "./in/populate.js";
export * from "./in/restore.js";
export * from "./in/successor.js";
export * from "./in/next.js";
export * from "./out/finalize.js";
export * from "./out/predecessor.js";
export * from "./out/report.js";
export * from "./out/scenario.js";
export * from "./out/workload.js";
export * from "./kernels/index.js";
