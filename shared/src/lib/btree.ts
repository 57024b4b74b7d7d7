/*
 * The one place that loads sorted-btree.
 *
 * sorted-btree is CommonJS with `exports.default = BTree`. A default import
 * yields the module object under Node ESM and tsx but the class under vitest,
 * so load it with require(), which behaves the same everywhere, and re-export
 * the class with its types.
 */
import { createRequire } from "node:module";
// Under NodeNext an ESM default import of a CJS module types module.exports.
import type SortedBtreeExports from "sorted-btree";
import type * as SortedBtree from "sorted-btree";

const require = createRequire(import.meta.url);
const mod = require("sorted-btree") as typeof SortedBtreeExports;

/** The sorted-btree B+ tree class (a sorted map with range queries). */
export const BTree = mod.default;
/** Instance type of {@link BTree}. */
export type BTree<K = unknown, V = unknown> = SortedBtree.default<K, V>;
