/*
 * Banked NUMA machines end to end: kernel-a on scenarios/numa-2node.json
 * writes one memory node per bank with numa-node-id and a memory.img as long
 * as the banks (not the span); the successor revives it from the files alone
 * and hands off again with the same banks; the memoryless-node variant fails
 * scratch reservation under 6.16-6.19 (--kernel v6.19) and hands over under
 * kho-v2.
 *
 * The kernels' work runs in process (the code the bundles run): kernel-a's
 * handoff is written with writeImage as kernel-a writes it, and the successor
 * boots those files as kernel-b does (ImageMem over the banks). kernel-a's
 * MachineError is its one-line exit 2 (the real process's exit 2 line is
 * checked in scripts/test/kernel-a/scenario-errors.test.ts).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, expect, test } from "vitest";
import { parseBootDtb } from "@khosim/shared/abi";
import { MachineError } from "@khosim/shared/mm";
import type { PredecessorReport } from "@khosim/shared/abi/handoff-json";
import type { MemHandoff } from "../../src/faults/index.js";
import { bootMemHandoff, closeHandoff, kernelAInProcess, readHandoffDir, successorHandOffInProcess, writeMemHandoff } from "../fault-helpers.js";
import { makeTmp, removeTmp, runB, SCENARIOS } from "../handoff-helpers.js";

const G = 2 ** 30;
let tmp: string | undefined;
let h: { handoff: MemHandoff; report: PredecessorReport; dir: string };

beforeAll(async () => {
  tmp = makeTmp("numa");
  const a = await kernelAInProcess(path.join(SCENARIOS, "numa-2node.json"));
  h = { ...a, dir: writeMemHandoff(a.handoff, a.report, path.join(tmp, "gen1")) };
});

afterAll(() => removeTmp(tmp));

test("two-node handoff: banks in boot.dtb, the hole costs no image length, the successor revives from the files with four scratch areas and hands off again", () => {
  const boot = parseBootDtb(fs.readFileSync(path.join(h.dir, "boot.dtb")));
  expect(boot.banks).toEqual([
    { base: G, size: 2 * G, node: 0 },
    { base: 4 * G, size: 2 * G, node: 1 },
  ]);
  expect(boot.numa).toBe(true);
  // Span [1G, 6G) is 5 GiB; the 1 GiB hole is not in the file.
  expect(fs.statSync(path.join(h.dir, "memory.img")).size).toBe(4 * G);
  // kernel-b --in gen1 --handoff-out gen2, on gen1's files.
  const files = readHandoffDir(h.dir);
  try {
    const b = bootMemHandoff(files, []);
    expect(b.exitCode, b.reason).toBe(0);
    const rep = b.report!;
    expect(rep.outcome).toBe("revived");
    expect(rep.scratch).toHaveLength(4);
    expect(rep.verified.folios).toBeGreaterThan(0);
    const { boot: sb, next } = successorHandOffInProcess(files, 1);
    expect(JSON.stringify(sb.report)).toBe(JSON.stringify(rep));
    // The next generation keeps the banks and nodes (its memory.img as long as the banks), and boots again.
    expect(parseBootDtb(next!.handoff.bootDtb!)).toMatchObject({ banks: boot.banks, numa: true });
    expect(next!.handoff.imageSize()).toBe(4 * G);
    const b2 = bootMemHandoff(next!.handoff, []);
    expect([b2.exitCode, b2.outcome], b2.reason).toEqual([0, "revived"]);
  } finally {
    closeHandoff(files);
  }
});

/* kernel-b's own wiring of banks and numa into its next handoff (main.ts), which the in-process helper only mirrors. */
test("the real kernel-b --handoff-out on the banked handoff: exit 0, the next boot.dtb keeps banks and nodes, its memory.img as long as the banks", async () => {
  const gen2 = path.join(tmp!, "gen2-real");
  const b = await runB(["--in", h.dir, "--handoff-out", gen2]);
  expect(b.status, b.stderr).toBe(0);
  const boot = parseBootDtb(fs.readFileSync(path.join(h.dir, "boot.dtb")));
  expect(parseBootDtb(fs.readFileSync(path.join(gen2, "boot.dtb")))).toMatchObject({ banks: boot.banks, numa: true });
  expect(fs.statSync(path.join(gen2, "memory.img")).size).toBe(4 * G);
}, 60_000);

test("a memoryless node: kernel-a --kernel v6.19 cannot reserve its scratch and stops with one line; kho-v2 skips it", async () => {
  const scen = path.join(SCENARIOS, "numa-memoryless.json");
  const old = await kernelAInProcess(scen, undefined, undefined, undefined, "v6.19").then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(old).toBeInstanceOf(MachineError);
  expect((old as Error).message).toMatch(/node 2 \(memoryless\) scratch .*disabling kexec handover/);
  expect((old as Error).message).not.toContain("\n");
  const fixed = await kernelAInProcess(scen, undefined, undefined, undefined, "kho-v2");
  const sa = parseBootDtb(fixed.handoff.bootDtb!).khoScratch!;
  expect(sa.size).toBe(4n * 16n);
});
