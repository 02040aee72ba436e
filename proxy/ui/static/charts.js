// Insights: fetch the JSON routes (/v1/insights, /v1/insights/history) and draw small SVG charts.
// No chart library: grouped bars, an optional line on a 0-1 right axis, and tables.
(function () {
  "use strict";
  const root = document.getElementById("insights");
  if (!root) return;
  const COLORS = ["#2f5d8a", "#d08c2f", "#4f9a6a", "#a34f8f", "#7a7f86", "#c2463c"];
  const NS = "http://www.w3.org/2000/svg";

  function el(tag, attrs, text) {
    const node = document.createElementNS(NS, tag);
    for (const k in attrs) node.setAttribute(k, attrs[k]);
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function html(tag, text, cls) {
    const node = document.createElement(tag);
    if (text !== undefined) node.textContent = text;
    if (cls) node.className = cls;
    return node;
  }

  function fmt(v, kind) {
    if (v === null || v === undefined) return "–";
    if (kind === "usd") return "$" + Number(v).toFixed(Math.abs(v) < 0.01 ? 6 : 2);
    if (kind === "pct") return (100 * v).toFixed(0) + "%";
    return String(Math.round(v * 100) / 100);
  }

  // labels: [..]; series: [{name, values: [..]}]; line: {name, values (0..1)} optional
  function bars(target, labels, series, opts) {
    opts = opts || {};
    const box = document.getElementById(target);
    box.textContent = "";
    if (!labels.length) { box.appendChild(html("p", "No data in this period.", "hint")); return; }
    const W = 560, H = 220, L = 56, R = opts.line ? 40 : 10, T = 10, B = 46;
    const all = series.flatMap(s => s.values).concat([0]);
    const max = Math.max.apply(null, all), min = Math.min.apply(null, all);
    const span = (max - min) || 1;
    const y = v => T + (H - T - B) * (max - v) / span;
    const svg = el("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": opts.title || target });
    svg.appendChild(el("line", { x1: L, x2: W - R, y1: y(0), y2: y(0), stroke: "#999" }));
    [max, min].forEach(v => svg.appendChild(el("text", { x: L - 4, y: y(v) + 4, "text-anchor": "end", "font-size": 10 },
                                                 fmt(v, opts.kind))));
    const group = (W - L - R) / labels.length, bw = Math.max(2, (group * 0.8) / series.length);
    labels.forEach((label, i) => {
      series.forEach((s, j) => {
        const v = s.values[i] || 0, x = L + i * group + group * 0.1 + j * bw;
        const rect = el("rect", { x: x, width: bw - 1, y: Math.min(y(v), y(0)), height: Math.abs(y(v) - y(0)) || 0.5,
                                  fill: COLORS[j % COLORS.length] });
        rect.appendChild(el("title", {}, `${label} · ${s.name}: ${fmt(v, opts.kind)}`));
        svg.appendChild(rect);
      });
      const short = String(label).length > 12 ? String(label).slice(0, 11) + "…" : String(label);
      svg.appendChild(el("text", { x: L + i * group + group / 2, y: H - B + 14, "text-anchor": "middle", "font-size": 10 }, short));
    });
    if (opts.line) {
      const ly = v => T + (H - T - B) * (1 - v);
      let d = "";
      opts.line.values.forEach((v, i) => {
        if (v === null || v === undefined) return;
        const x = L + i * group + group / 2;
        d += (d ? " L" : "M") + x + " " + ly(v);
        const dot = el("circle", { cx: x, cy: ly(v), r: 3, fill: "#c2463c" });
        dot.appendChild(el("title", {}, `${labels[i]} · ${opts.line.name}: ${fmt(v, "pct")}`));
        svg.appendChild(dot);
      });
      if (d) svg.appendChild(el("path", { d: d, stroke: "#c2463c", fill: "none", "stroke-width": 2 }));
      svg.appendChild(el("text", { x: W - R + 4, y: ly(1) + 4, "font-size": 10 }, "100%"));
      svg.appendChild(el("text", { x: W - R + 4, y: ly(0) + 4, "font-size": 10 }, "0%"));
    }
    box.appendChild(svg);
    const legend = html("div", undefined, "legend");
    series.concat(opts.line ? [{ name: opts.line.name, color: "#c2463c" }] : []).forEach((s, j) => {
      const item = html("span");
      const swatch = html("i");
      swatch.style.background = s.color || COLORS[j % COLORS.length];
      item.appendChild(swatch);
      item.appendChild(document.createTextNode(s.name));
      legend.appendChild(item);
    });
    box.appendChild(legend);
  }

  function table(target, head, rows) {
    const box = document.getElementById(target);
    box.textContent = "";
    const t = html("table");
    const tr = html("tr");
    head.forEach(h => tr.appendChild(html("th", h)));
    t.appendChild(html("thead")).appendChild(tr);
    const body = html("tbody");
    rows.forEach(r => {
      const row = html("tr");
      r.forEach(c => row.appendChild(html("td", c)));
      body.appendChild(row);
    });
    if (!rows.length) { const row = html("tr"); const c = html("td", "No data in this period."); c.colSpan = head.length; row.appendChild(c); body.appendChild(row); }
    t.appendChild(body);
    box.appendChild(t);
  }

  function line(target, text) { document.getElementById(target).textContent = text; }

  async function get(url) {
    const response = await fetch(url, { credentials: "same-origin", headers: { accept: "application/json" } });
    if (response.status === 401) { window.location.assign("/ui/signin?expired=1&next=/ui/insights"); throw new Error("signed out"); }
    return response.json();
  }

  async function draw() {
    const data = await get("/v1/insights?days=" + root.dataset.days);
    const s = data.savings, tiers = s.tiers;
    line("savings-total", `${s.total.calls} answered calls cost ${fmt(s.total.actual, "usd")}. ` + tiers.map(
      t => `Always-${t}: ${fmt(s.total.at[t], "usd")} (saved ${fmt(s.total.saved[t], "usd")})`).join(" · "));
    const tasks = Object.keys(s.by_task_type);
    bars("chart-savings-task", tasks, tiers.map(t => ({ name: "saved vs always-" + t, values: tasks.map(k => s.by_task_type[k].saved[t]) })), { kind: "usd" });
    const days = Object.keys(s.by_day);
    bars("chart-savings-day", days, [{ name: "actual cost", values: days.map(d => s.by_day[d].actual) }].concat(
      tiers.includes("large") ? [{ name: "always-large", values: days.map(d => s.by_day[d].at.large) }] : []), { kind: "usd" });
    const e = data.escalations, et = Object.keys(e.by_task_type);
    line("escalation-total", `${e.escalated} of ${e.calls} calls escalated (${fmt(e.rate, "pct")}).`);
    bars("chart-escalation", et, [{ name: "escalation rate", values: et.map(k => e.by_task_type[k].rate) }], { kind: "pct" });
    const reasons = Object.keys(e.reasons);
    bars("chart-reasons", reasons, [{ name: "steps that escalated", values: reasons.map(r => e.reasons[r]) }]);
    const bands = data.confidence.bands;
    bars("chart-confidence", bands.map(b => b.band), [{ name: "answers", values: bands.map(b => b.calls) }],
         { line: { name: "reviewer acceptance", values: bands.map(b => b.acceptance) } });
    const q = data.queue, ages = Object.keys(q.by_age);
    line("queue-total", `${q.depth} waiting (${q.spot_checks} spot checks); the oldest for ${Math.round(q.oldest_age_s / 60)} min.`);
    bars("chart-queue", ages, [{ name: "items waiting", values: ages.map(a => q.by_age[a]) }]);
    const p = data.providers;
    table("providers", ["provider", "attempts", "ok", "failures", "rate limited", "cool-downs", "cool-down s"],
          Object.entries(p.providers).map(([name, v]) => [name, v.attempts, v.ok, v.failures, v.rate_limited, v.cooldowns, v.cooldown_s]));
    if (p.failover_calls) {
      const f = html("p", "Failovers: " + Object.entries(p.failovers).map(([k, v]) => `${k} ×${v}`).join(", "));
      document.getElementById("providers").appendChild(f);
    }
    root.dataset.loaded = "1";
  }

  async function history() {
    const data = await get("/v1/insights/history");
    table("history-table", ["version", "created (UTC)", "source", "active", "changes (reason, samples)"],
          data.data.map(v => [v.version, v.created_at.replace("T", " ").slice(0, 19), v.source, v.active ? "active" : "",
            (v.changes.length ? v.changes.map(c => `${c.key}: ${JSON.stringify(c.old)} → ${JSON.stringify(c.new)} (${c.reason || ""}${
              c.samples ? "; " + Object.entries(c.samples).map(([k, n]) => k + " " + n).join(", ") : ""})`).join("\n")
              : (v.summary || v.notes.join("; ") || "no change"))]));
  }

  document.getElementById("diff-form").addEventListener("submit", async function (event) {
    event.preventDefault();
    const a = this.elements.a.value, b = this.elements.b.value;
    const data = await get(`/v1/insights/history/diff?a=${encodeURIComponent(a)}&b=${encodeURIComponent(b)}`);
    if (data.error) { line("diff", data.error.message); return; }
    table("diff", ["key", "version " + a, "version " + b], data.changes.map(c => [c.key, JSON.stringify(c.old), JSON.stringify(c.new)]));
  });

  const rollback = document.getElementById("rollback-form");
  if (rollback) {
    rollback.addEventListener("submit", function (event) {
      const v = this.elements.version.value;
      if (!window.confirm(`Make learned-state version ${v} the active one on every gateway?`)) event.preventDefault();
    });
  }

  draw().catch(err => line("savings-total", "Could not load the figures: " + err.message));
  history().catch(() => {});
})();
