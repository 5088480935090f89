"use strict";
// The wanderer-kills status page: figures from /api/v1/stats/stream,
// killmails from /api/v2/killmails then /api/v1/kills/stream. No
// dependencies; every figure shown comes from the server, and one the
// server does not know reads "n/a".
(function () {
  const MAX_KILLS = 20;
  const $ = (id) => document.getElementById(id);
  const intFmt = new Intl.NumberFormat("en-US");

  function setText(id, text) {
    const el = $(id);
    if (el && el.textContent !== text) el.textContent = text;
  }
  function known(v) { return v !== null && v !== undefined; }
  function fmtInt(n) { return known(n) ? intFmt.format(n) : "n/a"; }

  // fmtISK prints an ISK value the way players write it: 1.2b, 350m, 12k.
  function fmtISK(v) {
    if (!known(v) || !isFinite(v)) return "—";
    const units = [[1e12, "t"], [1e9, "b"], [1e6, "m"], [1e3, "k"]];
    for (const [size, suffix] of units) {
      if (Math.abs(v) >= size) {
        const x = v / size;
        const digits = Math.abs(x) >= 100 ? 0 : 1;
        return x.toFixed(digits).replace(/\.0$/, "") + suffix;
      }
    }
    return String(Math.round(v));
  }
  function fmtBytes(b) {
    if (!known(b)) return "n/a";
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let i = 0;
    while (b >= 1024 && i < units.length - 1) { b /= 1024; i++; }
    return (i === 0 ? String(b) : b.toFixed(b >= 100 ? 0 : 1)) + " " + units[i];
  }
  function fmtDuration(sec) {
    if (!known(sec)) return "n/a";
    sec = Math.max(0, Math.round(sec));
    if (sec < 60) return sec + "s";
    const d = Math.floor(sec / 86400), h = Math.floor(sec % 86400 / 3600), m = Math.floor(sec % 3600 / 60), s = sec % 60;
    if (d > 0) return d + "d " + h + "h";
    if (h > 0) return h + "h " + m + "m";
    return m + "m " + s + "s";
  }
  function fmtClock(iso) {
    if (!iso) return "n/a";
    const t = new Date(iso);
    return isNaN(t) ? "n/a" : t.toISOString().slice(11, 19) + " UTC";
  }
  function setState(id, text, level) {
    const el = $(id);
    setText(id, text);
    el.classList.remove("ok", "warn", "bad", "state-ok", "state-warn", "state-bad");
    if (level) el.classList.add(el.classList.contains("badge") ? level : "state-" + level);
  }
  function circuitLevel(c) { return c.state === "closed" ? "ok" : c.state === "open" ? "bad" : "warn"; }
  function circuitText(c) {
    let t = c.state.replace("_", "-");
    if (c.consecutive_errors > 0) t += " (" + c.consecutive_errors + "/" + c.threshold + " errors)";
    return t;
  }
  function setConn(id, state, text) {
    const el = $(id);
    if (el.dataset.state !== state) el.dataset.state = state;
    setText(id + "-text", text);
  }

  // ---- figures ----
  let startedAt = null;
  let updatedAt = null;

  function renderStats(s) {
    startedAt = Date.parse(s.started_at);
    updatedAt = Date.parse(s.timestamp);
    setText("version", s.version ? "v" + s.version.replace(/^v/, "") : "");
    setText("server-version", s.version || "n/a");
    setText("stored", fmtInt(s.store.killmails));
    setText("disk", fmtBytes(s.store.disk_bytes));
    setText("head", fmtInt(s.store.head_offset));
    renderIngest(s.ingest);
    renderFeed(s.feed);
    renderESI(s.esi);
    const l = s.live;
    setText("live-ws", fmtInt(l.websocket_connections));
    setText("live-sse", fmtInt(l.sse_connections));
    setText("live-subs", fmtInt(l.subscriptions));
    setText("live-ids", fmtInt(l.systems) + " · " + fmtInt(l.characters));
    renderWebhooks(s.webhooks);
    setText("http-rate", fmtInt(s.http.requests_per_minute));
    tick();
  }

  function renderIngest(g) {
    if (!g) {
      setText("rate", "n/a");
      setText("lasthour", "n/a");
      setText("sampling", "rate sampling is not running");
      drawSpark(null);
      return;
    }
    setText("rate", fmtInt(g.per_minute));
    setText("lasthour", fmtInt(g.last_hour));
    setText("sampling", "counting since " + fmtClock(g.sampling_since));
    drawSpark(g);
  }

  const SVG = "http://www.w3.org/2000/svg";
  let sparkKey = "";
  function drawSpark(g) {
    const svg = $("spark");
    const key = g ? g.series_end + ":" + g.per_minute_series.join(",") : "none";
    if (key === sparkKey) return;
    sparkKey = key;
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    const W = 600, H = 64, n = 60, slot = W / n, gap = 2;
    const base = document.createElementNS(SVG, "line");
    base.setAttribute("x1", "0"); base.setAttribute("x2", String(W));
    base.setAttribute("y1", String(H - 0.5)); base.setAttribute("y2", String(H - 0.5));
    base.setAttribute("class", "base");
    svg.appendChild(base);
    if (!g) return;
    const series = g.per_minute_series;
    const peak = Math.max(1, ...series.filter(known));
    const end = Date.parse(g.series_end);
    series.forEach((v, i) => {
      const r = document.createElementNS(SVG, "rect");
      const x = i * slot + gap / 2, w = slot - gap;
      const minute = new Date(end - (n - 1 - i) * 60000).toISOString().slice(11, 16);
      const title = document.createElementNS(SVG, "title");
      if (!known(v)) {
        r.setAttribute("class", "unknown");
        r.setAttribute("x", String(x)); r.setAttribute("width", String(w));
        r.setAttribute("y", String(H - 2)); r.setAttribute("height", "2");
        title.textContent = minute + " UTC: not sampled";
      } else {
        const h = v === 0 ? 1 : Math.max(2, (v / peak) * (H - 4));
        r.setAttribute("class", i === n - 1 ? "bar partial" : "bar");
        r.setAttribute("x", String(x)); r.setAttribute("width", String(w));
        r.setAttribute("y", String(H - h)); r.setAttribute("height", String(h));
        title.textContent = minute + " UTC: " + intFmt.format(v) + " killmails" + (i === n - 1 ? " (so far)" : "");
      }
      r.appendChild(title);
      svg.appendChild(r);
    });
  }

  const FEED_LEVEL = { running: "ok", caught_up: "ok", starting: "warn", backoff: "warn", stopped: "bad" };
  function renderFeed(f) {
    setText("feed-source", f.source);
    setState("feed-state", f.state.replace("_", " "), FEED_LEVEL[f.state] || "");
    setText("feed-seq", known(f.last_sequence) ? fmtInt(f.last_sequence) : "n/a");
    setText("feed-lag", known(f.lag_sequences) ? fmtInt(f.lag_sequences) + " sequences" : "n/a");
    setText("feed-age", f.lag_seconds > 0 ? fmtDuration(f.lag_seconds) : f.state === "off" ? "n/a" : "caught up");
    setState("feed-circuit", circuitText(f.circuit_breaker), circuitLevel(f.circuit_breaker));
    const err = $("feed-error");
    err.hidden = !f.last_error;
    if (f.last_error) setText("feed-error", "last error: " + f.last_error);
  }

  function renderESI(e) {
    if (!e) {
      ["esi-budget", "esi-hit", "esi-lookups", "esi-circuit", "esi-timeouts"].forEach((id) => setState(id, "n/a", ""));
      return;
    }
    let budget = known(e.error_budget_remaining) ? e.error_budget_remaining + " errors left" : "n/a (no reply yet)";
    if (e.held_until) budget += ", held until " + fmtClock(e.held_until);
    const low = known(e.error_budget_remaining) && e.error_budget_remaining < 20;
    setState("esi-budget", budget, e.held_until || low ? "warn" : "");
    setText("esi-hit", known(e.cache_hit_rate) ? (e.cache_hit_rate * 100).toFixed(1) + "%" : "n/a (no lookups yet)");
    setText("esi-lookups", fmtInt(e.cache_hits + e.cache_misses));
    setState("esi-circuit", circuitText(e.circuit_breaker), circuitLevel(e.circuit_breaker));
    setState("esi-timeouts", fmtInt(e.consecutive_timeouts), e.consecutive_timeouts > 0 ? "warn" : "");
  }

  function renderWebhooks(w) {
    const ids = ["wh-subs", "wh-active", "wh-fail", "wh-sent"];
    if (!w) {
      ids.forEach((id) => setState(id, "n/a", ""));
      setText("wh-note", "webhooks: n/a (this server reports no webhook figures)");
      return;
    }
    setText("wh-subs", fmtInt(w.subscriptions));
    setState("wh-active", fmtInt(w.active) + " · " + fmtInt(w.disabled), w.disabled > 0 ? "warn" : "");
    setState("wh-fail", fmtInt(w.failed_attempts), w.failed_attempts > 0 ? "warn" : "");
    setText("wh-sent", fmtInt(w.killmails_delivered));
    setText("wh-note", "attempts and deliveries since start");
  }

  function tick() {
    const now = Date.now();
    if (startedAt) setText("uptime", fmtDuration((now - startedAt) / 1000));
    if (updatedAt) setText("updated", new Date(updatedAt).toISOString().slice(11, 19) + " UTC");
  }
  setInterval(tick, 1000);

  function followStats() {
    const es = new EventSource("/api/v1/stats/stream");
    es.addEventListener("stats", (ev) => {
      setConn("conn", "live", "live");
      renderStats(JSON.parse(ev.data));
    });
    es.addEventListener("open", () => setConn("conn", "live", "live"));
    es.addEventListener("error", (ev) => {
      if (ev.data) {
        try { setConn("conn", "down", JSON.parse(ev.data).message); } catch (_) { /* not ours */ }
        return;
      }
      setConn("conn", es.readyState === EventSource.CLOSED ? "down" : "connecting",
        es.readyState === EventSource.CLOSED ? "disconnected" : "reconnecting…");
    });
  }

  // ---- killmails ----
  // Rows are kept, not redrawn: a live killmail goes on top, a stored one
  // (the first page) below, and the oldest row goes past MAX_KILLS.
  const rows = new Map(); // killmail_id -> tr

  function addKills(list, live) {
    const body = $("kills-body");
    for (const k of list) {
      if (!k || !known(k.killmail_id) || rows.has(k.killmail_id)) continue;
      const tr = killRow(k, live);
      rows.set(k.killmail_id, tr);
      if (live) body.insertBefore(tr, body.firstChild); else body.appendChild(tr);
    }
    while (body.children.length > MAX_KILLS) {
      const last = body.lastElementChild;
      rows.delete(Number(last.dataset.id));
      last.remove();
    }
    $("kills-empty").hidden = body.children.length > 0;
  }

  function cell(tr, content, cls, sub) {
    const td = document.createElement("td");
    if (cls) td.className = cls;
    if (content instanceof Node) td.appendChild(content); else td.textContent = content;
    if (sub) {
      const s = document.createElement("span");
      s.className = "sub";
      s.textContent = sub;
      td.appendChild(s);
    }
    tr.appendChild(td);
  }

  function killRow(k, fresh) {
    const tr = document.createElement("tr");
    tr.dataset.id = String(k.killmail_id);
    if (fresh) tr.className = "fresh";
    const a = document.createElement("a");
    a.href = "/api/v1/killmail/" + k.killmail_id;
    a.className = "kill-link";
    a.textContent = k.kill_time ? k.kill_time.replace("T", " ").replace(/:\d\dZ$/, "") : "#" + k.killmail_id;
    a.title = "killmail " + k.killmail_id;
    cell(tr, a, "time");
    cell(tr, k.solar_system_name || "system " + k.system_id, "sys");
    const v = k.victim || {};
    cell(tr, v.ship_name || (known(v.ship_type_id) ? "type " + v.ship_type_id : "—"), "ship");
    const who = v.character_name || v.corporation_name || "—";
    const tags = v.character_name && v.corporation_ticker
      ? "[" + v.corporation_ticker + "]" + (v.alliance_ticker ? " <" + v.alliance_ticker + ">" : "") : "";
    cell(tr, who, "victim", tags);
    cell(tr, k.zkb ? fmtISK(k.zkb.totalValue) : "—", "num");
    return tr;
  }

  function followKills() {
    // Follow first, then load the newest stored: nothing arrives in between unseen.
    const es = new EventSource("/api/v1/kills/stream");
    es.addEventListener("open", () => setConn("kills-conn", "live", "live"));
    es.addEventListener("message", (ev) => {
      try { addKills([JSON.parse(ev.data)], true); } catch (_) { /* skip a malformed event */ }
    });
    es.addEventListener("error", () => setConn("kills-conn", es.readyState === EventSource.CLOSED ? "down" : "connecting",
      es.readyState === EventSource.CLOSED ? "disconnected" : "reconnecting…"));
    fetch("/api/v2/killmails?limit=" + MAX_KILLS, { headers: { Accept: "application/json" } })
      .then((r) => r.ok ? r.json() : Promise.reject(new Error("HTTP " + r.status)))
      .then((body) => addKills(body.data.killmails, false))
      .catch((err) => setText("kills-empty", "Could not load the stored killmails: " + err.message));
  }

  followStats();
  followKills();
})();
