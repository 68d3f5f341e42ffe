// mugpos operator dashboard: one state read, then server-sent events. No framework, no build step.
// With MUGPOS_AUTH_TOKEN set, open /dashboard/#token=<token>: the token stays in this tab
// (sessionStorage), is sent as a bearer header and never appears in a URL the server sees.
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const fromHash = new URLSearchParams(location.hash.slice(1)).get("token");
  if (fromHash) { sessionStorage.setItem("mugpos-token", fromHash); history.replaceState(null, "", location.pathname); }
  const token = sessionStorage.getItem("mugpos-token");
  const headers = token ? { Authorization: "Bearer " + token } : {};
  const pictures = new Map(); // picture path -> object URL (images need the header too)
  const shown = new Set();

  const fmtBytes = (n) => n == null ? "–" : n < 1024 ? n + " B" : n < 1048576 ? (n / 1024).toFixed(0) + " KiB" : n < 1073741824 ? (n / 1048576).toFixed(1) + " MiB" : (n / 1073741824).toFixed(1) + " GiB";
  const fmtPct = (x) => x == null ? "–" : Math.round(x * 100) + "%";
  const fmtS = (s) => s == null ? "–" : s >= 3600 ? (s / 3600).toFixed(1) + " h" : s >= 60 ? Math.floor(s / 60) + " min " + Math.round(s % 60) + " s" : Math.round(s) + " s";
  const el = (tag, attrs, ...kids) => { const e = document.createElement(tag); Object.assign(e, attrs || {}); for (const k of kids) if (k != null) e.append(k); return e; };

  function renderStatus(s) {
    $("version").textContent = s.version ? "v" + s.version + " · up " + fmtS(s.uptime_s) : "";
    const m = s.models;
    $("models").textContent = m.ready ? "warm" : m.error ? "failed" : (m.stage || "cold");
    $("models-sub").textContent = m.error ? m.error : (s.device || "") + (m.load_seconds && Object.keys(m.load_seconds).length ? " · loaded in " + Object.values(m.load_seconds).reduce((a, b) => a + b, 0).toFixed(1) + " s" : "");
    const idle = s.idle;
    $("idle").textContent = !idle ? "off" : idle.stopped ? "stopped" : idle.busy ? "busy" : fmtS(idle.seconds_left);
    $("idle-sub").textContent = idle ? "after " + fmtS(idle.idle_shutdown_s) + " idle" : "not a timed pod";
    const det = s.batching.detector || {}, emb = s.batching.embedder || {};
    $("queue").textContent = (det.queue_depth || 0) + (emb.queue_depth || 0);
    $("queue-sub").textContent = "detector " + (det.queue_depth || 0) + " · embedder " + (emb.queue_depth || 0);
    $("batch").textContent = det.mean_batch != null ? "×" + det.mean_batch : "–";
    $("batch-sub").textContent = s.batching.enabled === false ? "batching off" : (det.batches || 0) + " detector batches, max " + (det.max_batch ?? "–");
    const l2 = s.cache.l2 || {}, l1 = s.cache.l1 || {};
    $("cache").textContent = fmtPct(l2.hit_rate);
    $("cache-sub").textContent = "in-process " + fmtPct(l2.hit_rate) + " (" + fmtBytes(l2.bytes) + ") · redis " + (l1.enabled === false ? "off" : fmtPct(l1.hit_rate) + (s.backends.redis === false ? " DOWN" : ""));
    const g = (s.gpu || [])[0];
    $("gpu").textContent = g ? fmtBytes(g.used) + " / " + fmtBytes(g.total) : "none";
    $("gpu-sub").textContent = g ? g.name + (g.utilization != null ? " · " + fmtPct(g.utilization) + " busy" : "") : "CPU only";
    const tbody = $("latency").tBodies[0];
    tbody.replaceChildren(...Object.entries(s.latency).filter(([, v]) => v.n).map(([stage, v]) =>
      el("tr", {}, el("td", { textContent: stage }), el("td", { textContent: v.p50 }), el("td", { textContent: v.p95 }), el("td", { textContent: v.max }), el("td", { textContent: v.n }))));
    const calls = Object.entries(s.calls).map(([tool, o]) => tool + " " + (o.ok || 0) + (o.refused ? "/" + o.refused + " refused" : "") + (o.error ? "/" + o.error + " failed" : ""));
    $("calls").textContent = calls.length ? "· " + calls.join(", ") : "";
    const deg = s.degraded || [];
    $("degraded").hidden = !deg.length; $("degraded").textContent = deg.join(" · ");
  }

  async function loadPicture(img, path) {
    if (!pictures.has(path)) {
      const r = await fetch(path, { headers });
      if (!r.ok) return;
      pictures.set(path, URL.createObjectURL(await r.blob()));
    }
    img.src = pictures.get(path);
  }

  function addEvent(e, fresh) {
    if (shown.has(e.seq)) return;
    shown.add(e.seq);
    $("empty").hidden = true;
    const img = el("img", { alt: "annotated photo" + (e.analysis_id ? " of " + e.analysis_id : "") });
    if (e.picture) loadPicture(img, e.picture);
    const verdicts = el("ul", {}, ...e.verdicts.map((v) => el("li", {}, el("span", { className: "status-" + v.status, textContent: v.status }), " " + (v.text || v.interpretation))));
    const moves = el("ul", {}, ...e.suggestions.map((s) => el("li", { textContent: s.object_id + ": " + s.instruction })));
    const when = new Date(e.at * 1000).toLocaleTimeString();
    const total = e.timings && e.timings.total_ms ? " · " + Math.round(e.timings.total_ms) + " ms" : "";
    const li = el("li", { className: "event " + e.kind + (fresh ? " new" : "") },
      e.picture ? img : el("div", { className: "muted", textContent: "no picture" }),
      el("div", {}, el("div", { className: "meta", textContent: e.kind + " · " + when + total + (e.analysis_id ? " · " + e.analysis_id : "") }),
        el("div", { className: "summary", textContent: e.summary || "" }),
        e.verdicts.length ? verdicts : null, e.suggestions.length ? moves : null));
    li.dataset.analysisId = e.analysis_id || "";
    li.dataset.seq = e.seq;
    if (e.picture) li.dataset.picture = e.picture;
    $("recent").prepend(li);
    while ($("recent").children.length > 30) {
      const gone = $("recent").lastElementChild, path = gone.dataset.picture;
      if (path && pictures.has(path)) { URL.revokeObjectURL(pictures.get(path)); pictures.delete(path); }
      gone.remove();
    }
  }

  // Server-sent events read through fetch, so the bearer header goes along (EventSource cannot).
  async function follow() {
    for (;;) {
      try {
        const r = await fetch("events", { headers: { ...headers, Accept: "text/event-stream" } });
        if (!r.ok) throw new Error("HTTP " + r.status + (r.status === 401 ? ": open /dashboard/#token=<MUGPOS_AUTH_TOKEN>" : ""));
        $("conn").textContent = "live"; $("conn").className = "pill on";
        const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
        let buf = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buf += value;
          let cut;
          while ((cut = buf.indexOf("\n\n")) >= 0) {
            const block = buf.slice(0, cut); buf = buf.slice(cut + 2);
            const kind = (block.match(/^event: (.*)$/m) || [])[1];
            const data = block.split("\n").filter((l) => l.startsWith("data: ")).map((l) => l.slice(6)).join("\n");
            if (!data) continue;
            const msg = JSON.parse(data);
            if (kind === "state") { renderStatus(msg); msg.recent.slice().reverse().forEach((e) => addEvent(e, false)); }
            else if (kind === "status") renderStatus(msg);
            else if (kind === "event") addEvent(msg, true);
          }
        }
        throw new Error("stream ended");
      } catch (err) {
        $("conn").textContent = "reconnecting: " + err.message; $("conn").className = "pill off";
        await new Promise((ok) => setTimeout(ok, 2000));
      }
    }
  }
  follow();
})();
