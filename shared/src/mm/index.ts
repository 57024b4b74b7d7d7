/* @khosim/shared/mm */
export * from "./buddy.js";
export * from "./image.js";
export * from "./machine.js";
export * from "./memblock/index.js";
export * from "./physmem.js";
export * from "./reserve-mem.js";
export * from "./kho-scratch.js";
