/*
 * The docs say what the code does: the fault table in docs/faults.md is the
 * catalogue's own (corrupt --list --markdown), and every relative link of the
 * README and docs/ leads to a file that exists.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, test } from "vitest";
import { listFaultsMarkdown } from "../src/faults/index.js";
import { ROOT } from "../src/run.js";

const read = (f: string): string => fs.readFileSync(path.join(ROOT, f), "utf8");

describe("docs", () => {
  test("docs/faults.md carries exactly the catalogue's table (regenerate with npm run corrupt -- --list --markdown)", () => {
    const doc = read("docs/faults.md");
    const begin = doc.indexOf("| group | kind |");
    const end = doc.indexOf("<!-- end of generated table -->");
    expect(begin).toBeGreaterThan(0);
    expect(end).toBeGreaterThan(begin);
    expect(doc.slice(begin, end)).toBe(listFaultsMarkdown());
  });

  test.each(["README.md", ...fs.readdirSync(path.join(ROOT, "docs")).map((f) => `docs/${f}`)])("every relative link in %s exists", (file) => {
    const text = read(file);
    const links = [...text.matchAll(/\]\(([^)#\s]+)(?:#[^)]*)?\)/g)].map((m) => m[1]!).filter((l) => !/^[a-z]+:/.test(l));
    for (const l of links) expect(fs.existsSync(path.join(ROOT, path.dirname(file), l)), `${file}: ${l}`).toBe(true);
  });
});
