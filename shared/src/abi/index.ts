/* @khosim/shared/abi */
export * from "./boot-dtb.js";
export * from "./kho-test.js";
export * from "./kho.js";
