// Live updates for /status: one EventSource, no libraries, no reloads.
// The server sends "summary" on connect and periodically (counts, alerts, devices,
// orders at risk, zones, stations, the floor map's lights and totes), "order",
// "device", "alert" and "controller" as they happen, and "kpis" now and then.
// Supervisors act on alerts with the buttons; every action answers with the alert
// and a fresh summary follows for every open page.
"use strict";

(function () {
  const initial = JSON.parse(document.getElementById("board-data").textContent);
  const T = Object.assign(
    { live: "live", reconnecting: "reconnecting…", no_alerts: "No open alerts.", new: "new",
      utc: "UTC", orders_in_state: "{state}: {n} orders", state: {}, device: {}, severity: {},
      device_kind: {}, alert_title: {}, sup: {}, stage: {}, dur: {}, zone: {}, station_state: {},
      station_kind: {} },
    initial.i18n || {},
  );
  const canAct = document.body.dataset.canAct === "yes" && initial.csrf;
  const term = (group, value) => (value && T[group][value]) || value;
  // The server's texts carry gettext's %(name)s placeholders.
  const fill = (text, params) =>
    String(text).replace(/%\((\w+)\)s/g, (m, k) => (k in params ? String(params[k]) : m));
  const sup = (key, params) => fill(T.sup[key] || key, params || {});
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
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v !== null && v !== undefined && v !== false) node.setAttribute(k, v);
    }
    for (const child of children) if (child !== null && child !== undefined) node.append(child);
    return node;
  };
  function duration(seconds) {
    const s = Math.max(0, Math.floor(seconds));
    if (s < 60) return fill(T.dur.s || "%(n)s s", { n: s });
    if (s < 3600) return fill(T.dur.min || "%(n)s min", { n: Math.floor(s / 60) });
    if (s < 86400) {
      return fill(T.dur.h || "%(h)s h %(m)s min", { h: Math.floor(s / 3600), m: Math.floor((s % 3600) / 60) });
    }
    return fill(T.dur.d || "%(d)s d %(h)s h", { d: Math.floor(s / 86400), h: Math.floor((s % 86400) / 3600) });
  }

  // -- tabs: one section at a time, chosen by the address's #hash ----------------------
  const TABS = ["overview", "flow", "map", "more"];
  function showTab() {
    const wanted = location.hash.replace("#", "");
    const tab = TABS.includes(wanted) ? wanted : "overview";
    document.body.dataset.tab = tab;
    for (const link of document.querySelectorAll(".tabs a")) {
      if (link.dataset.tab === tab) link.setAttribute("aria-current", "page");
      else link.removeAttribute("aria-current");
    }
  }
  window.addEventListener("hashchange", showTab);
  document.body.classList.add("js");
  showTab();

  // -- the flow diagram's badges ---------------------------------------------------------
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
      el("a", { href: "/status/orders/" + encodeURIComponent(e.order_id) }, el("code", {}, e.order_id)),
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

  // -- tiles -----------------------------------------------------------------------------
  function setTile(id, n) {
    const tile = byId(id);
    if (!tile) return;
    tile.textContent = String(n);
    tile.classList.toggle("hot", n > 0);
  }

  // -- alerts ------------------------------------------------------------------------------
  function alertItem(a) {
    const subject = a.subject_link
      ? el("a", { class: "subject", href: a.subject_link }, a.subject)
      : el("span", { class: "subject" }, a.subject || "");
    const hand = a.assigned_to
      ? el("span", { class: "hand" }, sup("assigned_to", { name: a.assigned_to }))
      : a.acked_by
        ? el("span", { class: "hand" }, sup("acked_by", { name: a.acked_by }))
        : null;
    let acts = null;
    if (canAct) {
      acts = el("span", { class: "acts" });
      if (!a.acked_by) acts.append(el("button", { type: "button", "data-act": "ack" }, sup("ack")));
      acts.append(el("button", { type: "button", "data-act": "assign" }, sup("assign")));
      acts.append(el("button", { type: "button", "data-act": "resolve" }, sup("resolve")));
    }
    return el(
      "li",
      {
        class: "alert sev-" + a.severity + (a.acked_by ? " in-hand" : ""),
        "data-id": String(a.id),
        "data-code": a.code,
      },
      el("span", { class: "sev" }, term("severity", a.severity)),
      " ",
      el(
        "span",
        { class: "what" },
        el("strong", {}, T.alert_title[a.code] || a.title),
        " ",
        subject,
        " ",
        el("time", { datetime: a.at }, hhmm(a.at)),
        hand ? " " : null,
        hand,
      ),
      acts,
    );
  }

  function renderAlerts(alerts, alertCounts) {
    const list = byId("alerts");
    if (list.querySelector("form.assign")) return; // someone is typing a name: keep it
    list.replaceChildren(...alerts.map(alertItem));
    if (!alerts.length) list.append(el("li", { class: "none" }, sup("no_alerts")));
    if (alertCounts) {
      setTile("alerts-critical", alertCounts.critical || 0);
      setTile("alerts-warning", alertCounts.warning || 0);
    }
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

  async function act(item, action, body) {
    const error = byId("action-error");
    error.hidden = true;
    const response = await fetch("/status/alerts/" + item.dataset.id + "/" + action, {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-WCS-Action": initial.csrf, "Content-Type": "application/json" },
      body: body ? JSON.stringify(body) : "{}",
    });
    if (!response.ok) {
      let reason = String(response.status);
      try {
        reason = (await response.json()).detail || reason;
      } catch (err) {
        /* not JSON: the status says enough */
      }
      error.textContent = sup("action_failed", { reason: reason });
      error.hidden = false;
      return;
    }
    const alert = await response.json();
    if (action === "resolve") item.remove();
    else item.replaceWith(alertItem(Object.assign({ at: alert.created_at }, alert)));
  }

  function assignForm(item) {
    if (item.querySelector("form.assign")) return;
    const input = el("input", {
      type: "text", name: "assignee", maxlength: "64", required: "required",
      placeholder: sup("assign_placeholder"), "aria-label": sup("assign_to"),
    });
    const form = el("form", { class: "assign" }, input, el("button", { type: "submit" }, sup("assign")));
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      const name = input.value.trim();
      if (name) act(item, "assign", { assignee: name });
      form.remove();
    });
    item.append(form);
    input.focus();
  }

  byId("alerts").addEventListener("click", (ev) => {
    const button = ev.target.closest("button[data-act]");
    if (!button || !canAct) return;
    const item = button.closest("li[data-id]");
    if (button.dataset.act === "assign") assignForm(item);
    else act(item, button.dataset.act);
  });

  // -- orders at risk ---------------------------------------------------------------------
  function riskRow(o) {
    const left = o.late ? sup("late_by", { time: duration(-o.left_s) }) : duration(o.left_s);
    return el(
      "tr",
      { class: o.late ? "late" : "soon", "data-order": o.order_id },
      el("td", {}, el("a", { href: "/status/orders/" + encodeURIComponent(o.order_id) }, o.order_id)),
      el("td", {}, term("stage", o.stage) + " · " + term("state", o.state)),
      el("td", {}, el("time", { datetime: o.deadline }, hhmm(o.deadline)), " ",
        el("small", {}, o.deadline_kind === "ship_by" ? sup("ship_by") : sup("deliver_by"))),
      el("td", { class: "left" }, left),
    );
  }

  function renderRisk(risk) {
    byId("risk").replaceChildren(...risk.orders.map(riskRow));
    byId("no-risk").hidden = risk.orders.length > 0;
    setTile("late-n", risk.late);
    setTile("risk-n", risk.at_risk);
  }

  // -- devices -----------------------------------------------------------------------------
  const devices = new Map();

  function downItem(d) {
    return el(
      "li",
      { class: "state-" + d.state, "data-device": d.id },
      el("a", { href: "/status/devices/" + encodeURIComponent(d.id) }, d.id),
      " ",
      el("span", { class: "st" }, term("device", d.state)),
      " ",
      el("small", {}, term("device_kind", d.kind) + " · " + d.zone + " · " + sup("down_for", { time: duration(d.down_s) })),
      d.detail ? el("br") : null,
      d.detail ? el("small", { class: "detail" }, d.detail) : null,
    );
  }

  function renderDown() {
    const now = Date.now();
    const down = [...devices.values()]
      .filter((d) => d.state !== "online")
      .map((d) => Object.assign({}, d, { down_s: (now - new Date(d.updated_at || d.at)) / 1000 }))
      .sort((a, b) => b.down_s - a.down_s);
    const list = byId("down");
    list.replaceChildren(...down.map(downItem));
    if (!down.length) list.append(el("li", { class: "none" }, sup("no_down")));
    setTile("devices-down-n", down.length);
    const online = [...devices.values()].filter((d) => d.state === "online").length;
    byId("devices-online").textContent = online + "/" + devices.size;
    for (const d of devices.values()) {
      const mark = byId("map-dev-" + d.id);
      if (mark) mark.setAttribute("class", "dev state-" + d.state);
    }
  }

  function onDevice(d) {
    devices.set(d.id, Object.assign({}, devices.get(d.id) || {}, d, { updated_at: d.at }));
    renderDown();
  }

  // -- stations, zones, controllers ----------------------------------------------------------
  function renderStations(stations) {
    const body = byId("stations");
    if (!body) return;
    body.replaceChildren(
      ...stations.map((s) => {
        const hand = el("td", {});
        if (s.order_id) {
          hand.append(el("a", { href: "/status/orders/" + encodeURIComponent(s.order_id) }, s.order_id));
        } else if (s.batches) {
          hand.append(sup("batches", { n: s.batches }));
        }
        for (const d of s.devices_down) {
          hand.append(" ", el("a", { class: "dev", href: "/status/devices/" + encodeURIComponent(d.id) }, d.id));
        }
        return el(
          "tr",
          { class: "station-" + s.state, "data-station": s.id },
          el("th", { scope: "row" }, s.id + " ", el("small", {}, term("station_kind", s.kind))),
          el("td", { class: "st" }, term("station_state", s.state)),
          hand,
        );
      }),
    );
    for (const s of stations) {
      const box = byId("map-station-" + s.id);
      if (box) box.setAttribute("class", "station " + s.state);
      const label = box && box.querySelector(".at-hand");
      if (label) label.textContent = s.order_id || "";
    }
  }

  function renderZones(zones) {
    const first = zones.zones[0];
    byId("zones-note").textContent = sup(zones.plan_source === "forecast" ? "zones_forecast" : "zones_intake", {
      plan: first ? first.plan : 0,
    });
    for (const z of zones.zones) {
      const row = document.querySelector('.zone[data-zone="' + z.zone + '"]');
      if (!row) continue;
      const bar = row.querySelector(".fill");
      bar.style.width = Math.min(z.ratio || 0, 1) * 100 + "%";
      bar.classList.toggle("behind", z.ratio !== null && z.ratio < 0.8);
      row.querySelector(".num").textContent = z.done + " / " + Math.round(z.plan);
    }
  }

  function onController(c) {
    const holder = byId("controllers");
    let mark = holder.querySelector('[data-instance="' + c.instance + '"]');
    const unknown = holder.querySelector(".ctl-unknown");
    if (unknown) unknown.remove();
    if (!mark) {
      mark = el("span", { "data-instance": c.instance });
      holder.append(mark);
    }
    mark.className = "ctl ctl-" + c.state;
    mark.textContent = c.instance + " " + sup(c.state);
  }

  // -- the floor map ------------------------------------------------------------------------
  function renderFloor(floor) {
    if (!byId("floor-map") || !floor) return;
    for (const slot of document.querySelectorAll("#floor-map .slot.lit")) {
      slot.classList.remove("lit");
      slot.querySelector(".qty").textContent = "";
    }
    for (const lit of floor.lit) {
      const slot = byId("map-slot-" + lit.panel + "-" + lit.slot);
      if (!slot) continue;
      slot.classList.add("lit");
      slot.querySelector(".qty").textContent = String(lit.qty);
    }
    for (const mark of document.querySelectorAll("#floor-map .totes")) {
      const place = mark.id.replace("map-totes-", "");
      const codes = floor.totes[place] || [];
      mark.classList.toggle("empty", codes.length === 0);
      mark.querySelector("text").textContent = String(codes.length);
      mark.querySelector("title").textContent = codes.join(", ");
    }
  }

  // -- KPIs -----------------------------------------------------------------------------------
  function fmt(value, kind) {
    if (value === null || value === undefined) return "–";
    if (kind === "pct") return (value * 100).toFixed(1) + " %";
    if (kind === "rating") return value.toFixed(2) + " / 5";
    if (kind === "signed") return value > 0 ? "+" + value : String(value);
    if (kind === "money") {
      if (!value.length) return "–";
      return value
        .map((v) => (v.net_minor >= 0 ? "+" : "") + (v.net_minor / 100).toFixed(2) + " " + v.currency)
        .join(", ");
    }
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
    devices.clear();
    for (const d of s.devices) devices.set(d.id, d);
    renderDown();
    if (s.risk) renderRisk(s.risk);
    if (s.stations) renderStations(s.stations);
    if (s.zones) renderZones(s.zones);
    renderFloor(s.floor);
    for (const c of s.controllers || []) onController(c);
    const stamp = byId("updated");
    stamp.textContent = hhmm(s.generated_at) + " " + T.utc;
    stamp.dataset.ts = s.generated_at;
  }

  const handlers = {
    order: onOrder, device: onDevice, alert: onAlert, summary: onSummary, kpis: onKpis,
    controller: onController,
  };

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

  for (const d of initial.devices || []) devices.set(d.id, d);
  renderCounts();
  if (initial.floor) renderFloor(initial.floor);
  connect();
})();
