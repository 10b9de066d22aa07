// Live updates for /status: one EventSource, no libraries, no reloads.
// The server sends "summary" on connect and periodically (authoritative counts,
// alerts, devices), "order"/"device"/"alert" as they happen and "kpis" now and then.
"use strict";

(function () {
  const initial = JSON.parse(document.getElementById("board-data").textContent);
  // Texts the script writes, in the page's language (the server picked it).
  const T = Object.assign(
    { live: "live", reconnecting: "reconnecting…", no_alerts: "No open alerts.", new: "new",
      utc: "UTC", orders_in_state: "{state}: {n} orders", state: {}, device: {}, device_kind: {},
      severity: {}, alert_title: {} },
    initial.i18n || {},
  );
  const term = (group, value) => (value && T[group][value]) || value;
  const counts = Object.assign({}, initial.counts);
  const lastSeq = new Map(); // order id -> last seq applied: QoS 1 may repeat a message
  const MAX_ROWS = 20;

  const byId = (id) => document.getElementById(id);
  const hhmm = (iso) => {
    const d = new Date(iso);
    return isNaN(d) ? "" : d.toISOString().slice(11, 16);
  };
  const el = (tag, attrs, ...children) => {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    for (const child of children) node.append(child);
    return node;
  };

  function setBadge(state, n) {
    const badge = byId("count-" + state);
    const node = byId("state-" + state);
    const cell = byId("n-" + state);
    if (cell) cell.textContent = String(n);
    if (!badge || !node) return;
    const text = badge.querySelector("text");
    const rect = badge.querySelector("rect");
    const label = n ? String(n) : "";
    text.textContent = label;
    // Same geometry as the server-side badge: right edge fixed, width grows with digits.
    const right = parseFloat(text.getAttribute("x")) + 4;
    const width = Math.max(18, 7 * label.length + 10);
    rect.setAttribute("width", String(width));
    rect.setAttribute("x", String(right - width / 2 - 4));
    badge.classList.toggle("wcs-empty", !n);
    node.classList.toggle("wcs-active", n > 0);
    const title = node.querySelector("title");
    if (title) {
      title.textContent = T.orders_in_state
        .replace("{state}", term("state", state))
        .replace("{n}", String(n));
    }
  }

  function renderCounts() {
    let active = 0;
    for (const [state, n] of Object.entries(counts)) {
      setBadge(state, n);
      if (state !== "closed" && state !== "cancelled") active += n;
    }
    byId("active-orders").textContent = String(active);
  }

  function flash(state) {
    const node = byId("state-" + state);
    if (!node) return;
    node.classList.add("flash");
    setTimeout(() => node.classList.remove("flash"), 1500);
  }

  function addEvent(e) {
    const list = byId("events");
    const item = el(
      "li",
      { "data-order": e.order_id, class: "new" },
      el("time", { datetime: e.at }, hhmm(e.at)),
      " ",
      el("code", {}, e.order_id),
      " " + (e.from ? term("state", e.from) : T.new) + " → ",
      el("strong", {}, term("state", e.to)),
    );
    list.prepend(item);
    while (list.children.length > MAX_ROWS) list.lastElementChild.remove();
  }

  function onOrder(e) {
    const seen = lastSeq.get(e.order_id) || 0;
    if (e.seq <= seen) return;
    lastSeq.set(e.order_id, e.seq);
    if (e.from && counts[e.from] > 0) counts[e.from] -= 1;
    counts[e.to] = (counts[e.to] || 0) + 1;
    renderCounts();
    flash(e.to);
    addEvent(e);
  }

  function renderAlerts(alerts, alertCounts) {
    const list = byId("alerts");
    list.replaceChildren();
    for (const a of alerts) list.append(alertItem(a));
    if (!alerts.length) list.append(el("li", { class: "none" }, T.no_alerts));
    if (alertCounts) {
      setTile("alerts-critical", alertCounts.critical || 0);
      setTile("alerts-warning", alertCounts.warning || 0);
    }
  }

  function setTile(id, n) {
    const tile = byId(id);
    tile.textContent = String(n);
    tile.classList.toggle("hot", n > 0);
  }

  function alertItem(a) {
    return el(
      "li",
      { class: "sev-" + a.severity, "data-code": a.code },
      el("span", { class: "sev" }, term("severity", a.severity)),
      " ",
      el("strong", {}, T.alert_title[a.code] || a.title),
      " ",
      el("span", { class: "subject" }, a.subject || ""),
      " ",
      el("time", { datetime: a.at }, hhmm(a.at)),
    );
  }

  function onAlert(a) {
    const list = byId("alerts");
    const none = list.querySelector("li.none");
    if (none) none.remove();
    list.prepend(alertItem(a));
    while (list.children.length > MAX_ROWS) list.lastElementChild.remove();
    const tile = byId("alerts-" + a.severity);
    if (tile) setTile(tile.id, parseInt(tile.textContent || "0", 10) + 1);
  }

  function deviceRow(d) {
    const detail = d.detail ? " · " + d.detail : "";
    const since = d.updated_at || d.at;
    return el(
      "tr",
      { id: "dev-" + d.id, class: "state-" + d.state },
      el("td", {}, d.id),
      el("td", {}, term("device_kind", d.kind)),
      el("td", {}, d.zone),
      el("td", { class: "st", title: d.detail || "" }, term("device", d.state) + detail),
      el("td", {}, el("time", { datetime: since }, hhmm(since))),
    );
  }

  function renderDevices(devices) {
    const body = byId("devices");
    body.replaceChildren(...devices.map(deviceRow));
    updateDeviceTile();
  }

  function onDevice(d) {
    const row = deviceRow(d);
    const old = byId("dev-" + d.id);
    if (old) old.replaceWith(row);
    else byId("devices").append(row);
    const none = byId("no-devices");
    if (none) none.remove();
    updateDeviceTile();
  }

  function updateDeviceTile() {
    const rows = byId("devices").querySelectorAll("tr");
    const online = byId("devices").querySelectorAll("tr.state-online").length;
    byId("devices-online").textContent = online + "/" + rows.length;
  }

  function fmt(value, kind) {
    if (value === null || value === undefined) return "–";
    if (kind === "pct") return (value * 100).toFixed(1) + " %";
    if (kind === "rating") return value.toFixed(2) + " / 5";
    if (kind === "dur") {
      const s = Math.max(0, Math.floor(value));
      const d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600);
      const m = Math.floor((s % 3600) / 60);
      if (d) return h ? d + " d " + h + " h" : d + " d";
      if (h) return m ? h + " h " + m + " min" : h + " h";
      if (m) return m + " min";
      return s + " s";
    }
    return String(value);
  }

  function onKpis(report) {
    for (const node of document.querySelectorAll("[data-kpi]")) {
      let value = report;
      for (const key of node.dataset.kpi.split(".")) value = value == null ? null : value[key];
      node.textContent = fmt(value, node.dataset.fmt);
    }
  }

  function onSummary(s) {
    for (const state of Object.keys(counts)) counts[state] = 0;
    Object.assign(counts, s.counts);
    renderCounts();
    renderAlerts(s.alerts, s.alert_counts);
    renderDevices(s.devices);
    const stamp = byId("updated");
    stamp.textContent = hhmm(s.generated_at) + " " + T.utc;
    stamp.dataset.ts = s.generated_at;
  }

  const handlers = { order: onOrder, device: onDevice, alert: onAlert, summary: onSummary, kpis: onKpis };

  function connect() {
    const source = new EventSource("/api/v1/events/stream");
    const liveText = byId("live-text");
    source.onopen = () => {
      document.body.dataset.live = "connected";
      liveText.textContent = T.live;
    };
    source.onerror = () => {
      // EventSource retries by itself; say so instead of showing stale numbers as live.
      document.body.dataset.live = "reconnecting";
      liveText.textContent = T.reconnecting;
    };
    for (const [name, handle] of Object.entries(handlers)) {
      source.addEventListener(name, (msg) => {
        try {
          handle(JSON.parse(msg.data));
        } catch (err) {
          console.error("status page: bad " + name + " event", err);
        }
      });
    }
  }

  renderCounts();
  connect();
})();
