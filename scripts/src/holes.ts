/*
 * Where a sparse file holds data. Node has no lseek(SEEK_DATA/SEEK_HOLE), so
 * one python3 child process walks every file with os.lseek and prints its data
 * extents. A file system without SEEK_DATA support reports the whole file as
 * data (Linux's generic implementation), which is still correct, only slower
 * for the caller. When python3 cannot be run at all, the caller gets
 * undefined and must read everything.
 */
import { spawnSync } from "node:child_process";

/** A byte range [start, end) of a file. */
export interface Extent {
  start: number;
  end: number;
}

/** The interpreter used for the lseek walk (on every machine here). */
export const HOLES_PYTHON = "/usr/bin/python3";

/*
 * For each file: "F <index> <size>", then "D <start> <end>" per data extent,
 * or "E <index> <message>" when that file cannot be walked. Offsets in
 * decimal (exact: Python ints).
 */
const SCRIPT = `
import os, sys
out = sys.stdout
for i, p in enumerate(sys.argv[1:]):
    try:
        fd = os.open(p, os.O_RDONLY)
    except OSError as e:
        out.write("E %d %s\\n" % (i, e.strerror))
        continue
    try:
        size = os.fstat(fd).st_size
        lines = ["F %d %d" % (i, size)]
        off = 0
        while off < size:
            try:
                d = os.lseek(fd, off, os.SEEK_DATA)
            except OSError as e:
                if e.errno == 6:  # ENXIO: no data past off
                    break
                raise
            h = os.lseek(fd, d, os.SEEK_HOLE)
            lines.append("D %d %d" % (d, h))
            off = h
        out.write("\\n".join(lines) + "\\n")
    except (OSError, AttributeError) as e:
        out.write("E %d %s\\n" % (i, getattr(e, "strerror", None) or str(e)))
    finally:
        os.close(fd)
out.flush()
`;

/** What {@link dataExtents} found for one file. */
export type ExtentsResult = { extents: Extent[]; size: number } | { error: string };

/**
 * parseExtentsOutput - decode the child's output for @count files. Pure, for
 * tests. A file the output does not mention gets an error result.
 */
export function parseExtentsOutput(text: string, count: number): ExtentsResult[] {
  const res: ExtentsResult[] = Array.from({ length: count }, () => ({ error: "not reported by the lseek walk" }));
  let cur: { extents: Extent[]; size: number } | undefined;
  for (const line of text.split("\n")) {
    if (line === "") continue;
    const sp1 = line.indexOf(" ");
    const tag = line.slice(0, sp1);
    const rest = line.slice(sp1 + 1);
    if (tag === "F") {
      const [i, size] = rest.split(" ").map(Number);
      cur = { extents: [], size: size! };
      if (i! >= 0 && i! < count) res[i!] = cur;
    } else if (tag === "D" && cur) {
      const sp = rest.indexOf(" ");
      cur.extents.push({ start: Number(rest.slice(0, sp)), end: Number(rest.slice(sp + 1)) });
    } else if (tag === "E") {
      const sp = rest.indexOf(" ");
      const i = Number(rest.slice(0, sp));
      if (i >= 0 && i < count) res[i] = { error: rest.slice(sp + 1) };
      cur = undefined;
    }
  }
  return res;
}

/**
 * dataExtents - the data extents of each of @files, ascending, from one
 * python3 process. Returns undefined when the process cannot run or fails
 * (the caller then reads whole files); a file it could not walk gets
 * `{ error }`.
 */
export function dataExtents(files: readonly string[], python = HOLES_PYTHON): ExtentsResult[] | undefined {
  const r = spawnSync(python, ["-c", SCRIPT, ...files], { encoding: "utf8", maxBuffer: 1 << 30, stdio: ["ignore", "pipe", "pipe"] });
  if (r.error || r.status !== 0) return undefined;
  return parseExtentsOutput(r.stdout, files.length);
}
