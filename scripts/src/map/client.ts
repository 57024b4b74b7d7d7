/*
 * What only the map page runs: its event handling (mapClientMain) and the
 * two pointer helpers it alone uses. script.ts inlines these beside
 * view.ts's functions in the page's one script scope, so they call those by
 * name: the declarations below only type them (nothing is imported at run
 * time, see view.ts). Nothing here runs in Node.
 */
import type { MapDoc, MapGeometry, MapWindow } from "./types.js";
import type * as view from "./view.js";

// The browser globals mapClientMain uses (the project compiles without the DOM lib).
declare const document: any;
declare const location: any;
declare const history: any;

// view.ts functions, defined in the page's script scope.
declare const mapHex: typeof view.mapHex;
declare const mapSize: typeof view.mapSize;
declare const mapPrepare: typeof view.mapPrepare;
declare const mapOverview: typeof view.mapOverview;
declare const mapWinEnd: typeof view.mapWinEnd;
declare const mapFit: typeof view.mapFit;
declare const mapZoom: typeof view.mapZoom;
declare const mapPan: typeof view.mapPan;
declare const mapDescribe: typeof view.mapDescribe;
declare const mapRenderSvg: typeof view.mapRenderSvg;

/** mapAddrAt - address under SVG point (@x, @y) of a map drawn for @win, or -1. */
export function mapAddrAt(geo: MapGeometry, win: MapWindow, x: number, y: number): number {
  const col = Math.floor(x - geo.left);
  const row = Math.floor((y - geo.top) / geo.pitch);
  if (col < 0 || col >= geo.cols || row < 0 || row >= win.rows) return -1;
  return win.start + row * win.bpr + col * (win.bpr / geo.cols);
}

/** mapSelectionSvg - highlight of [a, b) in @win. */
export function mapSelectionSvg(geo: MapGeometry, win: MapWindow, a: number, b: number): string {
  const lo = Math.max(Math.min(a, b), win.start);
  const hi = Math.min(Math.max(a, b), win.start + win.rows * win.bpr);
  const bpp = win.bpr / geo.cols;
  let out = "";
  for (let r = 0; r < win.rows; r++) {
    const rs = win.start + r * win.bpr;
    const s = Math.max(lo, rs);
    const e = Math.min(hi, rs + win.bpr);
    if (e <= s) continue;
    out += '<rect x="' + (geo.left + (s - rs) / bpp) + '" y="' + (geo.top + r * geo.pitch - 1) + '" width="' + Math.max(1, (e - s) / bpp) + '" height="' + (geo.rowH + 2) + '" fill="#1565c0" fill-opacity="0.25" stroke="#1565c0" stroke-width="1"/>';
  }
  return out;
}

/** mapClientMain - the page's behaviour: zoom (buttons, keys, click, drag, address inputs), hover status. */
export function mapClientMain(): void {
  const el = (id: string): any => document.getElementById(id);
  const doc: MapDoc = JSON.parse(el("khomap-data").textContent);
  const span = doc.span;
  const geo = doc.geo;
  const preps = doc.maps.map((ds) => mapPrepare(ds));
  const wraps: any[] = doc.maps.map((_ds, i) => el("map-" + i));
  let win = mapOverview(span, geo);
  const show = (): void => {
    const end = mapWinEnd(span, win);
    el("window").textContent = mapHex(win.start) + " – " + mapHex(end) + " (" + mapSize(end - win.start) + "), " + win.rows + (win.rows === 1 ? " row of " : " rows of ") + mapSize(win.bpr) + ", " + mapSize(win.bpr / geo.cols) + " per pixel";
    el("win-start").value = mapHex(win.start);
    el("win-end").value = mapHex(end);
  };
  const render = (): void => {
    wraps.forEach((w, i) => {
      w.innerHTML = mapRenderSvg(doc, i, preps[i]!, win);
    });
    show();
    try {
      history.replaceState(null, "", "#" + mapHex(win.start) + "-" + mapHex(mapWinEnd(span, win)));
    } catch {
      /* file:// in some browsers */
    }
  };
  const set = (w: MapWindow): void => {
    win = w;
    render();
  };
  const parseAddr = (s: string): number => {
    const t = String(s).trim().toLowerCase().replace(/_/g, "");
    const m = /^(0x[0-9a-f]+|\d+)\s*([kmgt]?)$/.exec(t);
    if (!m) return NaN;
    const v = m[1]!.startsWith("0x") ? parseInt(m[1]!.slice(2), 16) : parseInt(m[1]!, 10);
    return v * Math.pow(1024, " kmgt".indexOf(m[2] || " "));
  };
  const hash = /^#(0x[0-9a-f]+)-(0x[0-9a-f]+)$/i.exec(location.hash || "");
  if (hash) set(mapFit(span, geo, parseInt(hash[1]!.slice(2), 16), parseInt(hash[2]!.slice(2), 16)));
  else show();
  el("zoom-in").addEventListener("click", () => set(mapZoom(span, geo, win, 0.25)));
  el("zoom-out").addEventListener("click", () => set(mapZoom(span, geo, win, 4)));
  el("reset").addEventListener("click", () => set(mapOverview(span, geo)));
  el("prev").addEventListener("click", () => set(mapPan(span, geo, win, -1)));
  el("next").addEventListener("click", () => set(mapPan(span, geo, win, 1)));
  el("go").addEventListener("submit", (e: any) => {
    e.preventDefault();
    const a = parseAddr(el("win-start").value);
    const b = parseAddr(el("win-end").value);
    if (a >= 0 && b > a) set(mapFit(span, geo, a, b));
    else el("status").textContent = "start and end: addresses like 0x42000000 (hex) or 1G, start < end";
  });
  document.querySelectorAll("[data-goto]").forEach((b: any) => {
    b.addEventListener("click", () => {
      const [a, e] = String(b.getAttribute("data-goto")).split("-").map((x) => parseInt(x.slice(2), 16));
      const pad = Math.max(1 << 20, (e! - a!) / 8);
      set(mapFit(span, geo, a! - pad, e! + pad));
    });
  });
  document.addEventListener("keydown", (e: any) => {
    if (e.target && /^(INPUT|TEXTAREA)$/.test(e.target.tagName)) return;
    if (e.key === "+" || e.key === "=") set(mapZoom(span, geo, win, 0.25));
    else if (e.key === "-") set(mapZoom(span, geo, win, 4));
    else if (e.key === "0") set(mapOverview(span, geo));
    else if (e.key === "ArrowLeft" || e.key === "PageUp") set(mapPan(span, geo, win, -1));
    else if (e.key === "ArrowRight" || e.key === "PageDown") set(mapPan(span, geo, win, 1));
  });
  // Pointer: hover describes, click zooms in around the address, drag selects a window.
  let drag: { a: number; x: number; y: number; moved: boolean } | undefined;
  const at = (w: any, e: any): number => {
    const svg = w.querySelector("svg");
    if (!svg || !svg.getScreenCTM()) return -1;
    const pt = svg.createSVGPoint();
    pt.x = e.clientX;
    pt.y = e.clientY;
    const p = pt.matrixTransform(svg.getScreenCTM().inverse());
    return mapAddrAt(geo, win, p.x, p.y);
  };
  const select = (a: number, b: number): void => {
    wraps.forEach((w) => {
      const g = w.querySelector("g.sel");
      if (g) g.innerHTML = a < 0 ? "" : mapSelectionSvg(geo, win, a, b);
    });
  };
  wraps.forEach((w, i) => {
    w.addEventListener("mousedown", (e: any) => {
      const a = at(w, e);
      if (e.button !== 0 || a < 0) return;
      e.preventDefault();
      drag = { a, x: e.clientX, y: e.clientY, moved: false };
    });
    w.addEventListener("mousemove", (e: any) => {
      const a = at(w, e);
      if (a >= 0) {
        const bpp = win.bpr / geo.cols;
        el("status").textContent = mapDescribe(doc, preps[i]!, a, a + Math.max(bpp, 1), 3).split("\n").join("  ·  ");
      }
      if (drag && (Math.abs(e.clientX - drag.x) > 4 || Math.abs(e.clientY - drag.y) > 4)) drag.moved = true;
      if (drag && drag.moved && a >= 0) select(drag.a, a);
    });
  });
  document.addEventListener("mouseup", (e: any) => {
    if (!drag) return;
    const d = drag;
    drag = undefined;
    select(-1, -1);
    let a = -1;
    for (const w of wraps) if (a < 0) a = at(w, e);
    if (!d.moved) set(mapZoom(span, geo, win, 0.25, d.a));
    else if (a >= 0) set(mapFit(span, geo, Math.min(a, d.a), Math.max(a, d.a) + win.bpr / geo.cols));
  });
}
