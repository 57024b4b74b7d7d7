/*
 * LUO end to end: kernel-a runs luo_kexec_simple.c's stage 1
 * (scenarios/luo/kexec-simple.json), the successor boots from it alone,
 * retrieves session "test-session" and token 0x1A, verifies the memfd and
 * finishes the session; handing off again it writes liveupdate-number 2. A
 * damaged LUO FDT is a kernel panic, exit 5.
 *
 * Both kernels' work runs in process (kernelAInProcess,
 * successorHandOffInProcess: the code the bundles run). The panic's exit code
 * and stdout line are the real kernel-b's, on kernel-a's handoff written by
 * writeMemHandoff and damaged in the file. A step whose expect fails is
 * kernel-a's ScenarioError: kernel-a prints it as one line, exit 2, before
 * writing anything (the real process's one-line exit 2 on a ScenarioError is
 * checked in scripts/test/kernel-a/scenario-errors.test.ts).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, expect, test } from "vitest";
import { SuccessorJsonSchema, parseHandoffJson, type PredecessorReport } from "@khosim/shared/abi/handoff-json";
import { ScenarioError } from "@khosim/shared/kho";
import type { MemHandoff } from "../../src/faults/index.js";
import { kernelAInProcess, successorHandOffInProcess, writeMemHandoff } from "../fault-helpers.js";
import { makeTmp, patchFile, removeTmp, runB, SCENARIOS } from "../handoff-helpers.js";

let tmp: string | undefined;
let h: { handoff: MemHandoff; report: PredecessorReport };

beforeAll(async () => {
  tmp = makeTmp("luo");
  h = await kernelAInProcess(path.join(SCENARIOS, "luo", "kexec-simple.json"));
}, 120_000);

afterAll(() => removeTmp(tmp));

test("kexec-simple: the successor retrieves test-session/0x1A, verifies it, finishes it, and hands off liveupdate-number 2", () => {
  expect(h.report.luo).toMatchObject({ liveupdateNumber: "0x1", sessions: [{ name: "khosim_state" }, { name: "test-session", files: [{ token: "0x1a", size: 17 }] }] });
  // kernel-b --in A --handoff-out B (seed 1).
  const next = successorHandOffInProcess(h.handoff, 1);
  const s = parseHandoffJson(SuccessorJsonSchema, JSON.parse(JSON.stringify(next.boot.report)), "successor.json");
  if (s.outcome === "unusable-input") throw new Error(String(s.reason));
  expect([s.outcome, s.exitCode]).toEqual(["revived", 0]);
  expect(s.luo).toEqual({
    liveupdateNumber: "0x1",
    status: "ok",
    sessions: [{ name: "test-session", retrieved: true, finished: true, files: [{ token: "0x1a", size: 17, outcome: "verified" }] }],
  });
  expect(next.next?.report.luo?.liveupdateNumber).toBe("0x2");
});

test("a LUO FDT that is not luo-v1: kernel-b panics, exit 5, one line naming the property", { timeout: 120_000 }, async () => {
  const dir = writeMemHandoff(h.handoff, h.report, path.join(tmp!, "bad"));
  const fdt = Number(BigInt(h.report.luo!.fdt) - BigInt(h.report.machine.ramBase));
  const page = Buffer.alloc(4096);
  const fd = fs.openSync(path.join(dir, "memory.img"), "r");
  fs.readSync(fd, page, 0, 4096, fdt);
  fs.closeSync(fd);
  const at = page.indexOf("luo-v1");
  expect(at).toBeGreaterThanOrEqual(0);
  patchFile(path.join(dir, "memory.img"), fdt + at, new TextEncoder().encode("luo-v9"));
  const b = await runB(["--in", dir, "--report", path.join(tmp!, "bad.json")]);
  expect(b.status).toBe(5);
  expect(b.stdout.trim()).toBe(`Kernel panic - not syncing: LUO: The incoming tree failed to initialize properly: FDT 'LUO' at ${h.report.luo!.fdt}: FDT 'LUO' is incompatible with 'luo-v1' (/compatible)`);
  expect(b.stderr).not.toMatch(/\n\s+at /);
});

test("kernel-a: a step that does not fail as its expect says is a ScenarioError naming the step (kernel-a: one line, exit 2, no handoff)", async () => {
  const file = path.join(tmp!, "bad-expect.json");
  fs.writeFileSync(file, JSON.stringify({ machine: { ram: "256M" }, ops: [], luo: [{ do: "open" }, { do: "create-session", name: "a" }, { do: "create-session", name: "b", expect: "EEXIST" }] }));
  const e = await kernelAInProcess(file).then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(ScenarioError);
  expect((e as Error).message).toBe(`${file}: luo[2].expect: expected -EEXIST, got success`);
});
