/*
 * npm run diff -- A B                 diff two handoffs
 * npm run diff -- --successor DIR     a handoff against kernel-b's view of it
 * npm run diff -- --kernel NAME DIR   what kernel version NAME would lose of a handoff
 * npm run diff -- A B --kernel NAME   ... and A B's lost pages as a region class
 *
 * A and B are handoff directories, or memory.img files with their boot.dtb
 * beside them (or given with --a-boot/--b-boot). This file only starts the
 * command; the work is scripts/src/diff/run.ts (I/O) and the rest of
 * scripts/src/diff/ (comparison, decoding, output).
 *
 * Exit codes (as diff(1) and cmp(1)):
 *   0  identical: every byte of memory.img, boot.dtb and kho.dtb is equal
 *      (--successor: the successor reserved exactly the walked ranges and
 *      restored and verified everything; --kernel NAME DIR: that version
 *      revives the handoff intact)
 *   1  different (--successor, --kernel NAME DIR: anything else). Images of different sizes
 *      (different RAM sizes, each image matching its own boot.dtb) are
 *      diffed over their common part and the rest is reported: exit 1.
 *   2  bad input, one line on stderr: a missing directory or file, an
 *      unreadable image or boot.dtb, an image whose size is not the RAM size
 *      its boot.dtb says (as kernel-b), an unusable successor.json; usage errors
 *  70  internal error (KHOSIM_DEBUG=1 prints the stack)
 */
import { runMain } from "@khosim/shared/proc";
import { DIFF_PROG, classify, runDiff } from "./diff/run.js";

runMain(
  DIFF_PROG,
  async () => {
    const r = await runDiff(process.argv.slice(2));
    process.stdout.write(r.stdout);
    return r.code;
  },
  classify,
);
