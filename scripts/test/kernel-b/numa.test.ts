/*
 * Banked NUMA machines end to end through the real CLIs: kernel-a on
 * scenarios/numa-2node.json writes one memory node per bank with
 * numa-node-id and a memory.img as long as the banks (not the span);
 * kernel-b revives it from the files alone and hands off again with the
 * same banks; the memoryless-node variant fails scratch reservation under
 * 6.16-6.19 (--kernel v6.19) and hands over under kho-v2.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, expect, test } from "vitest";
import { parseBootDtb } from "@khosim/shared/abi";
import { makeHandoff, makeTmp, readJson, removeTmp, runA, runB, type Handoff, type SuccessorReportJson } from "../handoff-helpers.js";

const SCENARIOS = path.join(__dirname, "../../../scenarios");
const G = 2 ** 30;
let tmp: string | undefined;
let h: Handoff;

beforeAll(async () => {
  tmp = makeTmp("numa");
  h = await makeHandoff(path.join(tmp, "gen1"), ["--scenario", path.join(SCENARIOS, "numa-2node.json")]);
});

afterAll(() => removeTmp(tmp));

test("two-node handoff between two processes: banks in boot.dtb, the hole costs no image length, kernel-b revives with four scratch areas and hands off again", async () => {
  const boot = parseBootDtb(fs.readFileSync(path.join(h.dir, "boot.dtb")));
  expect(boot.banks).toEqual([
    { base: G, size: 2 * G, node: 0 },
    { base: 4 * G, size: 2 * G, node: 1 },
  ]);
  expect(boot.numa).toBe(true);
  // Span [1G, 6G) is 5 GiB; the 1 GiB hole is not in the file.
  expect(fs.statSync(path.join(h.dir, "memory.img")).size).toBe(4 * G);
  const gen2 = path.join(tmp!, "gen2");
  const b = await runB(["--in", h.dir, "--handoff-out", gen2]);
  expect(b.status, b.stderr).toBe(0);
  const rep = readJson<SuccessorReportJson>(path.join(h.dir, "successor.json"));
  expect(rep.outcome).toBe("revived");
  expect(rep.scratch).toHaveLength(4);
  expect(rep.verified.folios).toBeGreaterThan(0);
  // The next generation keeps the banks and nodes, and boots again.
  expect(parseBootDtb(fs.readFileSync(path.join(gen2, "boot.dtb")))).toMatchObject({ banks: boot.banks, numa: true });
  expect(fs.statSync(path.join(gen2, "memory.img")).size).toBe(4 * G);
  const b2 = await runB(["--in", gen2]);
  expect(b2.status, b2.stderr).toBe(0);
  expect(readJson<SuccessorReportJson>(path.join(gen2, "successor.json")).outcome).toBe("revived");
});

test("a memoryless node: kernel-a --kernel v6.19 cannot reserve its scratch and stops with one line; kho-v2 skips it", async () => {
  const scen = path.join(SCENARIOS, "numa-memoryless.json");
  const old = await runA(["--out", path.join(tmp!, "v619"), "--scenario", scen, "--kernel", "v6.19"]);
  expect(old.status).toBe(2);
  expect(old.stderr.trim().split("\n").filter((l) => !l.startsWith("{"))).toEqual([expect.stringMatching(/node 2 \(memoryless\) scratch .*disabling kexec handover/)]);
  expect(fs.existsSync(path.join(tmp!, "v619"))).toBe(false);
  const fixed = await makeHandoff(path.join(tmp!, "v2"), ["--scenario", scen, "--kernel", "kho-v2"]);
  const sa = parseBootDtb(fs.readFileSync(path.join(fixed.dir, "boot.dtb"))).khoScratch!;
  expect(sa.size).toBe(4n * 16n);
});
