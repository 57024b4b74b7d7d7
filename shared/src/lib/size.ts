/* Sizes as people write them: "4K", "512M", "1G", "1T", hex, or bytes. */
const UNITS: Record<string, number> = { "": 1, K: 2 ** 10, M: 2 ** 20, G: 2 ** 30, T: 2 ** 40 };

/**
 * parseSize - "4K", "512M", "1G", "1T", "0x40000000", "4096" or a number, to
 * bytes. Returns undefined when it is not a non-negative safe integer.
 */
export function parseSize(v: string | number): number | undefined {
  if (typeof v === "number") return Number.isSafeInteger(v) && v >= 0 ? v : undefined;
  const s = v.trim();
  if (/^0x[0-9a-f]+$/i.test(s)) {
    const n = Number.parseInt(s, 16);
    return Number.isSafeInteger(n) ? n : undefined;
  }
  const m = /^(\d+)\s*([KMGT]?)(i?B)?$/i.exec(s);
  if (!m) return undefined;
  const n = Number(m[1]) * UNITS[m[2]!.toUpperCase()]!;
  return Number.isSafeInteger(n) ? n : undefined;
}

/** Human size: 1G, 512M, 4K, or hex bytes when not a whole unit. */
export function formatSize(n: number): string {
  for (const u of ["T", "G", "M", "K"]) {
    const f = UNITS[u]!;
    if (n >= f && n % f === 0) return `${n / f}${u}`;
  }
  return `${n}`;
}
