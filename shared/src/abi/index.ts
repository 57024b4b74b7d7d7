/* @khosim/shared/abi: one module per contract. */
export * from "./page.js";
export * from "./ranges.js";
export * from "./kho-fdt.js";
export * from "./boot-dtb.js";
export * from "./kho-test.js";
export * from "./kho-vmalloc.js";
export * from "./kho-test-vmalloc.js";
export * from "./bitmaps.js";
export * from "./radix.js";
export * from "./handoff.js";
/* handoff-json.ts (zod schemas) is its own export, @khosim/shared/abi/handoff-json: kernels do not load zod. */
export * from "./memblock-fdt.js";
export * from "./ram.js";
export * from "./luo.js";
export * from "./memfd-luo.js";
