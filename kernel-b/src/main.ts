/*
 * kernel-b, the successor: boot from a handoff directory alone, revive what
 * KHO preserved, verify it, and report. This file does I/O only; the boot
 * itself is successor.ts.
 *
 * Exit codes: 0 revived and verified; 1 revived but verification failed;
 * 2 unusable input (cannot boot at all, or a usage error); 3 booted without
 * KHO (the KHO data was absent or invalid; the reason is printed).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import {
  BootDtbError,
  HANDOFF_BOOT_DTB,
  HANDOFF_KHO_DTB,
  HANDOFF_MEMORY_IMG,
  ImageError,
  ImageMem,
  MAX_PAGE_ORDER,
  SUCCESSOR_REPORT,
  createLogger,
  hex,
  initCsum,
  intOption,
  newCommand,
  parseBootDtb,
  runMain,
  toJson,
  writeFileAtomic,
  type LogFormat,
  type Logger,
} from "@khosim/shared";
import { EXIT_CODES, UnusableInputError, bootSuccessor } from "./successor.js";

/*
 * kho.dtb is for people and tools; like a real kernel, kernel-b reads the KHO
 * FDT from memory. Say so when the copy and the image disagree, so that
 * someone who edited kho.dtb is not misled.
 */
function checkKhoDtbCopy(file: string, mem: ImageMem, fdt: { addr: string; size: string } | null, log: Logger): void {
  if (!fdt || !fs.existsSync(file)) return;
  const inImage = mem.read(Number(fdt.addr), Number(fdt.size));
  if (!Buffer.from(inImage).equals(fs.readFileSync(file))) {
    log.warn(`${file} differs from the KHO FDT in memory.img at ${fdt.addr}; the successor used the image's, as a kernel would`);
  }
}

async function main(): Promise<number> {
  const cmd = newCommand("kernel-b", "khosim successor: boot from a KHO handoff directory, restore and verify")
    .requiredOption("--in <dir>", "handoff directory written by kernel-a")
    .option("--report <file>", "where to write the successor report (default: DIR/successor.json)")
    .option("--max-order <n>", "this kernel's MAX_PAGE_ORDER", intOption("--max-order", 0, 18), MAX_PAGE_ORDER);
  cmd.parse(process.argv);
  const o = cmd.opts<{ in: string; report?: string; maxOrder: number; logFormat?: LogFormat }>();
  const log = createLogger("kernel-b", o.logFormat);
  const reportFile = o.report ?? path.join(o.in, SUCCESSOR_REPORT);

  const bootFile = path.join(o.in, HANDOFF_BOOT_DTB);
  let bootBytes: Uint8Array;
  try {
    bootBytes = fs.readFileSync(bootFile);
  } catch (e) {
    throw new UnusableInputError(`${bootFile}: cannot read: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
  let boot;
  try {
    boot = parseBootDtb(bootBytes);
  } catch (e) {
    if (e instanceof BootDtbError) throw new UnusableInputError(`${bootFile}: ${e.message}`);
    throw e;
  }
  const mem = ImageMem.open(path.join(o.in, HANDOFF_MEMORY_IMG), boot.ram.base, boot.ram.size);
  await initCsum();
  log.info(`Booting kernel-b: ${hex(boot.ram.size)} bytes of RAM at ${hex(boot.ram.base)}, MAX_PAGE_ORDER ${o.maxOrder}`);
  const t0 = process.hrtime.bigint();
  const rep = bootSuccessor(boot, mem, { maxOrder: o.maxOrder, log });
  checkKhoDtbCopy(path.join(o.in, HANDOFF_KHO_DTB), mem, rep.khoFdt, log);
  mem.close();
  writeFileAtomic(reportFile, toJson(rep));
  const wallMs = Number(process.hrtime.bigint() - t0) / 1e6;
  log.info({ wallMs, maxRssKiB: process.resourceUsage().maxRSS, chunks: rep.chunks.length, ranges: rep.ranges.length, walkNs: rep.timing?.walkNs, reserveNs: rep.timing?.reserveNs, outcome: rep.outcome }, `report written to ${reportFile}`);
  process.stdout.write(
    rep.outcome === "revived"
      ? `KHO restore succeeded: ${rep.restored.folios} folios, ${rep.restored.ranges} ranges, ${rep.ranges.length} ranges reserved from ${rep.chunks.length} chunks\n`
      : rep.outcome === "verification-failed"
        ? `KHO restore failed: ${rep.reason}\n`
        : `booted without KHO: ${rep.reason}\n`,
  );
  return rep.exitCode;
}

runMain("kernel-b", main, (e) =>
  e instanceof UnusableInputError || e instanceof ImageError ? EXIT_CODES["unusable-input"] : undefined,
);
