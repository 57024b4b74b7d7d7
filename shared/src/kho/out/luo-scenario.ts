/*
 * A scenario's "luo" steps: user space acting on /dev/liveupdate before the
 * kexec, as tools/testing/selftests/liveupdate/ do (liveupdate.c,
 * luo_kexec_simple.c, luo_multi_session.c). Each step may carry
 * "expect": "EEXIST" (an errno name); a step that does not end as expected
 * is a ScenarioError naming the step's JSON path (kernel-a exit 2).
 *
 * Like the selftests' "…_state" session, the harness keeps a state session
 * (LUO_STATE_SESSION) created before the steps; before the reboot it writes
 * a manifest memfd (token LUO_STATE_TOKEN) listing every preserved memfd
 * with its session, token, size, pos and xxhash64, so that the successor
 * learns from the handoff alone what it must find. The state session takes
 * one of the 819 slots.
 */
import { hex } from "../../lib/bytes.js";
import { Prng } from "../../lib/prng.js";
import type { Machine } from "../../mm/machine.js";
import type { KhoTracker } from "../formats/types.js";
import { LuoErrnoError, LuoOut, type LuoHandoff, type LuoSession } from "./luo.js";
import type { LuoErrno, LuoStep } from "./luo-steps.js";
import { memfdCreate, MemfdNoMemory, type Memfd } from "./memfd-luo.js";
import { ScenarioError } from "./scenario.js";

/** The harness's state session (the selftests' "…_state") and its manifest token (theirs is 999 too). */
export const LUO_STATE_SESSION = "khosim_state";
export const LUO_STATE_TOKEN = 999n;
/** The manifest's "format" field. */
export const LUO_MANIFEST_FORMAT = "khosim-luo-manifest-v1";

/** The manifest as written into the state memfd (JSON text). */
export interface LuoManifest {
  format: string;
  sessions: { name: string; files: { token: string; size: number; pos: number; csum: string }[] }[];
}

/** What a successor restored, to preserve again when it hands off (chain). */
export interface LuoCarried {
  liveupdateNum: bigint;
  sessions: { name: string; files: { token: bigint; memfd: Memfd }[] }[];
}

/* ------------------------------------------------------------ running */

const enc = new TextEncoder();

/** The predecessor's LUO after user space ran: the handoff for finalize, and the labels' fds. */
export interface LuoRun {
  luo: LuoOut;
  /** Set by luoReboot. */
  handoff?: LuoHandoff;
  state: LuoSession;
}

/**
 * luoRun - boot LUO (luo_fdt_setup, with @carried's sessions re-created
 * first when a successor hands off again), create the state session, run
 * @steps. Throws ScenarioError (from @file) naming a step whose outcome is
 * not its "expect", or a memfd the machine cannot hold.
 */
export function luoRun(m: Machine, track: KhoTracker, steps: readonly LuoStep[], seed: number, file: string, carried?: LuoCarried): LuoRun {
  let luo: LuoOut;
  try {
    luo = new LuoOut(m, track, carried?.liveupdateNum ?? 0n);
  } catch (e) {
    if (e instanceof LuoErrnoError) throw new ScenarioError(file, "luo", e.message);
    throw e;
  }
  const state = luo.createSessionInternal(LUO_STATE_SESSION);
  // A daemon that retrieved the sessions keeps them: preserve them again, same names and tokens.
  for (const s of carried?.sessions ?? []) {
    if (s.name === LUO_STATE_SESSION) continue;
    const ls = luo.createSessionInternal(s.name);
    for (const f of s.files) luo.preserveFile(ls, luo.installMemfd(f.memfd), f.token);
  }
  const labels = new Map<string, number>();
  const fdOf = (l: string | number): number => (typeof l === "number" ? l : (labels.get(l) ?? -1));
  const root = new Prng(seed);
  steps.forEach((s, i) => {
    const where = `luo[${i}]`;
    let result: LuoErrno | "success" = "success";
    let why = "";
    try {
      switch (s.do) {
        case "open":
          labels.set(s.as, luo.open(s.path));
          break;
        case "close":
          luo.close(fdOf(s.fd));
          if (typeof s.fd === "string") labels.delete(s.fd);
          break;
        case "create-session":
          labels.set(s.as, luo.createSession(fdOf(s.dev), s.name));
          break;
        case "memfd": {
          const bytes = s.data !== undefined ? enc.encode(s.data) : undefined;
          const size = s.size ?? bytes?.length ?? 0;
          const content = bytes ? { kind: "bytes" as const, bytes } : s.fill === false || size === 0 ? { kind: "none" as const } : { kind: "random" as const, prng: root.fork(`luo:memfd:${s.as}`) };
          labels.set(s.as, luo.installMemfd(memfdCreate(m, s.as, size, content)));
          break;
        }
        case "preserve-fd":
          luo.preserveFd(fdOf(s.session), fdOf(s.fd), s.token);
          break;
      }
    } catch (e) {
      if (e instanceof MemfdNoMemory) throw new ScenarioError(file, where, e.message);
      if (!(e instanceof LuoErrnoError)) throw e;
      result = e.errno;
      why = e.message;
    }
    const want = "expect" in s && s.expect ? s.expect : "success";
    if (result !== want) throw new ScenarioError(file, `${where}.expect`, `expected ${want === "success" ? "success" : "-" + want}, got ${result === "success" ? "success" : why}`);
  });
  return { luo, state };
}

/** luoManifest - the manifest of every session but the state session, in serialization order. */
export function luoManifest(luo: LuoOut): LuoManifest {
  return {
    format: LUO_MANIFEST_FORMAT,
    sessions: luo.sessions
      .filter((s) => s.name !== LUO_STATE_SESSION)
      .map((s) => ({ name: s.name, files: s.files.map((f) => ({ token: hex(f.token), size: f.memfd.size, pos: f.memfd.pos, csum: hex(f.memfd.csum) })) })),
  };
}

/**
 * luoReboot - the daemon's last act (write the manifest memfd, preserve it
 * in the state session with LUO_STATE_TOKEN), then liveupdate_reboot's
 * session serialization. Throws ScenarioError when the manifest does not fit.
 */
export function luoReboot(m: Machine, r: LuoRun, file: string): LuoHandoff {
  const text = enc.encode(JSON.stringify(luoManifest(r.luo)));
  try {
    const fd = r.luo.installMemfd(memfdCreate(m, "khosim_manifest", text.length, { kind: "bytes", bytes: text }));
    r.luo.preserveFile(r.state, fd, LUO_STATE_TOKEN);
  } catch (e) {
    if (e instanceof MemfdNoMemory || e instanceof LuoErrnoError) throw new ScenarioError(file, "luo", `the state session's manifest: ${e.message}`);
    throw e;
  }
  r.handoff = r.luo.liveupdateReboot();
  return r.handoff;
}
