/*
 * Outside oracles for tests: Debian's device-tree-compiler (dtc, fdtget) and
 * python3-libfdt (pylibfdt 1.6.1, only for Debian's /usr/bin/python3).
 *
 * Their absence is a test FAILURE, never a skip: call requireOracles() in a
 * beforeAll and let it throw. npm test's pretest step (scripts/build/pretest.mjs)
 * installs them with apt-get when it runs as root, or names the packages:
 *	apt-get install -y device-tree-compiler python3-libfdt
 */
import { execFileSync, spawnSync } from "node:child_process";

/** The python whose dist-packages hold Debian's libfdt bindings. */
export const ORACLE_PYTHON = "/usr/bin/python3";

const CHECK_FULL_PY =
  'import sys,libfdt; d=bytearray(open(sys.argv[1],"rb").read()); r=libfdt.fdt_check_full(d,len(d)); sys.exit(r!=0)';

let oraclesFound = false;

/**
 * requireOracles - throw one clear Error listing every missing oracle
 * (dtc, fdtget, python3 libfdt with FdtSw and fdt_check_full).
 */
export function requireOracles(): void {
  // Found once, found for the rest of the process (workers run many files).
  if (oraclesFound) return;
  const missing: string[] = [];
  const probe = (what: string, cmd: string, args: string[]): void => {
    const r = spawnSync(cmd, args, { encoding: "utf8" });
    if (r.error || r.status !== 0) missing.push(`${what} (${r.error?.message ?? (r.stderr || `exit ${r.status}`).trim()})`);
  };
  probe("dtc", "dtc", ["--version"]);
  probe("fdtget", "fdtget", ["--version"]);
  probe("python3-libfdt", ORACLE_PYTHON, ["-c", "import libfdt; libfdt.FdtSw; libfdt.fdt_check_full"]);
  if (missing.length > 0) {
    throw new Error(
      `FDT test oracles missing: ${missing.join("; ")}. ` +
        "Install them with `apt-get install -y device-tree-compiler python3-libfdt`; these tests never skip.",
    );
  }
  oraclesFound = true;
}

/** dtcDecompile - `dtc -I dtb -O dts FILE`; throws (with dtc's stderr) on a non-zero exit. */
export function dtcDecompile(file: string): string {
  const r = spawnSync("dtc", ["-I", "dtb", "-O", "dts", file], { encoding: "utf8" });
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`dtc -I dtb -O dts ${file} exited ${r.status ?? r.signal}: ${r.stderr.trim()}`);
  return r.stdout;
}

/**
 * fdtCheckFullOracle - true when libfdt's fdt_check_full() accepts FILE
 * (bufsize = file length). A crash of libfdt counts as "not accepted".
 */
export function fdtCheckFullOracle(file: string): boolean {
  const r = spawnSync(ORACLE_PYTHON, ["-c", CHECK_FULL_PY, file], { encoding: "utf8" });
  if (r.error) throw r.error;
  return r.status === 0;
}

/** fdtget - `fdtget -t TYPE FILE NODE PROP`, trimmed; throws on a non-zero exit. */
export function fdtget(file: string, node: string, prop: string, type = "x"): string {
  return execFileSync("fdtget", ["-t", type, file, node, prop], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] }).trim();
}

/*
 * Runs fdt_check_full on each blob in a forked child: libfdt 1.6.1 segfaults
 * on some corrupt blobs. One child checks the blobs in order and writes each
 * verdict to a pipe before it starts the next; when libfdt kills it, the blob
 * it was on is "crash" and a new child goes on from the one after. (A fork
 * per blob costs ~25 ms each on the test VM.) fdt_check_full only reads its
 * buffer, so one blob's check cannot change another's verdict.
 */
const CHECK_BATCH_PY = `
import sys, os, struct, libfdt
data = sys.stdin.buffer.read()
blobs = []
off = 0
while off < len(data):
    (n,) = struct.unpack_from(">I", data, off)
    blobs.append(data[off + 4: off + 4 + n])
    off += 4 + n
out = []
while len(out) < len(blobs):
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        for blob in blobs[len(out):]:
            d = bytearray(blob)
            ret = libfdt.fdt_check_full(d, len(d))
            os.write(w, b"%d\\n" % (ret if ret <= 0 else -200))
        os._exit(0)
    os.close(w)
    got = b""
    while True:
        chunk = os.read(r, 65536)
        if not chunk:
            break
        got += chunk
    os.close(r)
    _, st = os.waitpid(pid, 0)
    out.extend(got.decode().split())
    if os.WIFSIGNALED(st):
        out.append("crash")
    elif os.WEXITSTATUS(st) != 0 or len(out) != len(blobs):
        sys.exit("fdt_check_full child exited %d after %d of %d blobs" % (os.WEXITSTATUS(st), len(out), len(blobs)))
print(" ".join(out))
`;

/**
 * fdtCheckFullBatch - libfdt's fdt_check_full() on each of @blobs, in one
 * python process: 0 when accepted, the negative FDT_ERR_* number when not,
 * "crash" when libfdt crashed on it.
 */
export function fdtCheckFullBatch(blobs: readonly Uint8Array[]): (number | "crash")[] {
  const parts: Buffer[] = [];
  for (const b of blobs) {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(b.length);
    parts.push(len, Buffer.from(b));
  }
  const r = spawnSync(ORACLE_PYTHON, ["-c", CHECK_BATCH_PY], { input: Buffer.concat(parts), encoding: "utf8", maxBuffer: 1 << 26 });
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`fdt_check_full batch exited ${r.status ?? r.signal}: ${r.stderr.trim()}`);
  const words = r.stdout.trim() === "" ? [] : r.stdout.trim().split(" ");
  if (words.length !== blobs.length) throw new Error(`fdt_check_full batch answered ${words.length} of ${blobs.length}`);
  return words.map((w) => (w === "crash" ? "crash" : Number(w)));
}

/** One libfdt sequential-write call, for pylibfdtBuild. */
export type SwOp =
  | { op: "rsv"; addr: bigint; size: bigint }
  | { op: "finishReservemap" }
  | { op: "begin"; name: string }
  | { op: "prop"; name: string; value: Uint8Array }
  | { op: "end" };

const SW_BATCH_PY = `
import sys, json, libfdt
out = []
for prog in json.load(sys.stdin):
    sw = libfdt.FdtSw()
    for op in prog:
        k = op[0]
        if k == "rsv": sw.add_reservemap_entry(int(op[1]), int(op[2]))
        elif k == "finishReservemap": sw.finish_reservemap()
        elif k == "begin": sw.begin_node(op[1])
        elif k == "prop": sw.property(op[1], bytes.fromhex(op[2]))
        elif k == "end": sw.end_node()
    fdt = sw.as_fdt()
    finished = bytes(fdt.as_bytearray())[:fdt.totalsize()]
    fdt.pack()
    packed = bytes(fdt.as_bytearray())[:fdt.totalsize()]
    out.append([finished.hex(), packed.hex()])
json.dump(out, sys.stdout)
`;

/**
 * pylibfdtBuild - run each program of libfdt sequential-write calls through
 * pylibfdt's FdtSw (fdt_create, ..., fdt_finish) in one python process.
 * Returns per program the blob exactly as fdt_finish() leaves it (sliced to
 * totalsize) and the same blob after fdt_pack().
 */
export function pylibfdtBuild(programs: readonly SwOp[][]): { finished: Uint8Array; packed: Uint8Array }[] {
  const json = JSON.stringify(
    programs.map((p) =>
      p.map((o) => {
        switch (o.op) {
          case "rsv":
            return ["rsv", o.addr.toString(), o.size.toString()];
          case "begin":
            return ["begin", o.name];
          case "prop":
            return ["prop", o.name, Buffer.from(o.value).toString("hex")];
          default:
            return [o.op];
        }
      }),
    ),
  );
  const r = spawnSync(ORACLE_PYTHON, ["-c", SW_BATCH_PY], { input: json, encoding: "utf8", maxBuffer: 1 << 28 });
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`pylibfdt FdtSw batch exited ${r.status ?? r.signal}: ${r.stderr.trim()}`);
  const out = JSON.parse(r.stdout) as [string, string][];
  return out.map(([f, p]) => ({ finished: new Uint8Array(Buffer.from(f, "hex")), packed: new Uint8Array(Buffer.from(p, "hex")) }));
}
