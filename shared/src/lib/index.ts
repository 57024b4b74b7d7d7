/* @khosim/shared/lib */
export * from "./bits.js";
export * from "./btree.js";
export * from "./bytes.js";
export * from "./csum.js";
export * from "./log.js";
export * from "./prng.js";
export * from "./search.js";
export * from "./size.js";
