/*
 * kernel-a on bad input, through the real CLI: a bad scenario or an existing
 * --out is exit 2 with exactly one line on stderr, and nothing is written.
 * What the loader says of each bad scenario is tested in process
 * (shared/test/scenario-errors.test.ts); here, once, that kernel-a prints it.
 * Each test has its own temporary directory so that "nothing created" is
 * checked on the whole directory; the tests run concurrently.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, describe, test } from "vitest";
import { lines, makeTmp, removeTmp, runA, stackLines } from "../handoff-helpers.js";

const tmps: string[] = [];
function tmpDir(tag: string): string {
  const d = makeTmp(`kernel-a-${tag}`);
  tmps.push(d);
  return d;
}
afterAll(() => tmps.forEach(removeTmp));

interface BadScenario {
  what: string;
  scenario: unknown;
  /** JSON path the error line must name. */
  jsonPath: string;
  /** Further words the line must contain. */
  mentions: string[];
}

/* One bad scenario: the loader's messages for every kind of mistake are tested in process. */
const BAD: BadScenario[] = [
  {
    what: "a folio order above MAX_PAGE_ORDER",
    scenario: { ops: [{ op: "folios", count: 1, order: 11 }] },
    jsonPath: "ops[0].order",
    mentions: ["11 is above MAX_PAGE_ORDER 10"],
  },
];

describe.concurrent("kernel-a on bad input", () => {
  describe("a bad scenario is exit 2, the loader's one line naming the file and the JSON path, and no output directory", () => {
    test.for(BAD)("$what: exit 2, one stderr line naming the file and $jsonPath, no --out created", async ({ scenario, jsonPath, mentions }, { expect }) => {
      const dir = tmpDir("scenario");
      const file = path.join(dir, "bad-scenario.json");
      fs.writeFileSync(file, JSON.stringify(scenario));
      const out = path.join(dir, "out");
      const r = await runA(["--out", out, "--scenario", file]);
      expect(r.status, r.stderr).toBe(2);
      expect(stackLines(r.stderr)).toEqual([]);
      const l = lines(r.stderr);
      expect(l, r.stderr).toHaveLength(1);
      expect(l[0]).toMatch(/^kernel-a: /);
      expect(l[0]).toContain(file);
      expect(l[0]).toContain(`${jsonPath}:`);
      for (const m of mentions) expect(l[0]).toContain(m);
      expect(r.stdout).toBe("");
      // Neither --out nor a temporary sibling of it: the directory holds only the scenario.
      expect(fs.existsSync(out)).toBe(false);
      expect(fs.readdirSync(dir)).toEqual(["bad-scenario.json"]);
    });
  });

  /** Listing of @dir with each file's content and mtime. */
  function snapshot(dir: string): [string, string, number][] {
    return fs
      .readdirSync(dir)
      .sort()
      .map((f) => [f, fs.readFileSync(path.join(dir, f), "utf8"), fs.statSync(path.join(dir, f)).mtimeMs]);
  }

  describe("an existing --out", () => {
    test("without --force: exit 2, one stderr line naming the directory, and the directory untouched", async ({ expect }) => {
      const dir = tmpDir("exists");
      const out = path.join(dir, "out");
      fs.mkdirSync(out);
      fs.writeFileSync(path.join(out, "keep.txt"), "an earlier handoff\n");
      fs.writeFileSync(path.join(out, "memory.img"), "not really an image\n");
      const before = snapshot(out);
      const r = await runA(["--out", out]);
      expect(r.status, r.stderr).toBe(2);
      expect(stackLines(r.stderr)).toEqual([]);
      const l = lines(r.stderr);
      expect(l, r.stderr).toHaveLength(1);
      expect(l[0]).toMatch(/^kernel-a: /);
      expect(l[0]).toContain(out);
      expect(l[0]).toContain("--force");
      expect(snapshot(out)).toEqual(before);
      expect(fs.readdirSync(dir)).toEqual(["out"]);
    });

    test("with --force: exit 0 and the directory is replaced by a complete handoff, nothing left beside it", async ({ expect }) => {
      const dir = tmpDir("force");
      const out = path.join(dir, "out");
      fs.mkdirSync(out);
      fs.writeFileSync(path.join(out, "keep.txt"), "an earlier handoff\n");
      const r = await runA(["--out", out, "--force"]);
      expect(r.status, r.stderr).toBe(0);
      expect(fs.readdirSync(out).sort()).toEqual(["boot.dtb", "kho.dtb", "memory.img", "memory.img.extents", "report.json"]);
      expect(fs.readdirSync(dir)).toEqual(["out"]);
      const report = JSON.parse(fs.readFileSync(path.join(out, "report.json"), "utf8")) as { machine: { ram: string } };
      expect(fs.statSync(path.join(out, "memory.img")).size).toBe(Number(report.machine.ram));
    });
  });
});
