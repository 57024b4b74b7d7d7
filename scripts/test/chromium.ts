/*
 * Headless Chromium for browser tests, from npm (@sparticuz/chromium, driven by
 * playwright-core), so that no test needs a system browser: the package ships
 * the browser brotli-compressed in its tarball (no install script) and
 * executablePath() unpacks it into the temporary directory once.
 *
 * Beyond glibc the browser needs only NSS, NSPR and expat; the package carries
 * them too (bin/al2023.tar.br), and they are unpacked beside it and put on
 * LD_LIBRARY_PATH, so a fresh Debian without libnss3 runs it as well.
 */
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import { createRequire } from "node:module";
import * as os from "node:os";
import * as path from "node:path";
import * as zlib from "node:zlib";
import { chromium as playwright, type BrowserContext, type LaunchOptions } from "playwright-core";

const require = createRequire(import.meta.url);

/** The shared libraries the browser needs, unpacked from the package into @dir (once). */
function unpackLibs(dir: string): string {
  const lib = path.join(dir, "lib");
  if (fs.existsSync(path.join(lib, "libnss3.so"))) return lib;
  const pkg = path.resolve(path.dirname(require.resolve("@sparticuz/chromium")), "..");
  const tar = zlib.brotliDecompressSync(fs.readFileSync(path.join(pkg, "bin/al2023.tar.br")));
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "khosim-chromium-libs-"));
  execFileSync("tar", ["-x", "-C", tmp, "-f", "-"], { input: tar });
  fs.mkdirSync(dir, { recursive: true });
  try {
    fs.renameSync(path.join(tmp, "lib"), lib);
  } catch (e) {
    // Another process unpacked them first.
    if (!fs.existsSync(path.join(lib, "libnss3.so"))) throw e;
  }
  fs.rmSync(tmp, { recursive: true, force: true });
  return lib;
}

/** chromiumExecutable - the unpacked browser's path and the environment it runs in. */
export async function chromiumExecutable(): Promise<{ executablePath: string; env: Record<string, string> }> {
  const mod = (await import("@sparticuz/chromium")) as unknown as { default: { executablePath(): Promise<string> } };
  const executablePath = await mod.default.executablePath();
  const lib = unpackLibs(path.join(path.dirname(executablePath), "khosim-chromium-libs"));
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined) env[k] = v;
  env["LD_LIBRARY_PATH"] = [lib, process.env["LD_LIBRARY_PATH"]].filter(Boolean).join(":");
  return { executablePath, env };
}

/** launchChromium - a persistent headless context in @userDataDir; throws (never skips) when the browser cannot start. */
export async function launchChromium(userDataDir: string, options: Omit<LaunchOptions, "executablePath" | "env"> & { viewport?: { width: number; height: number } }): Promise<BrowserContext> {
  const { executablePath, env } = await chromiumExecutable();
  return playwright.launchPersistentContext(userDataDir, { ...options, executablePath, env });
}
