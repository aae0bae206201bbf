// Draws the dashboard's charts from the JSON the server embedded in the page.
"use strict";

const data = JSON.parse(document.getElementById("page-data").textContent);
const base = window.location.pathname.replace(/\/$/, "");
const config = { responsive: true, displaylogo: false };
// 0 .. 1 is below the threshold (green to amber), 1 .. 3 beyond it (amber to red).
const severityScale = [[0, "#e8f3ea"], [0.2, "#a8d5b0"], [0.333, "#f5c04a"], [0.6, "#e8743b"], [1, "#b3261e"]];

function windowUrl(start) {
  // The form alert messages link to: colons stay as they are.
  return `${base}/windows/${encodeURIComponent(start).replace(/%3A/g, ":")}`;
}

function markRendered(id, points) {
  // The browser test reads these: what was drawn, not only that a div exists.
  const element = document.getElementById(id);
  element.dataset.rendered = "true";
  element.dataset.points = String(points);
}

function drawHeatmap() {
  const element = document.getElementById("heatmap");
  if (!element || !data.windows.length || !data.features.length) return;
  const trace = {
    type: "heatmap", x: data.windows, y: data.features, z: data.heatmap.z,
    text: data.heatmap.text, hovertemplate: "%{y}<br>%{x}<br>%{text}<extra></extra>",
    zmin: 0, zmax: 3, colorscale: severityScale, xgap: 1, ygap: 1,
    colorbar: { title: { text: "× threshold" } },
  };
  const height = Math.max(320, Math.min(4000, 24 * data.features.length + 140));
  Plotly.newPlot(element, [trace], {
    height, margin: { l: 160, r: 20, t: 10, b: 60 }, xaxis: { type: "date" }, yaxis: { automargin: true },
  }, config).then(() => {
    const cells = data.heatmap.z.flat().filter((v) => v !== null).length;
    markRendered("heatmap", cells);
  });
  element.on("plotly_click", (event) => {
    // A heatmap point's index is [row, column]; the column is the window.
    const index = event.points[0].pointIndex;
    const start = data.windows[Array.isArray(index) ? index[1] : index];
    if (start) window.location.href = windowUrl(start);
  });
}

function drawSeries() {
  const container = document.getElementById("series");
  if (!container) return;
  const names = Object.keys(data.metrics).sort();
  let drawn = 0;
  for (const name of names) {
    const points = data.metrics[name];
    const div = document.createElement("div");
    div.className = "chart series";
    div.id = `series-${name.replace(/[^a-zA-Z0-9_-]/g, "_")}`;
    container.appendChild(div);
    const x = points.map((p) => p.window_start);
    const anomalies = points.filter((p) => p.anomaly);
    const traces = [
      { x, y: points.map((p) => p.upper), mode: "lines", line: { width: 0 }, name: "upper", showlegend: false, hoverinfo: "skip" },
      { x, y: points.map((p) => p.lower), mode: "lines", line: { width: 0 }, fill: "tonexty", fillcolor: "rgba(90,120,200,0.15)", name: "3-sigma band" },
      { x, y: points.map((p) => p.value), mode: "lines+markers", name, line: { color: "#2b59c3" } },
      { x: anomalies.map((p) => p.window_start), y: anomalies.map((p) => p.value), mode: "markers", name: "anomaly", marker: { color: "#b3261e", size: 11, symbol: "x" } },
    ];
    Plotly.newPlot(div, traces, { title: { text: name }, height: 260, margin: { l: 60, r: 20, t: 40, b: 40 }, xaxis: { type: "date" } }, config)
      .then(() => markRendered(div.id, points.length));
    div.on("plotly_click", (event) => {
      const start = points[event.points[0].pointIndex]?.window_start;
      if (start) window.location.href = windowUrl(start);
    });
    drawn += 1;
  }
  container.dataset.series = String(drawn);
}

function drawCoverage() {
  const element = document.getElementById("coverage");
  if (!element || !data.coverage.length) return;
  const x = data.coverage.map((c) => c.window_start);
  Plotly.newPlot(element, [
    { x, y: data.coverage.map((c) => c.label_coverage), type: "bar", name: "label coverage", marker: { color: "#5a8f29" } },
  ], { height: 240, margin: { l: 60, r: 20, t: 10, b: 40 }, yaxis: { range: [0, 1], tickformat: ".0%" }, xaxis: { type: "date" } }, config)
    .then(() => markRendered("coverage", x.length));
}

function drawTimeline() {
  const element = document.getElementById("timeline");
  if (!element) return;
  const alerts = data.alerts.map((a) => ({ ...a, lane: `${a.severity} alerts` }));
  const traces = [
    { x: alerts.map((a) => a.window_start), y: alerts.map((a) => a.lane), text: alerts.map((a) => `${a.rule} ${a.subject}: ${a.status}<br>${a.summary}`),
      mode: "markers", type: "scatter", name: "alerts", hovertemplate: "%{text}<extra></extra>",
      marker: { size: 12, color: alerts.map((a) => (a.status === "firing" ? "#b3261e" : "#7a8599")) } },
    { x: data.triggers.map((t) => t.window_start), y: data.triggers.map(() => "retraining triggers"), text: data.triggers.map((t) => t.reason),
      mode: "markers", type: "scatter", name: "triggers", hovertemplate: "%{text}<extra></extra>", marker: { size: 13, symbol: "diamond", color: "#6b3fa0" } },
  ];
  Plotly.newPlot(element, traces, { height: 220, margin: { l: 150, r: 20, t: 10, b: 40 }, xaxis: { type: "date" }, showlegend: false }, config)
    .then(() => markRendered("timeline", alerts.length + data.triggers.length));
}

function drawWindowFeatures() {
  const element = document.getElementById("features");
  if (!element) return;
  const primary = data.drift.filter((d) => d.is_primary).sort((a, b) => (b.severity ?? 0) - (a.severity ?? 0));
  Plotly.newPlot(element, [{
    type: "bar", orientation: "h", y: primary.map((d) => d.feature), x: primary.map((d) => d.severity),
    marker: { color: primary.map((d) => (d.drifted ? "#b3261e" : "#5a8f29")) },
    hovertemplate: "%{y}: %{x:.2f} × threshold<extra></extra>",
  }], {
    height: Math.max(260, 22 * primary.length + 80), margin: { l: 160, r: 20, t: 10, b: 40 },
    xaxis: { title: { text: "× threshold" }, range: [0, 3] }, yaxis: { autorange: "reversed" },
    shapes: [{ type: "line", x0: 1, x1: 1, yref: "paper", y0: 0, y1: 1, line: { dash: "dot", color: "#1d2430" } }],
  }, config).then(() => markRendered("features", primary.length));
}

if (data && !Array.isArray(data)) {
  if (data.heatmap) {
    drawHeatmap();
    drawSeries();
    drawCoverage();
    drawTimeline();
  } else if (data.drift) {
    drawWindowFeatures();
  }
}
