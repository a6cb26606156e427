"""The console's only static files, served from memory: a style sheet and a small SVG line plot.

The plot reads JSON from `/console/api/...` (`{"series": [{"name", "points": [[x, y], ...], "dash"?}], "x": label}`)
and draws in the browser; nothing is fetched from outside (the server may have no internet).
"""

CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:0;color:#1d232a;background:#f6f7f9}
header{display:flex;gap:1rem;align-items:center;background:#232f3e;color:#fff;padding:.5rem 1rem}
header a{color:#fff;text-decoration:none;margin-right:.8rem}.brand{font-weight:700}
header nav{flex:1}.who{opacity:.8}.logout{margin:0}
main{padding:1rem 1.5rem;max-width:1200px}
table{border-collapse:collapse;background:#fff;margin:.5rem 0 1rem}
th,td{border:1px solid #d5dbe1;padding:.25rem .6rem;text-align:left;vertical-align:top}
th{background:#eef1f4}.error{color:#a4000f;font-weight:600}
pre{background:#fff;border:1px solid #d5dbe1;padding:.6rem;overflow:auto;max-height:30em}
textarea{width:100%;font-family:monospace}
.plot{background:#fff;border:1px solid #d5dbe1;margin:.5rem 0}
iframe.report{width:100%;height:700px;border:1px solid #d5dbe1;background:#fff}
.status-Completed,.status-InService,.status-Approved,.status-SUCCEEDED{color:#1d7d2c;font-weight:600}
.status-Failed,.status-Rejected,.status-FAILED{color:#a4000f;font-weight:600}
form.login{display:grid;gap:.5rem;max-width:28rem}
"""

PLOT_JS = r"""
"use strict";
const COLORS = ["#0073bb", "#d45b07", "#1d7d2c", "#8d3ccf", "#a4000f", "#5f6b7a"];

function drawPlot(svg, data) {
  const W = 720, H = 300, L = 60, R = 160, T = 12, B = 36, NS = "http://www.w3.org/2000/svg";
  while (svg.firstChild) svg.removeChild(svg.firstChild);
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`); svg.setAttribute("width", W); svg.setAttribute("height", H);
  const el = (name, attrs, text) => {
    const e = document.createElementNS(NS, name);
    for (const k in attrs) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;  // textContent: names are never parsed as markup
    svg.appendChild(e); return e;
  };
  const pts = data.series.flatMap(s => s.points);
  if (!pts.length) { el("text", {x: L, y: H / 2}, data.empty || "no data yet"); return; }
  let [x0, x1] = [Math.min(...pts.map(p => p[0])), Math.max(...pts.map(p => p[0]))];
  let [y0, y1] = [Math.min(...pts.map(p => p[1])), Math.max(...pts.map(p => p[1]))];
  if (x0 === x1) { x0 -= 1; x1 += 1; } if (y0 === y1) { y0 -= 1; y1 += 1; }
  const sx = x => L + (x - x0) / (x1 - x0) * (W - L - R), sy = y => H - B - (y - y0) / (y1 - y0) * (H - T - B);
  el("line", {x1: L, y1: H - B, x2: W - R, y2: H - B, stroke: "#5f6b7a"});
  el("line", {x1: L, y1: T, x2: L, y2: H - B, stroke: "#5f6b7a"});
  for (const y of [y0, (y0 + y1) / 2, y1]) el("text", {x: L - 4, y: sy(y) + 4, "text-anchor": "end", "font-size": 11}, +y.toPrecision(4));
  for (const x of [x0, x1]) el("text", {x: sx(x), y: H - B + 16, "text-anchor": "middle", "font-size": 11}, +x.toPrecision(4));
  el("text", {x: (L + W - R) / 2, y: H - 4, "text-anchor": "middle", "font-size": 12}, data.x || "");
  data.series.forEach((s, i) => {
    const c = COLORS[i % COLORS.length];
    const line = {fill: "none", stroke: c, "stroke-width": 2, points: s.points.map(p => `${sx(p[0])},${sy(p[1])}`).join(" ")};
    if (s.dash) line["stroke-dasharray"] = "6 4";
    el("polyline", line);
    for (const p of s.points) el("circle", {cx: sx(p[0]), cy: sy(p[1]), r: 2.5, fill: c});
    el("text", {x: W - R + 8, y: T + 14 + 16 * i, fill: c, "font-size": 12, class: "legend"}, s.name);
  });
}

async function refreshPlot(svg) {
  const response = await fetch(svg.dataset.src, {credentials: "same-origin"});
  if (!response.ok) return null;
  const data = await response.json();
  drawPlot(svg, data);
  svg.dataset.points = String(data.series.reduce((n, s) => n + s.points.length, 0));
  return data;
}

async function watch(svg) {
  const data = await refreshPlot(svg);
  const status = document.getElementById("status");
  if (data && data.status && status) {
    status.textContent = data.status; status.className = "status-" + data.status;
    const secondary = document.getElementById("secondary");
    if (secondary && data.secondary) secondary.textContent = data.secondary;
  }
  if (data && data.done === false) setTimeout(() => watch(svg), 1000);
  else if (data && svg.dataset.live === "true") location.reload();  // the finished job's full page
  else svg.dataset.final = "true";
}

document.addEventListener("DOMContentLoaded", () => document.querySelectorAll("svg[data-src]").forEach(watch));
"""
