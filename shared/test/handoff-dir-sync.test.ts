/* writeHandoffDir's early flush: a file the fill hands to sync() is fsynced in the thread pool and awaited before the renames. */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { createRequire, syncBuiltinESMExports } from "node:module";
import { describe, expect, test } from "vitest";
import { writeHandoffDir } from "../src/proc/handoff-dir.js";

/* Count fsync (thread pool) and fsyncSync calls made while @f runs: node:fs patched, and its ESM bindings synced. */
async function countFsyncs(f: () => Promise<void>): Promise<{ async: number; sync: number }> {
  const cjs = createRequire(import.meta.url)("node:fs") as typeof fs;
  const { fsync, fsyncSync } = cjs;
  const n = { async: 0, sync: 0 };
  cjs.fsync = ((fd: number, cb: (e: NodeJS.ErrnoException | null) => void) => (n.async++, fsync(fd, cb))) as typeof fs.fsync;
  cjs.fsyncSync = (fd: number) => (n.sync++, fsyncSync(fd));
  syncBuiltinESMExports();
  try {
    await f();
  } finally {
    cjs.fsync = fsync;
    cjs.fsyncSync = fsyncSync;
    syncBuiltinESMExports();
  }
  return n;
}

function tmpParent(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), "khosim-hsync-"));
}

describe("writeHandoffDir with sync()", () => {
  test("files flushed early and files flushed at the end all arrive, with their bytes", async () => {
    const parent = tmpParent();
    try {
      const out = path.join(parent, "h");
      const big = new Uint8Array(256 << 10).map((_, i) => i & 0xff);
      const n = await countFsyncs(() =>
        writeHandoffDir(out, false, (dir, sync) => {
          fs.writeFileSync(path.join(dir, "a.bin"), big);
          sync(path.join(dir, "a.bin"));
          sync(path.join(dir, "a.bin")); // twice: one flush
          sync(path.join(dir, "never-written")); // nothing to flush: ignored
          fs.writeFileSync(path.join(dir, "b.txt"), "b\n");
        }),
      );
      // a.bin once in the thread pool and not again; b.txt, the directory and its parent at the end.
      expect(n).toEqual({ async: 1, sync: 3 });
      expect(fs.readdirSync(out).sort()).toEqual(["a.bin", "b.txt"]);
      expect(new Uint8Array(fs.readFileSync(path.join(out, "a.bin")))).toEqual(big);
      expect(fs.readFileSync(path.join(out, "b.txt"), "utf8")).toBe("b\n");
      // Nothing temporary is left beside it.
      expect(fs.readdirSync(parent)).toEqual(["h"]);
    } finally {
      fs.rmSync(parent, { recursive: true, force: true });
    }
  });

  test("a fill that fails after starting a flush leaves nothing behind and its error propagates", async () => {
    const parent = tmpParent();
    try {
      const out = path.join(parent, "h");
      await expect(
        writeHandoffDir(out, false, async (dir, sync) => {
          fs.writeFileSync(path.join(dir, "a.bin"), new Uint8Array(64 << 10));
          sync(path.join(dir, "a.bin"));
          await Promise.resolve();
          throw new Error("fill failed");
        }),
      ).rejects.toThrow("fill failed");
      expect(fs.readdirSync(parent)).toEqual([]);
    } finally {
      fs.rmSync(parent, { recursive: true, force: true });
    }
  });
});
