// The station screen: the work at hand, asked for every second (no libraries).
"use strict";

(function () {
  const data = JSON.parse(document.getElementById("station-data").textContent);
  const T = data.i18n;
  const station = document.body.dataset.station;
  const kind = document.body.dataset.kind;
  const byId = (id) => document.getElementById(id);
  const fill = (text, params) =>
    String(text).replace(/%\((\w+)\)s/g, (m, k) => (k in params ? String(params[k]) : m));
  const el = (tag, attrs, ...children) => {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    for (const child of children) node.append(child);
    return node;
  };

  function banner(text, tone) {
    const node = byId("banner");
    node.textContent = text;
    node.className = "banner " + tone;
  }

  function lines(view) {
    const body = byId("lines");
    const rows = view.lines.map((ln) => {
      let cls = "";
      let count = String(ln.expected);
      if (kind === "qc") {
        cls = ln.scanned === ln.expected ? "done" : ln.scanned > ln.expected ? "over" : "short";
        count = ln.scanned + " / " + ln.expected;
      }
      return el(
        "tr",
        { class: cls, "data-sku": ln.sku },
        el("td", {}, ln.name, el("br"), el("small", {}, ln.sku)),
        el("td", {}, ln.barcode || "–"),
        el("td", { class: "n" }, count),
      );
    });
    for (const [sku, n] of Object.entries(view.extra || {})) {
      rows.push(el("tr", { class: "over", "data-sku": sku },
        el("td", { colspan: "3" }, fill(T.extra, { n: n, sku: sku }))));
    }
    body.replaceChildren(...rows);
  }

  function renderQc(view) {
    const verdict = byId("verdict");
    if (!view.order_id) {
      banner(T.waiting_qc, "idle");
      verdict.hidden = true;
      return;
    }
    if (view.result === "passed") banner(T.passed, "ok");
    else if (view.result === "failed") {
      banner(fill(T.failed, { reason: view.reason || "" }) + " " + T.failed_todo, "bad");
    } else banner(fill(T.counting, { scanned: view.scanned, expected: view.expected }), "work");
    verdict.hidden = Boolean(view.result);
    const form = byId("verdict-form");
    form.action = "/station/" + encodeURIComponent(station) + "/qc/" + encodeURIComponent(view.order_id);
  }

  function renderPack(view) {
    if (!view.order_id) {
      banner(T.waiting_pack, "idle");
      return;
    }
    byId("carton").textContent = view.carton || "–";
    byId("expected").textContent = view.expected_g + " g ± " + view.tolerance_g + " g";
    const measured = byId("measured");
    if (view.measured_g === null) {
      measured.textContent = T.no_weight;
      measured.className = "";
    } else {
      const sign = view.difference_g > 0 ? "+" : "";
      measured.textContent = view.measured_g + " g (" + sign + view.difference_g + " g)";
      measured.className = view.weight_ok ? "ok" : "bad";
    }
    byId("label").textContent = view.sscc ? view.sscc + (view.printer ? " · " + view.printer : "") : "–";
    const say = {
      weighing: [T.weighing, "work"],
      labelling: [fill(T.labelling, { printer: view.printer || "" }), "work"],
      awaiting_scan: [T.awaiting_scan, "work"],
      packed: [T.packed, "ok"],
      rejected: [fill(T.rejected, { diff: view.difference_g }), "bad"],
    }[view.state] || ["", "work"];
    banner(say[0], say[1]);
  }

  function render(view) {
    const order = byId("order");
    order.hidden = !view.order_id;
    if (view.order_id) {
      byId("order-id").textContent = view.order_id;
      byId("tote").textContent = view.tote || "–";
      lines(view);
    }
    const scale = byId("scale");
    if (scale) scale.hidden = !view.order_id;
    if (kind === "qc") renderQc(view);
    else renderPack(view);
    document.body.dataset.order = view.order_id || "";
  }

  async function poll() {
    try {
      const response = await fetch("/station/" + encodeURIComponent(station) + "/state", {
        credentials: "same-origin",
        headers: { Accept: "application/json" },
      });
      if (response.ok) render(await response.json());
    } catch (err) {
      /* the network blinked: the next poll tries again */
    }
    setTimeout(poll, 1000);
  }

  render(data.view);
  setTimeout(poll, 1000);
})();
