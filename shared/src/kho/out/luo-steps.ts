/*
 * The scenario's "luo" steps (user space on /dev/liveupdate): their types
 * and validation. Running them is luo-scenario.ts; scenario.ts only parses.
 */
/** The errnos user space can get from /dev/liveupdate and session fds. */
export const LUO_ERRNOS = ["EBUSY", "EEXIST", "ENOMEM", "ENOENT", "EINVAL", "EBADF", "ENOSPC", "EIO", "ENOTTY"] as const;
export type LuoErrno = (typeof LUO_ERRNOS)[number];

/** One user-space step; labels name fds the way the selftests' variables do. */
export type LuoStep =
  | { do: "open"; path: string; as: string; expect?: LuoErrno }
  | { do: "close"; fd: string | number; expect?: LuoErrno }
  | { do: "create-session"; name: string; as: string; dev: string; expect?: LuoErrno }
  | { do: "memfd"; as: string; size?: number; data?: string; fill?: boolean }
  | { do: "preserve-fd"; session: string | number; fd: string | number; token: bigint; expect?: LuoErrno };

/* ------------------------------------------------------------ validation */

type Fail = (path: (string | number)[], why: string) => never;

function errno(v: unknown, p: (string | number)[], fail: Fail): LuoErrno | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== "string" || !LUO_ERRNOS.includes(v as LuoErrno)) fail(p, `expected one of ${LUO_ERRNOS.join(", ")}, got ${JSON.stringify(v)}`);
  return v as LuoErrno;
}

function label(v: unknown, p: (string | number)[], fail: Fail, numberOk: boolean): string | number {
  if (typeof v === "string" && v !== "") return v;
  if (numberOk && typeof v === "number" && Number.isSafeInteger(v)) return v;
  return fail(p, `expected a label${numberOk ? " or an fd number" : ""}, got ${JSON.stringify(v)}`);
}

function token(v: unknown, p: (string | number)[], fail: Fail): bigint {
  let t: bigint | undefined;
  if (typeof v === "number" && Number.isSafeInteger(v) && v >= 0) t = BigInt(v);
  if (typeof v === "string" && /^(0x[0-9a-fA-F]+|[0-9]+)$/.test(v)) t = BigInt(v);
  if (t === undefined || t >= 2n ** 64n) return fail(p, `expected a u64 token (number or "0x..."), got ${JSON.stringify(v)}`);
  return t;
}

/**
 * parseLuoSteps - validate the scenario's "luo" array @v; @fail throws the
 * scenario's error for a JSON path; @size parses a size as the rest of the
 * scenario does.
 */
export function parseLuoSteps(v: unknown, fail: Fail, size: (x: unknown, p: (string | number)[]) => number): LuoStep[] {
  if (!Array.isArray(v)) return fail(["luo"], "expected an array of steps");
  return v.map((x, i): LuoStep => {
    const p = ["luo", i];
    if (typeof x !== "object" || x === null || Array.isArray(x)) return fail(p, "expected an object");
    const o = x as Record<string, unknown>;
    const keys: Record<string, string[]> = {
      open: ["do", "path", "as", "expect"],
      close: ["do", "fd", "expect"],
      "create-session": ["do", "name", "as", "dev", "expect"],
      memfd: ["do", "as", "size", "data", "fill"],
      "preserve-fd": ["do", "session", "fd", "token", "expect"],
    };
    const allowed = keys[o["do"] as string];
    if (!allowed) return fail([...p, "do"], `expected one of ${Object.keys(keys).map((k) => JSON.stringify(k)).join(", ")}, got ${JSON.stringify(o["do"])}`);
    const extra = Object.keys(o).filter((k) => !allowed.includes(k));
    if (extra.length > 0) fail(p, `unknown key ${extra.map((k) => JSON.stringify(k)).join(", ")}`);
    const ex = errno(o["expect"], [...p, "expect"], fail);
    const withExpect = <T extends object>(s: T): T => (ex ? { ...s, expect: ex } : s);
    switch (o["do"]) {
      case "open": {
        const path = o["path"] === undefined ? "/dev/liveupdate" : String(label(o["path"], [...p, "path"], fail, false));
        return withExpect({ do: "open" as const, path, as: o["as"] === undefined ? path : String(label(o["as"], [...p, "as"], fail, false)) });
      }
      case "close":
        return withExpect({ do: "close" as const, fd: label(o["fd"], [...p, "fd"], fail, true) });
      case "create-session": {
        if (typeof o["name"] !== "string") return fail([...p, "name"], "expected a string");
        // The ioctl's name is u8[64]: a longer string cannot be passed at all.
        if (new TextEncoder().encode(o["name"]).length > 64) fail([...p, "name"], "longer than the ioctl's 64-byte name field");
        const as = o["as"] === undefined ? o["name"] : String(label(o["as"], [...p, "as"], fail, false));
        const dev = o["dev"] === undefined ? "/dev/liveupdate" : String(label(o["dev"], [...p, "dev"], fail, false));
        return withExpect({ do: "create-session" as const, name: o["name"], as, dev });
      }
      case "memfd": {
        const s: Extract<LuoStep, { do: "memfd" }> = { do: "memfd", as: String(label(o["as"], [...p, "as"], fail, false)) };
        if (o["size"] !== undefined) s.size = size(o["size"], [...p, "size"]);
        if (o["data"] !== undefined) {
          if (typeof o["data"] !== "string") fail([...p, "data"], "expected a string");
          s.data = o["data"] as string;
        }
        if (o["fill"] !== undefined) {
          if (typeof o["fill"] !== "boolean") fail([...p, "fill"], "expected true or false");
          s.fill = o["fill"] as boolean;
        }
        if (s.data !== undefined && s.fill) fail([...p, "fill"], "give data or fill, not both");
        // ftruncate below what was written is not modelled: give the data that should remain.
        if (s.data !== undefined && s.size !== undefined && s.size < new TextEncoder().encode(s.data).length) fail([...p, "size"], "is below the data's length");
        return s;
      }
      default:
        return withExpect({ do: "preserve-fd" as const, session: label(o["session"], [...p, "session"], fail, true), fd: label(o["fd"], [...p, "fd"], fail, true), token: token(o["token"], [...p, "token"], fail) });
    }
  });
}

/** Pages the steps' memfds need (for the scenario's RAM check). */
export function luoStepsBytes(steps: readonly LuoStep[]): number {
  let n = 0;
  for (const s of steps) if (s.do === "memfd") n += Math.ceil(Math.max(s.size ?? 0, new TextEncoder().encode(s.data ?? "").length) / 4096) * 4096 * (1 + 16 / 4096);
  return n;
}

