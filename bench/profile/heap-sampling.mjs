/*
 * bench/profile/heap-sampling.mjs - a --import preload that samples every
 * allocation of the process, including objects the GC has already freed,
 * and writes a .heapprofile at exit (node --heap-prof keeps only what is
 * still live at exit, which misses the per-range garbage).
 *
 *   KHOSIM_HEAP_PROFILE=/tmp/b.heapprofile node --import ./bench/profile/heap-sampling.mjs kernel-b/dist/main.js ...
 *   node bench/profile/top.mjs /tmp/b.heapprofile
 */
import * as fs from "node:fs";
import { Session } from "node:inspector";

const out = process.env["KHOSIM_HEAP_PROFILE"] ?? `heap-${process.pid}.heapprofile`;
const session = new Session();
session.connect();
session.post("HeapProfiler.startSampling", {
  samplingInterval: 64 * 1024,
  includeObjectsCollectedByMajorGC: true,
  includeObjectsCollectedByMinorGC: true,
});
process.on("exit", () => {
  // Inspector calls on the main thread's own session complete synchronously.
  session.post("HeapProfiler.stopSampling", (err, res) => {
    if (!err) fs.writeFileSync(out, JSON.stringify(res.profile));
  });
});
