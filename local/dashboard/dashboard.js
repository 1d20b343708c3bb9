// Compliance dashboard: reads the compliance API (same origin), draws it, refreshes every 5 s.
// No libraries, no network beyond the API; DOM is built with textContent only (ids and values come
// from devices, never trusted as HTML).
(function () {
  "use strict";
  var STATES = ["compliant", "pending", "drifted", "stale", "failed", "escalated"];
  var ATTENTION = ["stale", "failed", "escalated"];
  var REFRESH_MS = 5000;
  var base = location.pathname.replace(/dashboard\/?$/, "");
  var key = new URLSearchParams(location.search).get("code");

  var ui = {
    state: byId("filter-state"), property: byId("filter-property"), tags: byId("filter-tags"),
    search: byId("search"), more: byId("more"), csv: byId("csv"), live: byId("live"), liveText: byId("live-text"), banner: byId("banner"),
  };
  var model = { items: [], nextCursor: null, paged: false, summary: null, selected: null, inFlight: false, resyncOnly: false };

  function byId(id) { return document.getElementById(id); }
  function el(tag, attrs) {
    var node = document.createElement(tag);
    for (var name in attrs || {}) {
      var value = attrs[name];
      if (value === undefined || value === null || value === false) continue;
      if (name === "text") node.textContent = String(value);
      else if (name === "className") node.className = value;
      else if (name === "color") node.style.setProperty("--c", "var(--" + value + ")");
      else node.setAttribute(name, String(value));
    }
    for (var i = 2; i < arguments.length; i++) if (arguments[i]) node.appendChild(arguments[i]);
    return node;
  }
  function svg(tag, attrs) {
    var node = document.createElementNS("http://www.w3.org/2000/svg", tag);
    for (var name in attrs) node.setAttribute(name, String(attrs[name]));
    return node;
  }
  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); return node; }
  function fmt(n) { return Number(n).toLocaleString("en-US"); }
  function pct(part, whole) { return whole > 0 ? (100 * part) / whole : 0; }
  function fmtPct(p) { return p >= 99.95 || p === 0 ? p.toFixed(0) + "%" : p.toFixed(1) + "%"; }
  function fmtDuration(seconds) {
    if (seconds === null || seconds === undefined) return "–";
    var s = Math.round(seconds);
    if (s < 60) return s + "s";
    if (s < 3600) return Math.floor(s / 60) + "m " + (s % 60 ? (s % 60) + "s" : "").trim();
    if (s < 86400) return Math.floor(s / 3600) + "h " + (Math.floor((s % 3600) / 60) ? Math.floor((s % 3600) / 60) + "m" : "");
    return Math.floor(s / 86400) + "d " + (Math.floor((s % 86400) / 3600) ? Math.floor((s % 86400) / 3600) + "h" : "");
  }
  function ago(iso) {
    var s = (Date.now() - Date.parse(iso)) / 1000;
    if (s < 0) return "in " + fmtDuration(-s).trim();
    if (s < 45) return "just now";
    return fmtDuration(s).split(" ")[0] + " ago";
  }
  function time(iso) {
    var d = new Date(iso);
    return el("time", { datetime: iso, title: d.toLocaleString(), text: d.toLocaleString(undefined, { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false }) });
  }
  function badge(state) { return el("span", { className: "badge", color: state, "data-state": state, text: state }); }
  function json(value) { return value === null || value === undefined ? "–" : JSON.stringify(value); }

  // --- API -----------------------------------------------------------------------------------
  function filterParams() {
    var params = new URLSearchParams();
    if (ui.state.value) params.set("state", ui.state.value);
    if (ui.property.value) params.set("property", ui.property.value);
    ui.tags.value.split(",").forEach(function (pair) {
      var at = pair.indexOf("=");
      if (at > 0) params.set("tag." + pair.slice(0, at).trim(), pair.slice(at + 1).trim());
    });
    return params;
  }
  function url(path, params) {
    var p = new URLSearchParams(params || "");
    if (key) p.set("code", key);
    var q = p.toString();
    return base + path + (q ? "?" + q : "");
  }
  function getJson(path, params, init) {
    return fetch(url(path, params), Object.assign({ headers: { accept: "application/json" } }, init || {})).then(function (res) {
      return res.json().catch(function () { return {}; }).then(function (body) {
        if (!res.ok) {
          var bad = (body["invalid-params"] || []).map(function (p) { return p.name + " " + p.reason; }).join("; ");
          var err = new Error(bad || body.detail || res.status + " " + res.statusText);
          err.status = res.status;
          throw err;
        }
        return body;
      });
    });
  }

  // --- Summary -------------------------------------------------------------------------------
  function renderSummary(s) {
    model.summary = s;
    var total = s.devices;
    var attention = ATTENTION.reduce(function (n, st) { return n + s.byState[st]; }, 0);
    document.querySelector('[data-testid="kpi-devices"]').textContent = fmt(total);
    byId("kpi-properties").textContent = fmt(s.properties) + " property records";
    document.querySelector('[data-testid="kpi-compliant-pct"]').textContent = total ? fmtPct(pct(s.byState.compliant, total)) : "–";
    byId("kpi-compliant").textContent = fmt(s.byState.compliant) + " of " + fmt(total) + " twins";
    document.querySelector('[data-testid="kpi-attention"]').textContent = fmt(attention);
    document.querySelector('[data-testid="ttc-p50"]').textContent = fmtDuration(s.timeToCompliance.p50);
    document.querySelector('[data-testid="ttc-p95"]').textContent = fmtDuration(s.timeToCompliance.p95);
    document.querySelector('[data-testid="ttc-count"]').textContent = fmt(s.timeToCompliance.count);
    var w = s.timeToCompliance.sinceSeconds;
    byId("ttc-window").textContent = "last " + (w % 3600 === 0 && w <= 172800 ? w / 3600 + "h" : fmtDuration(w).trim());
    renderSync(s.fleetSync, s.resyncNeeded);
    renderDonut(s.byState, total);
    renderLegend(s.byState, total);
    renderProperties(s.byProperty);
  }

  function renderDonut(byState, total) {
    var donut = clear(byId("donut"));
    donut.appendChild(svg("circle", { class: "track", cx: 21, cy: 21, r: 15.915 }));
    var offset = 25; // start at 12 o'clock
    STATES.forEach(function (st) {
      var share = pct(byState[st], total);
      if (share <= 0) return;
      var seg = svg("circle", { class: "seg", cx: 21, cy: 21, r: 15.915, "stroke-dasharray": share + " " + (100 - share), "stroke-dashoffset": offset });
      seg.style.stroke = "var(--" + st + ")";
      var title = svg("title", {});
      title.textContent = st + ": " + fmt(byState[st]);
      seg.appendChild(title);
      donut.appendChild(seg);
      offset -= share;
    });
    var center = svg("text", { class: "center", x: 21, y: 22.5 });
    center.textContent = total ? fmtPct(pct(byState.compliant, total)) : "–";
    var sub = svg("text", { class: "center-sub", x: 21, y: 27 });
    sub.textContent = "compliant";
    donut.appendChild(center);
    donut.appendChild(sub);
  }

  function renderLegend(byState, total) {
    var legend = clear(byId("legend"));
    STATES.forEach(function (st) {
      var li = el("li", { "data-state": st, className: ui.state.value === st ? "active" : "", title: "Show only " + st },
        el("span", { className: "swatch", color: st }),
        el("span", { text: st }),
        el("span", { className: "count", "data-testid": "state-count-" + st, text: fmt(byState[st]) }),
        el("span", { className: "pct", text: fmtPct(pct(byState[st], total)) }));
      li.addEventListener("click", function () { ui.state.value = ui.state.value === st ? "" : st; onFiltersChanged(); });
      legend.appendChild(li);
    });
  }

  function renderProperties(rows) {
    var body = clear(byId("props"));
    byId("props-empty").hidden = rows.length > 0;
    var sorted = rows.slice().sort(function (a, b) {
      return pct(a.byState.compliant, a.total) - pct(b.byState.compliant, b.total) || (a.path < b.path ? -1 : 1);
    });
    sorted.forEach(function (row) {
      var bar = el("div", { className: "bar", title: STATES.map(function (st) { return st + " " + fmt(row.byState[st]); }).join(" · ") });
      STATES.forEach(function (st) {
        if (!row.byState[st]) return;
        var part = el("span", { color: st });
        part.style.width = pct(row.byState[st], row.total) + "%";
        bar.appendChild(part);
      });
      var notYet = row.total - row.byState.compliant;
      var tr = el("tr", { "data-path": row.path, title: "Filter by " + row.path },
        el("td", { text: row.path }),
        el("td", {}, bar),
        el("td", { className: "num good-text", "data-testid": "property-compliant", text: fmtPct(pct(row.byState.compliant, row.total)) }),
        el("td", { className: "num" + (notYet ? " bad-text" : ""), "data-testid": "property-not-compliant", text: fmt(notYet) }));
      tr.addEventListener("click", function () { ui.property.value = ui.property.value === row.path ? "" : row.path; onFiltersChanged(); });
      body.appendChild(tr);
    });
    // Keep the property filter's options in step with the fleet's properties.
    var known = Array.prototype.map.call(ui.property.options, function (o) { return o.value; });
    rows.forEach(function (row) { if (known.indexOf(row.path) < 0) ui.property.appendChild(el("option", { value: row.path, text: row.path })); });
  }

  function renderSync(sync, resync) {
    var last = sync && sync.lastComplete, now = sync && sync.inProgress;
    document.querySelector('[data-testid="sync-last"]').textContent = last
      ? "last pass " + ago(last.finishedAt) + ": " + fmt(last.twinsRead) + " twins read, " + fmt(last.twinsChanged) + " changed, " +
        fmt(last.twinsRemoved) + " removed, " + fmt(last.queriesUsed) + " queries, took " + fmtDuration((Date.parse(last.finishedAt) - Date.parse(last.startedAt)) / 1000).trim()
      : "no complete pass yet";
    document.querySelector('[data-testid="sync-progress"]').textContent = now
      ? "· pass in progress since " + ago(now.startedAt) + " (" + now.phase + ", " + fmt(now.twinsRead) + " read)"
      : "";
    var button = byId("resync-toggle");
    button.textContent = fmt(resync ? resync.count : 0) + " twins flagged";
    button.classList.toggle("active", model.resyncOnly);
    document.querySelector('[data-testid="resync-oldest"]').textContent = resync && resync.oldestSince ? "oldest " + ago(resync.oldestSince) : "";
  }

  // --- Devices -------------------------------------------------------------------------------
  function deviceParams(cursor) {
    var params = filterParams();
    var q = ui.search.value.trim();
    if (q) params.set("q", q);
    params.set("limit", "25");
    if (cursor) params.set("cursor", cursor);
    if (model.resyncOnly) params.set("resyncNeeded", "true");
    return params;
  }
  function deviceHash(deviceId, moduleId) {
    var p = new URLSearchParams({ device: deviceId });
    if (moduleId) p.set("module", moduleId);
    return "#" + p.toString();
  }
  function renderDevices(page, append) {
    model.items = append ? model.items.concat(page.items) : page.items;
    model.nextCursor = page.nextCursor;
    var body = clear(byId("devices"));
    byId("devices-empty").hidden = model.items.length > 0;
    model.items.forEach(function (d) {
      var total = STATES.reduce(function (n, st) { return n + (d.counts[st] || 0); }, 0);
      var bar = el("div", { className: "bar thin", title: STATES.filter(function (st) { return d.counts[st]; }).map(function (st) { return st + " " + d.counts[st]; }).join(" · ") });
      STATES.forEach(function (st) {
        if (!d.counts[st]) return;
        var part = el("span", { color: st });
        part.style.width = pct(d.counts[st], total) + "%";
        bar.appendChild(part);
      });
      var link = el("a", { href: deviceHash(d.deviceId, d.moduleId), "data-testid": "device-link", text: d.deviceId });
      var tr = el("tr", { "data-device": d.deviceId },
        el("td", {}, link, d.moduleId ? el("span", { className: "module", text: " / " + d.moduleId }) : null),
        el("td", {}, badge(d.state), d.resyncNeededSince
          ? el("span", { className: "badge resync", "data-testid": "resync-badge", title: "Flagged for resync " + ago(d.resyncNeededSince), text: "resync" })
          : null),
        el("td", { className: "muted", title: new Date(d.stateSince).toLocaleString(), text: ago(d.stateSince) }),
        el("td", {}, bar));
      tr.addEventListener("click", function (event) { if (event.target !== link) location.hash = deviceHash(d.deviceId, d.moduleId); });
      body.appendChild(tr);
    });
    ui.more.hidden = !model.nextCursor;
  }
  function loadDevices() { return getJson("compliance/devices", deviceParams()).then(function (page) { model.paged = false; renderDevices(page, false); }); }

  // --- Detail --------------------------------------------------------------------------------
  function selectedFromHash() {
    var p = new URLSearchParams(location.hash.slice(1));
    return p.get("device") ? { deviceId: p.get("device"), moduleId: p.get("module") } : null;
  }
  function loadDetail() {
    var sel = model.selected;
    byId("detail-placeholder").hidden = !!sel;
    byId("detail-body").hidden = !sel;
    if (!sel) return Promise.resolve();
    var params = new URLSearchParams();
    if (sel.moduleId) params.set("moduleId", sel.moduleId);
    return getJson("compliance/devices/" + encodeURIComponent(sel.deviceId), params).then(renderDetail, function (err) {
      if (err.status !== 404) throw err;
      byId("detail-title").textContent = sel.deviceId;
      clear(byId("detail-meta")).appendChild(el("span", { text: "Unknown twin: no compliance records." }));
      ["detail-tags", "detail-records", "detail-history"].forEach(function (id) { clear(byId(id)); });
    });
  }
  function renderDetail(d) {
    if (!model.selected || model.selected.deviceId !== d.deviceId) return;
    byId("detail-title").textContent = d.deviceId + (d.moduleId ? " / " + d.moduleId : "");
    var meta = clear(byId("detail-meta"));
    meta.appendChild(badge(d.state));
    meta.appendChild(el("span", { text: "since " + new Date(d.stateSince).toLocaleString() + " (" + ago(d.stateSince) + ")" }));
    if (d.staleAt && Date.parse(d.staleAt) > Date.now()) meta.appendChild(el("span", { text: "· stale " + ago(d.staleAt) }));
    var tags = clear(byId("detail-tags"));
    flattenTags(d.tags, "").forEach(function (t) { tags.appendChild(el("span", { className: "tag", text: t })); });
    var records = clear(byId("detail-records"));
    d.properties.forEach(function (r) {
      records.appendChild(el("tr", { "data-path": r.path },
        el("td", {}, el("code", { text: r.path, title: r.reportedPath !== r.path ? "reported at " + r.reportedPath : r.path })),
        el("td", {}, badge(r.state)),
        el("td", {}, el("code", { text: json(r.desired), title: json(r.desired) + " (version " + r.desiredVersion + ")" })),
        el("td", {}, el("code", { text: json(r.reported), title: json(r.reported) })),
        el("td", { className: "muted", title: new Date(r.stateSince).toLocaleString(), text: ago(r.stateSince) })));
    });
    var history = clear(byId("detail-history"));
    d.history.forEach(function (h) {
      history.appendChild(el("li", { color: h.toState === "removed" ? "muted" : h.toState },
        time(h.at),
        el("span", {},
          el("span", { className: "path", text: h.path }), document.createTextNode(" "),
          el("span", { className: "muted", text: (h.fromState || "new") + " → " }), badge(h.toState === "removed" ? "removed" : h.toState),
          el("span", { className: "cause", text: " · " + h.cause }))));
    });
    if (!d.history.length) history.appendChild(el("li", { className: "muted", text: "No transitions recorded." }));
  }
  function flattenTags(value, prefix) {
    if (value && typeof value === "object" && !Array.isArray(value)) {
      return Object.keys(value).reduce(function (all, k) { return all.concat(flattenTags(value[k], prefix ? prefix + "." + k : k)); }, []);
    }
    return [prefix + "=" + (typeof value === "string" ? value : JSON.stringify(value))];
  }

  // --- Pipeline figures: GET metrics (Prometheus text, this host only) --------------------------
  // In Azure the metrics go to Application Insights and the endpoint answers 404: the bar stays hidden.
  var lastScrape = null;
  function parseMetrics(text) {
    var samples = [];
    text.split("\n").forEach(function (line) {
      var m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
      if (!m || line.charAt(0) === "#") return;
      var labels = {};
      (m[2] || "").replace(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g, function (_, k, v) { labels[k] = v; return ""; });
      samples.push({ name: m[1], labels: labels, value: Number(m[3]) });
    });
    return samples;
  }
  function sum(samples, name, label, value) {
    return samples.reduce(function (n, s) { return s.name === name && (!label || s.labels[label] === value) ? n + s.value : n; }, 0);
  }
  /** Cumulative bucket counts by upper bound, summed over partitions. */
  function buckets(samples, name) {
    var byLe = {};
    samples.forEach(function (s) { if (s.name === name) byLe[s.labels.le] = (byLe[s.labels.le] || 0) + s.value; });
    return byLe;
  }
  /** The q-quantile of the observations between two scrapes, interpolated within its bucket (Prometheus' histogram_quantile). */
  function quantile(now, before, q) {
    var les = Object.keys(now).filter(function (le) { return le !== "+Inf"; }).map(Number).sort(function (a, b) { return a - b; });
    var count = function (le) { return (now[le] || 0) - ((before && before[le]) || 0); };
    var total = count("+Inf");
    if (total <= 0) return null;
    var rank = q * total, lower = 0, below = 0;
    for (var i = 0; i < les.length; i++) {
      var c = count(String(les[i]));
      if (c >= rank) return lower + (les[i] - lower) * (c - below > 0 ? (rank - below) / (c - below) : 1);
      lower = les[i]; below = c;
    }
    return lower;
  }
  function fmtSeconds(s) { return s === null ? "–" : s < 1 ? Math.round(s * 1000) + " ms" : s < 60 ? s.toFixed(1) + " s" : fmtDuration(s); }
  function loadMetrics() {
    return fetch(url("metrics"), { headers: { accept: "text/plain" } }).then(function (res) {
      if (!res.ok) { byId("pipeline").hidden = true; return; }
      return res.text().then(function (text) {
        var samples = parseMetrics(text);
        var scrape = { at: Date.now(), events: sum(samples, "twin_reconciler_events_total"), age: buckets(samples, "twin_reconciler_event_age_bucket") };
        var prev = lastScrape;
        lastScrape = scrape;
        byId("pipeline").hidden = false;
        var q = function (name) { return document.querySelector('[data-testid="' + name + '"]'); };
        q("metrics-rate").textContent = prev ? ((scrape.events - prev.events) / Math.max(0.001, (scrape.at - prev.at) / 1000)).toFixed(1) : "–";
        var outcomes = ["applied", "duplicate", "ignored", "dead_lettered"].map(function (o) { return fmt(sum(samples, "twin_reconciler_events_total", "outcome", o)) + " " + o.replace("_", "-"); });
        q("metrics-events").textContent = fmt(scrape.events) + " since start: " + outcomes.join(", ");
        var p50 = prev ? quantile(scrape.age, prev.age, 0.5) : null, p95 = prev ? quantile(scrape.age, prev.age, 0.95) : null;
        q("metrics-age").textContent = p50 === null ? (prev ? "idle" : "–") : fmtSeconds(p50) + " · " + fmtSeconds(p95);
        q("metrics-dead-letters").textContent = fmt(sum(samples, "twin_reconciler_dead_letters"));
        var repush = [["pushed", "pushed"], ["resolved", "resolved"], ["precondition_failed", "412"], ["throttled", "429"], ["not_found", "404"], ["escalated", "escalated"], ["failed", "failed"]];
        q("metrics-repush").textContent = repush.map(function (r) { return fmt(sum(samples, "twin_reconciler_repushes_total", "outcome", r[0])) + " " + r[1]; }).join(" · ");
      });
    }, function () { byId("pipeline").hidden = true; });
  }

  // --- Refresh loop --------------------------------------------------------------------------
  function refresh() {
    if (model.inFlight || document.hidden) return Promise.resolve();
    model.inFlight = true;
    var work = [getJson("compliance/summary", filterParams()).then(renderSummary)];
    if (!model.paged) work.push(loadDevices());
    work.push(loadDetail());
    loadMetrics().catch(function () { byId("pipeline").hidden = true; });
    ui.csv.href = url("compliance/devices.csv", filterParams());
    return Promise.all(work).then(function () {
      ui.banner.hidden = true;
      ui.live.classList.remove("error");
      ui.liveText.textContent = "Live · " + new Date().toLocaleTimeString();
    }, function (err) {
      ui.banner.hidden = false;
      ui.banner.textContent = "Could not refresh: " + err.message;
      ui.live.classList.add("error");
      ui.liveText.textContent = "Retrying…";
    }).then(function () { model.inFlight = false; });
  }
  function onFiltersChanged() {
    model.paged = false;
    Array.prototype.forEach.call(document.querySelectorAll(".legend li"), function (li) { li.classList.toggle("active", li.getAttribute("data-state") === ui.state.value); });
    refresh();
  }

  STATES.forEach(function (st) { ui.state.appendChild(el("option", { value: st, text: st })); });
  byId("resync-toggle").addEventListener("click", function () {
    model.resyncOnly = !model.resyncOnly;
    byId("resync-toggle").classList.toggle("active", model.resyncOnly);
    loadDevices().catch(function () {});
  });
  ui.state.addEventListener("change", onFiltersChanged);
  ui.property.addEventListener("change", onFiltersChanged);
  var typing;
  ui.tags.addEventListener("input", function () { clearTimeout(typing); typing = setTimeout(onFiltersChanged, 400); });
  ui.search.addEventListener("input", function () { clearTimeout(typing); typing = setTimeout(function () { loadDevices().catch(function () {}); }, 250); });
  byId("filters").addEventListener("submit", function (e) { e.preventDefault(); onFiltersChanged(); });
  byId("filter-clear").addEventListener("click", function () { ui.state.value = ""; ui.property.value = ""; ui.tags.value = ""; onFiltersChanged(); });
  ui.more.addEventListener("click", function () {
    getJson("compliance/devices", deviceParams(model.nextCursor)).then(function (page) { model.paged = true; renderDevices(page, true); });
  });
  byId("detail-close").addEventListener("click", function (e) { e.preventDefault(); history.replaceState(null, "", location.pathname + location.search); onHash(); });
  byId("repush").addEventListener("click", function () {
    var sel = model.selected;
    if (!sel) return;
    var params = new URLSearchParams();
    if (sel.moduleId) params.set("moduleId", sel.moduleId);
    var button = byId("repush");
    button.disabled = true;
    getJson("compliance/devices/" + encodeURIComponent(sel.deviceId) + "/repush", params, { method: "POST" })
      .then(function (r) { button.textContent = "Queued " + r.paths.length; }, function (err) { button.textContent = err.status === 409 ? "Nothing to re-push" : "Not allowed"; button.title = err.message; })
      .then(function () { setTimeout(function () { button.disabled = false; button.textContent = "Re-push now"; }, 3000); });
  });
  byId("openapi").href = url("openapi.json");
  function onHash() { model.selected = selectedFromHash(); loadDetail().catch(function () {}); }
  window.addEventListener("hashchange", onHash);
  document.addEventListener("visibilitychange", function () { if (!document.hidden) refresh(); });
  model.selected = selectedFromHash();
  refresh();
  setInterval(refresh, REFRESH_MS);
})();
