// The back office's order, threshold, low-stock, orders, reservations and report sections
// (GET /admin). Loaded before admin.js, which calls window.gqlAdminSections(api) with its
// helpers: {$, gql, state, cell, errorCode, isValidationError, clearErrors, showUserErrors,
// intOrNull, markLow}. Sections whose API field the server lacks say "Not available".
window.gqlAdminSections = function (api) {
  "use strict";
  var $ = api.$, gql = api.gql, state = api.state, cell = api.cell, errorCode = api.errorCode;
  var isValidationError = api.isValidationError, clearErrors = api.clearErrors;
  var showUserErrors = api.showUserErrors, intOrNull = api.intOrNull, markLow = api.markLow;

  // ---------- order actions ----------
  var CANCEL = "mutation($input: CancelOrderInput!) { cancelOrder(input: $input) { " +
    "order { id status } userErrors { code message field } } }";
  var REFUND = "mutation($input: RefundOrderInput!) { refundOrder(input: $input) { " +
    "order { id status } userErrors { code message field } } }";

  function submitOrder(event) {
    event.preventDefault();
    var form = event.target;
    clearErrors(form);
    $("#order-result").textContent = "";
    var refund = event.submitter && event.submitter.value === "refund";
    var input = { orderId: $("#order-id").value.trim(), reason: $("#order-reason").value || null };
    if (refund) input.restock = $("#order-restock").checked;
    gql(refund ? REFUND : CANCEL, { input: input }).then(function (body) {
      if (body.errors) { showUserErrors(form, body.errors.map(function (e) { return { code: errorCode(e) || "ERROR", message: e.message }; })); return; }
      var payload = body.data[refund ? "refundOrder" : "cancelOrder"];
      if (payload.userErrors.length) { showUserErrors(form, payload.userErrors); return; }
      $("#order-result").textContent = "Order " + payload.order.id + " is now " + payload.order.status + ".";
      loadFeatures();
    });
  }

  // ---------- low-stock threshold (setLowStockThreshold: feature-detected) ----------
  var THRESHOLD = "mutation($input: SetLowStockThresholdInput!) { setLowStockThreshold(input: $input) { " +
    "variant { sku lowStockThreshold } userErrors { code message field } } }";
  function submitThreshold(event) {
    event.preventDefault();
    var form = event.target;
    clearErrors(form);
    var input = { sku: $("#threshold-sku").value.trim(), threshold: intOrNull($("#threshold-value").value) };
    gql(THRESHOLD, { input: input }).then(function (body) {
      if (isValidationError(body)) {
        form.querySelector('[data-error-for=""]').textContent = "Not available on this server.";
        return;
      }
      if (body.errors) { showUserErrors(form, body.errors.map(function (e) { return { code: errorCode(e) || "ERROR", message: e.message }; })); return; }
      var payload = body.data.setLowStockThreshold;
      if (payload.userErrors.length) { showUserErrors(form, payload.userErrors); return; }
      var v = state.variants.get(payload.variant.sku);
      if (v) { v.threshold = payload.variant.lowStockThreshold; markLow(payload.variant.sku); }
      $("#threshold-result").textContent = payload.variant.sku + ": threshold now " + payload.variant.lowStockThreshold + ".";
      loadFeatures();
    });
  }

  // ---------- feature-detected sections ----------
  function featureSection(id, query, variables, render, fallback) {
    var section = $(id);
    return gql(query, variables).then(function (body) {
      if ((body.errors || []).some(function (e) { return errorCode(e) === "NETWORK"; })) return;
      if ((isValidationError(body) || (body.errors && !body.data)) && fallback) {
        return featureSection(id, fallback.query, fallback.variables, fallback.render);
      }
      if (isValidationError(body) || (body.errors && !body.data)) {
        section.querySelector(".unavailable").hidden = false;
        section.dataset.available = "false";
        return;
      }
      section.dataset.available = "true";
      var tbody = section.querySelector(".feature-table tbody");
      tbody.textContent = "";
      render(body.data).forEach(function (cols) {
        var tr = document.createElement("tr");
        cols.forEach(function (c) { cell(tr, "", c); });
        tbody.appendChild(tr);
      });
    });
  }
  function money(m) { return m ? m.amount + " " + m.currencyCode : ""; }
  function loadFeatures() {
    featureSection("#low-stock-section",
      "{ lowStockVariants(first: 20) { edges { node { sku available lowStockThreshold product { title } } } } }", {},
      function (d) { return d.lowStockVariants.edges.map(function (e) { var n = e.node; return [n.sku, n.product.title, n.available + " / " + n.lowStockThreshold]; }); },
      // before lowStockVariants exists: the low-stock filter of `products`
      { query: "{ products(first: 100, lowStockOnly: true) { edges { node { title variants { sku available lowStockThreshold isLowStock } } } } }",
        variables: {},
        render: function (d) {
          var rows = [];
          d.products.edges.forEach(function (e) {
            e.node.variants.forEach(function (v) {
              if (v.isLowStock) rows.push([v.sku, e.node.title, v.available + " / " + v.lowStockThreshold]);
            });
          });
          return rows.sort(function (a, b) { return parseInt(a[2], 10) - parseInt(b[2], 10); });
        } });
    featureSection("#orders-section",
      "{ orders(status: [NEEDS_ATTENTION, PENDING_PAYMENT], first: 20) { edges { node { id status createdAt attentionReason total { amount currencyCode } } } } }", {},
      function (d) { return d.orders.edges.map(function (e) { var n = e.node; return [n.id, n.status, n.createdAt, money(n.total), n.attentionReason || ""]; }); });
    loadReservations();
    loadReport(state.reportDays || 1);
  }

  // ---------- reservations: active and expired by default, by status and SKU ----------
  var RESERVATIONS = "query($status: [ReservationStatus!], $sku: String) { reservations(status: $status, " +
    "sku: $sku, first: 50) { edges { node { id status expiresAt lines { quantity variant { sku } } } } } }";
  function loadReservations() {
    var chosen = $("#reservations-status").value;
    var sku = $("#reservations-sku").value.trim();
    var variables = { status: chosen ? chosen.split(",") : null, sku: sku || null };
    return featureSection("#reservations-section", RESERVATIONS, variables, function (d) {
      return d.reservations.edges.map(function (e) {
        var n = e.node;
        var minutes = Math.round((new Date(n.expiresAt).getTime() - Date.now()) / 60000);
        var at = new Date(n.expiresAt).toLocaleString();
        var when = n.status === "EXPIRED" ? "expired at " + at
          : n.status !== "ACTIVE" ? "ended; expiry was " + at
          : minutes < 0 ? "past its expiry (" + (-minutes) + " min): the sweep ends it"
          : (minutes <= 5 ? "expiring soon: " : "") + "in " + minutes + " min";
        return [n.id, n.status, when,
          n.lines.map(function (l) { return l.quantity + "× " + l.variant.sku; }).join(", ")];
      });
    });
  }

  // ---------- report: today / 7 / 30 days, one inventoryReport per day (aliases) ----------
  var REPORT_FIELDS = "reservationsCreated conversionRate expiryRate unitsSold";
  var charts = {};
  function dayStart(d) { return new Date(d.getFullYear(), d.getMonth(), d.getDate()); }
  function loadReport(days) {
    state.reportDays = days;
    document.querySelectorAll("#report-range button").forEach(function (b) {
      b.setAttribute("aria-pressed", String(Number(b.dataset.days) === days));
    });
    var today = dayStart(new Date());
    var spans = [];
    for (var i = days - 1; i >= 0; i--) {
      var from = new Date(today.getTime()); from.setDate(from.getDate() - i);
      var to = new Date(from.getTime()); to.setDate(to.getDate() + 1);
      spans.push({ from: from, to: to });
    }
    var vars = [], fields = [], variables = {};
    spans.forEach(function (s, n) {
      vars.push("$f" + n + ": DateTime!, $t" + n + ": DateTime!");
      fields.push("d" + n + ": inventoryReport(from: $f" + n + ", to: $t" + n + ") { " + REPORT_FIELDS + " }");
      variables["f" + n] = s.from.toISOString();
      variables["t" + n] = s.to.toISOString();
    });
    fields.push("total: inventoryReport(from: $f0, to: $t" + (days - 1) + ") { " + REPORT_FIELDS + " }");
    var query = "query(" + vars.join(", ") + ") { " + fields.join(" ") + " }";
    return featureSection("#report-section", query, variables, function (d) {
      var labels = spans.map(function (s) { return s.from.toISOString().slice(5, 10); });
      var series = function (f) { return spans.map(function (_, n) { return d["d" + n][f]; }); };
      drawChart("chart-conversion", labels, series("conversionRate"), "conversion");
      drawChart("chart-expiry", labels, series("expiryRate"), "expiry");
      drawChart("chart-units", labels, series("unitsSold"), "units sold");
      var t = d.total;
      return [[days === 1 ? "Today" : days + " days", "reservations " + t.reservationsCreated,
        "conversion " + Math.round(t.conversionRate * 100) + "%", "expiry " + Math.round(t.expiryRate * 100) + "%",
        "units sold " + t.unitsSold]];
    });
  }
  function drawChart(id, labels, data, label) {
    if (typeof Chart === "undefined") return;
    if (charts[id]) charts[id].destroy();
    charts[id] = new Chart(document.getElementById(id), {
      type: "bar",
      data: { labels: labels, datasets: [{ label: label, data: data, backgroundColor: "#4a7bd0" }] },
      options: { animation: false, maintainAspectRatio: false, plugins: { legend: { display: false } } },
    });
  }

  return { loadFeatures: loadFeatures, loadReport: loadReport, loadReservations: loadReservations,
    submitOrder: submitOrder, submitThreshold: submitThreshold };
};
