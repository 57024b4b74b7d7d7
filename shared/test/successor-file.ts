/*
 * successor.json as kernel-b writes it, read back through the contract's
 * schema: for in-process boots whose point is what the file says.
 */
import { readFileSync } from "node:fs";
import { readHandoffJson, SuccessorReportSchema, type SuccessorReportJson } from "../src/abi/handoff-json.js";
import type { SuccessorBoot } from "../src/kho/in/successor.js";
import { writeSuccessorJson } from "../src/proc/handoff-dir.js";

/** writtenSuccessorJson - write @sb's successor.json to @file with kernel-b's writer, then parse it with SuccessorReportSchema. */
export function writtenSuccessorJson(sb: SuccessorBoot, file: string): SuccessorReportJson {
  writeSuccessorJson(file, sb);
  return readHandoffJson(SuccessorReportSchema, readFileSync(file, "utf8"), file);
}
