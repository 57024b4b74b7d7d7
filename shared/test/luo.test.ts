/*
 * LUO with memfd, in process: the selftests' cases (scenarios/luo/*.json)
 * with their expectations, the errno table at its limits, a memfd's bytes
 * through the handoff, malformed LUO state (panic, -EIO), and
 * liveupdate-number across 5 generations.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { parseBootDtb } from "../src/abi/boot-dtb.js";
import { LUO_FILE_MAX, LUO_SESSION_MAX, parseLuoFdt } from "../src/abi/luo.js";
import { decodeMemfdFolioSer, decodeMemfdLuoSer } from "../src/abi/memfd-luo.js";
import { decodeKhoVmalloc, decodeKhoVmallocChunk } from "../src/abi/kho-vmalloc.js";
import { rangesFormat } from "../src/kho/formats/index.js";
import { bootSuccessor } from "../src/kho/in/successor.js";
import { successorHandOff } from "../src/kho/in/next.js";
import { LuoErrnoError, LuoOut } from "../src/kho/out/luo.js";
import { memfdCreate } from "../src/kho/out/memfd-luo.js";
import { coldBootMachine, runAndFinalize } from "../src/kho/out/predecessor.js";
import { parseScenario, ScenarioError, type Scenario } from "../src/kho/out/scenario.js";
import { initCsum } from "../src/lib/csum.js";
import { OverlayMem, type PhysMem } from "../src/mm/physmem.js";
import { quiet } from "./kernels-helpers.js";

beforeAll(async () => {
  await initCsum();
});

const DIR = join(__dirname, "..", "..", "scenarios", "luo");
const load = (f: string): Scenario => parseScenario(JSON.parse(readFileSync(join(DIR, f), "utf8")), f);

function handoff(s: Scenario, seed = 1) {
  const m = coldBootMachine(s, quiet);
  const { work, handoff: h } = runAndFinalize(m, s, seed, "(test)", quiet, rangesFormat);
  return { m, work, h, boot: parseBootDtb(h.bootDtb) };
}

function successor(p: ReturnType<typeof handoff>, mem: PhysMem = p.m.mem) {
  return bootSuccessor(p.boot, mem, { maxOrder: 10, log: quiet });
}

const small = (luo: unknown[]): Scenario => parseScenario({ machine: { ram: "256M" }, ops: [], luo }, "(test)");

describe("the selftests as scenarios (tools/testing/selftests/liveupdate)", () => {
  // What stage 2 must find in each: sessions kept open across the kexec, with each file's size.
  const handed: Record<string, { name: string; files: [string, number][] }[]> = {
    "basic-open-close.json": [],
    "exclusive-open.json": [],
    "duplicate-session.json": [],
    "distinct-sessions.json": [],
    "preserve-memfd.json": [],
    "preserve-multiple-memfds.json": [],
    "preserve-complex.json": [],
    "unsupported-fd.json": [],
    "kexec-simple.json": [{ name: "test-session", files: [["0x1a", 17]] }],
    "complex-kexec.json": [
      { name: "complex-session-1", files: [["0x1111", 18], ["0x2222", 0]] },
      { name: "complex-session-2", files: [["0x3333", 18], ["0x4444", 0]] },
    ],
    "multi-session.json": [
      { name: "multi-test-empty-1", files: [] },
      { name: "multi-test-empty-2", files: [] },
      { name: "multi-test-files-1", files: [["0x1001", 24]] },
      { name: "multi-test-files-2", files: [["0x2002", 30], ["0x3003", 31]] },
    ],
  };

  it("covers every file in scenarios/luo", () => {
    expect(readdirSync(DIR).sort()).toEqual(Object.keys(handed).sort());
  });

  for (const [file, want] of Object.entries(handed)) {
    it(`${file}: every step ends as expected, and stage 2 retrieves, verifies and finishes what was kept`, () => {
      const p = handoff(load(file));
      const rep = successor(p).report;
      expect(rep.outcome, rep.reason ?? "").toBe("revived");
      expect(rep.luo!.liveupdateNumber).toBe("0x1");
      expect(rep.luo!.status).toBe("ok");
      expect(rep.luo!.sessions).toEqual(want.map((s) => ({ name: s.name, retrieved: true, finished: true, files: s.files.map(([token, size]) => ({ token, size, outcome: "verified" })) })));
    });
  }

  it("closing a session before the reboot unpreserves everything it held", () => {
    // preserve-memfd preserves then closes: the same preserved bytes as a run with no user steps at all.
    const closed = handoff(load("preserve-memfd.json"));
    const none = handoff(small([]));
    // Same preserved bytes as a run without user steps: the memfd, its records, its ser and the file array are all unpreserved.
    expect(closed.work.track.totalBytes).toBe(none.work.track.totalBytes);
    expect(closed.h.luo!.sessions.map((s) => s.name)).toEqual(["khosim_state"]);
  });

  it("holes pinned at preserve are zeroed even on pages that held data before (a closed session's freed pages)", () => {
    const p = handoff(
      small([
        { do: "open" },
        { do: "create-session", name: "gone", as: "g" },
        { do: "memfd", as: "a", size: "8K" },
        { do: "preserve-fd", session: "g", fd: "a", token: 1 },
        { do: "close", fd: "g" },
        { do: "create-session", name: "kept" },
        { do: "memfd", as: "b", size: "64K", fill: false },
        { do: "preserve-fd", session: "kept", fd: "b", token: 2 },
      ]),
    );
    const rep = successor(p).report;
    expect(rep.outcome, rep.reason ?? "").toBe("revived");
    expect(rep.luo!.sessions).toEqual([{ name: "kept", retrieved: true, finished: true, files: [{ token: "0x2", size: 65536, outcome: "verified" }] }]);
  });

  it("kexec-simple: the folio record points at the page holding \"hello kexec world\"", () => {
    const p = handoff(load("kexec-simple.json"));
    const s = p.h.luo!.sessions.find((x) => x.name === "test-session")!;
    const ser = decodeMemfdLuoSer(p.m.mem.read(s.files[0]!.ser, 40));
    expect([ser.pos, ser.size, ser.nrFolios]).toEqual([17n, 17n, 1n]);
    const desc = decodeKhoVmalloc(ser.folios, 0);
    expect([desc.totalPages, desc.flags, desc.order]).toEqual([1, 1, 0]);
    const arr = Number(decodeKhoVmallocChunk(p.m.mem.read(desc.first, 4096)).phys[0]!);
    const rec = decodeMemfdFolioSer(new DataView(p.m.mem.read(arr, 16).slice().buffer), 0);
    expect(rec.flags).toBe(3); // DIRTY | UPTODATE: written by the user
    expect(rec.index).toBe(0n);
    expect(new TextDecoder().decode(p.m.mem.read(rec.pfn * 4096, 17))).toBe("hello kexec world");
    // The LUO FDT names the session block, whose first entry is test-session (after the state session).
    const fdt = parseLuoFdt(p.m.mem.read(p.h.luo!.fdtPhys, 4096).subarray(0, 236));
    expect(fdt).toEqual({ liveupdateNum: 1n, sessionHeader: BigInt(p.h.luo!.sessionBlock) });
    expect(p.m.mem.read(p.h.luo!.sessionBlock, 8)[0]).toBe(2);
  });

  it("a step whose errno is not its expect is one line naming the step", () => {
    expect(() => handoff(small([{ do: "open" }, { do: "open", as: "again" }]))).toThrow(new ScenarioError("(test)", "luo[1].expect", "expected success, got -EBUSY: /dev/liveupdate is already open"));
    expect(() => handoff(small([{ do: "open" }, { do: "create-session", name: "a", expect: "EEXIST" }]))).toThrow(/luo\[1\]\.expect: expected -EEXIST, got success/);
    expect(() => small([{ do: "open", expect: "ENOPE" }])).toThrow(/luo\[0\]\.expect: expected one of EBUSY/);
    expect(() => small([{ do: "create-session", name: "x".repeat(65) }])).toThrow(/luo\[0\]\.name: longer than the ioctl's 64-byte name field/);
    expect(() => small([{ do: "memfd", as: "m", data: "hello", size: 3 }])).toThrow(/luo\[0\]\.size: is below the data's length/);
    expect(() => small([{ do: "preserve-fd", session: "s", fd: "m", token: -1 }])).toThrow(/luo\[0\]\.token: expected a u64 token/);
    expect(() => small([{ do: "memfd", as: "m", colour: "red" }])).toThrow(/luo\[0\]: unknown key "colour"/);
  });
});

describe("the errno table at the limits", () => {
  const fresh = () => {
    const s = small([]);
    const m = coldBootMachine(s, quiet);
    const track = rangesFormat.createTracker();
    return { m, track, luo: new LuoOut(m, track, 0n) };
  };
  const errno = (f: () => unknown): string => {
    try {
      f();
    } catch (e) {
      if (e instanceof LuoErrnoError) return e.errno;
      throw e;
    }
    return "success";
  };

  it("819 sessions fit, the 820th is -ENOMEM before a duplicate name is -EEXIST", () => {
    const { luo } = fresh();
    const dev = luo.open("/dev/liveupdate");
    for (let i = 0; i < LUO_SESSION_MAX; i++) luo.createSession(dev, `s${i}`);
    expect(errno(() => luo.createSession(dev, "s820"))).toBe("ENOMEM");
    expect(errno(() => luo.createSession(dev, "s0"))).toBe("ENOMEM");
    const h = luo.liveupdateReboot();
    expect(h.sessions.length).toBe(819);
  });

  it("128 files fit a session, the 129th is -ENOSPC; a token in use is -EEXIST first; bad fd -EBADF; wrong fd kinds -EINVAL/-ENOTTY", () => {
    const { m, luo } = fresh();
    const dev = luo.open("/dev/liveupdate");
    const s = luo.createSession(dev, "files");
    for (let i = 0; i < LUO_FILE_MAX; i++) luo.preserveFd(s, luo.installMemfd(memfdCreate(m, `m${i}`, 4096, { kind: "none" })), BigInt(i));
    const extra = luo.installMemfd(memfdCreate(m, "extra", 0, { kind: "none" }));
    expect(errno(() => luo.preserveFd(s, extra, 1000n))).toBe("ENOSPC");
    expect(errno(() => luo.preserveFd(s, extra, 5n))).toBe("EEXIST");
    const t = luo.createSession(dev, "other");
    expect(errno(() => luo.preserveFd(t, 12345, 1n))).toBe("EBADF");
    expect(errno(() => luo.preserveFd(t, dev, 1n))).toBe("ENOENT");
    // A session ioctl on /dev/liveupdate is outside its table; a LUO ioctl on a memfd does not exist.
    expect(errno(() => luo.preserveFd(dev, extra, 1n))).toBe("EINVAL");
    expect(errno(() => luo.createSession(extra, "x"))).toBe("ENOTTY");
    // The failed preserves left no file array behind.
    expect(luo.sessions[1]!.filesMem).toBeUndefined();
  });
});

describe("big memfds and malformed state", () => {
  it("a 64 MiB seeded memfd hands over and every byte is verified; one flipped bit is found", () => {
    const luo = [{ do: "open" }, { do: "create-session", name: "vm" }, { do: "memfd", as: "guest", size: "64M" }, { do: "preserve-fd", session: "vm", fd: "guest", token: 1 }];
    const s = parseScenario({ machine: { ram: "512M" }, ops: [], luo }, "(test)");
    const a = handoff(s, 1);
    const rep = successor(a).report;
    expect(rep.outcome, rep.reason ?? "").toBe("revived");
    expect(rep.luo!.sessions[0]!.files[0]).toEqual({ token: "0x1", size: 64 << 20, outcome: "verified" });
    // Damage one byte of the guest's memory: stage 2 finds it.
    const ser = decodeMemfdLuoSer(a.m.mem.read(a.h.luo!.sessions[1]!.files[0]!.ser, 40));
    const desc = decodeKhoVmalloc(ser.folios, 0);
    const arr = Number(decodeKhoVmallocChunk(a.m.mem.read(desc.first, 4096)).phys[0]!);
    const rec = decodeMemfdFolioSer(new DataView(a.m.mem.read(arr, 16).slice().buffer), 0);
    const mem = new OverlayMem(a.m.mem);
    const b = mem.read(rec.pfn * 4096 + 100, 1);
    mem.write(rec.pfn * 4096 + 100, new Uint8Array([b[0]! ^ 1]));
    const bad = successor(a, mem).report;
    expect(bad.outcome).toBe("verification-failed");
    expect(bad.failures[0]!.reason).toMatch(/^session 'vm' token 0x1: contents xxhash64 0x[0-9a-f]+, manifest says 0x/);
  });

  it("a LUO FDT that is not luo-v1 panics (exit 5) naming the property", () => {
    const p = handoff(load("kexec-simple.json"));
    const mem = new OverlayMem(p.m.mem);
    const page = mem.read(p.h.luo!.fdtPhys, 4096).slice();
    const at = Buffer.from(page).indexOf("luo-v1");
    page[at + 4] = "9".charCodeAt(0);
    mem.write(p.h.luo!.fdtPhys, page);
    const rep = successor(p, mem).report;
    expect([rep.outcome, rep.exitCode]).toEqual(["kernel-panic", 5]);
    expect(rep.reason).toBe(`LUO: The incoming tree failed to initialize properly: FDT 'LUO' at 0x${p.h.luo!.fdtPhys.toString(16)}: FDT 'LUO' is incompatible with 'luo-v1' (/compatible)`);
  });

  it("a session count above 819 makes /dev/liveupdate -EIO: nothing is retrieved", () => {
    const p = handoff(load("kexec-simple.json"));
    const mem = new OverlayMem(p.m.mem);
    mem.write(p.h.luo!.sessionBlock, new Uint8Array([0x34, 0x03, 0, 0, 0, 0, 0, 0]));
    const rep = successor(p, mem).report;
    expect(rep.outcome).toBe("verification-failed");
    expect(rep.luo!.status).toBe(`open /dev/liveupdate: -EIO (luo_session_deserialize: luo_session_header_ser at 0x${p.h.luo!.sessionBlock.toString(16)} +0x0 count: 820 is above LUO_SESSION_MAX 819)`);
  });
});

describe("liveupdate-number across generations (npm run chain)", () => {
  it("counts 1..5 while the daemon re-preserves the same memfds, verified each time", () => {
    const luo = [{ do: "open" }, { do: "create-session", name: "test-session" }, { do: "memfd", as: "m", data: "hello kexec world" }, { do: "memfd", as: "big", size: "1M" }, { do: "preserve-fd", session: "test-session", fd: "m", token: "0x1A" }, { do: "preserve-fd", session: "test-session", fd: "big", token: 2 }];
    const s = parseScenario({ machine: { ram: "256M" }, ops: [{ op: "folios", count: 4, order: 1 }], luo }, "(test)");
    const first = handoff(s);
    let boot = first.boot;
    let mem: PhysMem = first.m.mem;
    const empty = parseScenario({ machine: { ram: "256M" }, ops: [] }, "(each)");
    for (let gen = 1; gen <= 5; gen++) {
      const over = new OverlayMem(mem);
      const sb = bootSuccessor(boot, over, { maxOrder: 10, log: quiet });
      expect(sb.report.outcome, `generation ${gen}: ${sb.report.reason}`).toBe("revived");
      expect(sb.report.luo!.liveupdateNumber).toBe(`0x${gen}`);
      expect(sb.report.luo!.sessions).toEqual([
        { name: "test-session", retrieved: true, finished: true, files: [{ token: "0x1a", size: 17, outcome: "verified" }, { token: "0x2", size: 1 << 20, outcome: "verified" }] },
      ]);
      const next = successorHandOff({ ram: boot.ram, maxOrder: 10, mem: over, sb, scenario: empty, file: "(each)", seed: gen + 1, format: rangesFormat });
      expect(next.handoff.luo!.liveupdateNum).toBe(BigInt(gen + 1));
      boot = parseBootDtb(next.handoff.bootDtb);
      mem = over;
    }
  });
});

