// The gql-inventory back office (GET /admin). Plain browser JavaScript, no build step;
// graphql-ws (vendor/graphql-ws.min.js) speaks graphql-transport-ws for the live feeds.
(function () {
  "use strict";

  var TOKEN_KEY = "gql-inventory.admin-token";
  var HTTP_URL = window.location.origin + "/graphql";
  var WS_URL = HTTP_URL.replace(/^http/, "ws");
  var $ = function (sel) { return document.querySelector(sel); };

  var state = {
    token: null,
    levels: new Map(), // "sku|locationId" -> {row, level}
    variants: new Map(), // sku -> {productTitle, title, threshold}
    locations: [],
    lastCursor: null,
    ws: null,
    retry: 0,
  };

  // ---------- HTTP ----------
  function gql(query, variables) {
    return fetch(HTTP_URL, {
      method: "POST",
      headers: { "Content-Type": "application/json", Authorization: "Bearer " + state.token },
      body: JSON.stringify({ query: query, variables: variables || {} }),
    }).then(function (r) { return r.json(); });
  }
  function errorCode(err) { return (err.extensions && err.extensions.code) || ""; }
  function isValidationError(body) {
    return (body.errors || []).some(function (e) {
      return errorCode(e) === "GRAPHQL_VALIDATION_FAILED" ||
        /Cannot query field|Unknown argument|Unknown type|Cannot return null/.test(e.message);
    });
  }

  // ---------- sign in ----------
  function readToken() {
    var m = /(?:^#|&)token=([^&]+)/.exec(window.location.hash);
    if (m) {
      sessionStorage.setItem(TOKEN_KEY, decodeURIComponent(m[1]));
      history.replaceState(null, "", window.location.pathname + window.location.search);
    }
    return sessionStorage.getItem(TOKEN_KEY);
  }
  function signIn(token) {
    state.token = token;
    $("#sign-in-error").textContent = "";
    return gql("{ stockMovements(first: 1) { edges { cursor } } }").then(function (body) {
      if (body.errors) {
        sessionStorage.removeItem(TOKEN_KEY);
        var forbidden = body.errors.some(function (e) { return errorCode(e) === "FORBIDDEN"; });
        $("#sign-in-error").textContent = forbidden
          ? "Wrong token: the server refused it (FORBIDDEN)."
          : "Sign-in failed: " + body.errors[0].message;
        showSignIn();
        return;
      }
      sessionStorage.setItem(TOKEN_KEY, token);
      $("#sign-in").hidden = true;
      $("#dashboard").hidden = false;
      $("#sign-out").hidden = false;
      start();
    }, function (err) {
      $("#sign-in-error").textContent = "Cannot reach the server: " + err;
      showSignIn();
    });
  }
  function showSignIn() {
    $("#sign-in").hidden = false;
    $("#dashboard").hidden = true;
    $("#sign-out").hidden = true;
  }

  // ---------- stock table ----------
  var CATALOG = "query($after: String) { products(first: 100, after: $after) { " +
    "edges { node { title variants { sku title lowStockThreshold stockLevels { " +
    "onHand reserved available version location { id name } } } } } " +
    "pageInfo { hasNextPage endCursor } } }";

  function loadCatalog() {
    var rows = [];
    function page(after) {
      return gql(CATALOG, { after: after }).then(function (body) {
        if (body.errors) throw new Error(body.errors[0].message);
        var conn = body.data.products;
        conn.edges.forEach(function (edge) {
          edge.node.variants.forEach(function (v) {
            state.variants.set(v.sku, { productTitle: edge.node.title, title: v.title, threshold: v.lowStockThreshold });
            v.stockLevels.forEach(function (level) { rows.push({ sku: v.sku, level: level }); });
          });
        });
        return conn.pageInfo.hasNextPage ? page(conn.pageInfo.endCursor) : rows;
      });
    }
    return page(null);
  }
  function cell(tr, cls, text) {
    var td = document.createElement("td");
    td.className = cls;
    td.textContent = text;
    tr.appendChild(td);
    return td;
  }
  function addRow(sku, level) {
    var v = state.variants.get(sku) || { productTitle: "", title: "", threshold: 0 };
    var tr = document.createElement("tr");
    tr.dataset.sku = sku;
    tr.dataset.location = level.location.id;
    tr.dataset.search = (sku + " " + v.productTitle + " " + v.title).toLowerCase();
    cell(tr, "sku", sku);
    cell(tr, "product", v.productTitle);
    cell(tr, "variant", v.title);
    cell(tr, "location", level.location.name);
    cell(tr, "num on-hand", level.onHand);
    cell(tr, "num reserved", level.reserved);
    cell(tr, "num available", level.available);
    tr.addEventListener("click", function () { pickLevel(sku, level.location.id); });
    $("#stock tbody").appendChild(tr);
    state.levels.set(sku + "|" + level.location.id, { row: tr, level: level });
    markLow(sku);
    applySearch(tr);
  }
  function markLow(sku) {
    var v = state.variants.get(sku);
    var total = 0;
    state.levels.forEach(function (entry, key) {
      if (key.split("|")[0] === sku) total += entry.level.available;
    });
    state.levels.forEach(function (entry, key) {
      if (key.split("|")[0] === sku) entry.row.classList.toggle("low", !!v && total <= v.threshold);
    });
  }
  function flash(td, value) {
    if (td.textContent === String(value)) return;
    td.textContent = value;
    td.classList.remove("changed");
    void td.offsetWidth; // restart the highlight animation
    td.classList.add("changed");
  }
  function applyEvent(ev) {
    state.lastCursor = ev.cursor;
    var key = ev.sku + "|" + ev.location.id;
    var entry = state.levels.get(key);
    var level = { onHand: ev.onHand, reserved: ev.reserved, available: ev.available, version: ev.version, location: ev.location };
    if (!entry) { addRow(ev.sku, level); entry = state.levels.get(key); flashRow(entry.row); }
    else if (ev.version > entry.level.version) {
      entry.level = level;
      flash(entry.row.querySelector(".on-hand"), ev.onHand);
      flash(entry.row.querySelector(".reserved"), ev.reserved);
      flash(entry.row.querySelector(".available"), ev.available);
      markLow(ev.sku);
    }
    scheduleLedger();
  }
  function flashRow(tr) { tr.querySelectorAll("td.num").forEach(function (td) { td.classList.add("changed"); }); }
  function applySearch(tr) {
    var q = $("#search").value.trim().toLowerCase();
    tr.hidden = q !== "" && tr.dataset.search.indexOf(q) < 0;
  }
  function searchAll() {
    var shown = 0;
    document.querySelectorAll("#stock tbody tr").forEach(function (tr) { applySearch(tr); if (!tr.hidden) shown++; });
    $("#stock-count").textContent = shown + " of " + state.levels.size + " stock levels";
  }

  // ---------- live feed ----------
  var STOCK_CHANGED = "subscription($after: String) { stockChanged(after: $after) { cursor sku kind " +
    "onHand reserved available version location { id name } } }";
  var ALERTS = "subscription { lowStockAlerts { variant { sku } available threshold state occurredAt } }";

  function setConnection(s, text) {
    var el = $("#connection");
    el.dataset.state = s;
    el.textContent = text || s;
  }
  function connect() {
    setConnection("connecting", "connecting…");
    var client = graphqlWs.createClient({
      url: WS_URL,
      connectionParams: { authorization: "Bearer " + state.token },
      retryAttempts: 0, // we reconnect ourselves, resuming from the last cursor
      lazy: false,
      on: {
        connected: function () { state.retry = 0; setConnection("live", "live"); },
        closed: function () { reconnectLater(client); },
      },
    });
    state.ws = client;
    client.subscribe({ query: STOCK_CHANGED, variables: { after: state.lastCursor } }, {
      next: function (msg) { if (msg.data) applyEvent(msg.data.stockChanged); },
      error: function (err) {
        var list = Array.isArray(err) ? err : [];
        if (list.some(function (e) { return errorCode(e) === "BAD_CURSOR"; })) {
          state.lastCursor = null; // too old to replay: read everything again
          state.ws = null;
          client.dispose();
          reloadAll();
        }
      },
      complete: function () {},
    });
    // ordersChanged: when the server has it, the orders section follows it live
    client.subscribe({ query: "subscription { ordersChanged { id status } }" }, {
      next: function () { clearTimeout(featuresTimer); featuresTimer = setTimeout(loadFeatures, 250); },
      error: function () {}, complete: function () {},
    });
    client.subscribe({ query: ALERTS }, {
      next: function (msg) { if (msg.data) addAlert(msg.data.lowStockAlerts); },
      error: function () {}, complete: function () {},
    });
  }
  function reconnectLater(client) {
    if (state.ws !== client) return;
    state.ws = null;
    client.dispose();
    var delay = Math.min(30, Math.pow(2, state.retry++)) * 1000 * (0.5 + Math.random() / 2);
    setConnection("disconnected", "disconnected: retrying in " + Math.ceil(delay / 1000) + " s");
    setTimeout(function () { if (state.token && !state.ws) connect(); }, delay);
  }
  var featuresTimer = null;
  function addAlert(a) {
    var li = document.createElement("li");
    li.textContent = a.occurredAt.slice(11, 19) + " " + a.state + " " + a.variant.sku +
      ": " + a.available + " available (threshold " + a.threshold + ")";
    $("#alerts").prepend(li);
    clearTimeout(featuresTimer);
    featuresTimer = setTimeout(loadFeatures, 250);
  }

  // ---------- ledger ----------
  var LEDGER = "{ stockMovements(first: 25) { edges { node { id occurredAt sku kind onHandDelta " +
    "reservedDelta onHandAfter reservedAfter reason location { name } } } } }";
  var ledgerTimer = null;
  function scheduleLedger() {
    clearTimeout(ledgerTimer);
    ledgerTimer = setTimeout(loadLedger, 250);
  }
  function loadLedger() {
    return gql(LEDGER).then(function (body) {
      if (body.errors) return;
      var tbody = $("#ledger tbody");
      tbody.textContent = "";
      body.data.stockMovements.edges.forEach(function (edge) {
        var m = edge.node;
        var tr = document.createElement("tr");
        tr.dataset.movement = m.id;
        cell(tr, "id", m.id);
        cell(tr, "when", new Date(m.occurredAt).toLocaleString());
        cell(tr, "sku", m.sku);
        cell(tr, "location", m.location.name);
        cell(tr, "kind", m.kind);
        cell(tr, "num", signed(m.onHandDelta));
        cell(tr, "num", signed(m.reservedDelta));
        cell(tr, "num", m.onHandAfter);
        cell(tr, "num", m.reservedAfter);
        cell(tr, "reason", m.reason || "");
        tbody.appendChild(tr);
      });
    });
  }
  function signed(n) { return n > 0 ? "+" + n : String(n); }

  // ---------- adjust / set form ----------
  var ADJUST = "mutation($input: AdjustStockInput!) { adjustStock(input: $input) { " +
    "stockLevel { onHand reserved available } movement { id } userErrors { code message field } } }";
  var SET = "mutation($input: SetStockInput!) { setStock(input: $input) { " +
    "stockLevel { onHand reserved available } movement { id } userErrors { code message field } } }";

  function pickLevel(sku, locationId) {
    $("#adjust-sku").value = sku;
    $("#adjust-location").value = locationId;
    fillExpected();
  }
  function fillExpected() {
    var entry = state.levels.get($("#adjust-sku").value.trim() + "|" + $("#adjust-location").value);
    $("#adjust-expected").value = entry ? entry.level.onHand : "";
  }
  function clearErrors(form) {
    form.querySelectorAll(".error").forEach(function (el) { el.textContent = ""; });
    form.querySelectorAll(".ok").forEach(function (el) { el.textContent = ""; });
  }
  function showUserErrors(form, errors) {
    errors.forEach(function (e) {
      var name = e.field && e.field.length ? e.field[e.field.length - 1] : "";
      var slot = form.querySelector('[data-error-for="' + name + '"]') || form.querySelector('[data-error-for=""]');
      slot.textContent = (slot.textContent ? slot.textContent + " " : "") + e.code + ": " + e.message;
    });
  }
  function intOrNull(value) { return value.trim() === "" ? null : Number(value); }
  function submitAdjust(event) {
    event.preventDefault();
    var form = event.target;
    clearErrors(form);
    var set = $("#adjust-mode").value === "set";
    var input = {
      sku: $("#adjust-sku").value.trim(),
      locationId: $("#adjust-location").value || null,
      reason: $("#adjust-reason").value,
      expectedOnHand: intOrNull($("#adjust-expected").value),
    };
    if (set) input.onHand = intOrNull($("#adjust-onhand").value);
    else { input.delta = intOrNull($("#adjust-delta").value); input.note = $("#adjust-note").value || null; }
    gql(set ? SET : ADJUST, { input: input }).then(function (body) {
      if (body.errors) { showUserErrors(form, body.errors.map(function (e) { return { code: errorCode(e) || "ERROR", message: e.message }; })); return; }
      var payload = body.data[set ? "setStock" : "adjustStock"];
      if (payload.userErrors.length) { showUserErrors(form, payload.userErrors); return; }
      $("#adjust-result").textContent = payload.movement
        ? "Done: movement #" + payload.movement.id + ", on hand now " + payload.stockLevel.onHand
        : "Nothing changed (same figure).";
      $("#adjust-expected").value = payload.stockLevel.onHand;
      loadLedger();
    });
  }
  function setMode() {
    var mode = $("#adjust-mode").value;
    document.querySelectorAll("#adjust-form [data-mode]").forEach(function (el) { el.hidden = el.dataset.mode !== mode; });
  }

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
  function money(m) { return m ? m.amount + " " + m.currency : ""; }
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
      "{ orders(status: [NEEDS_ATTENTION, PENDING_PAYMENT], first: 20) { edges { node { id status createdAt attentionReason total { amount currency } } } } }", {},
      function (d) { return d.orders.edges.map(function (e) { var n = e.node; return [n.id, n.status, n.createdAt, money(n.total), n.attentionReason || ""]; }); });
    featureSection("#reservations-section",
      "{ reservations(status: [ACTIVE], first: 20) { edges { node { id expiresAt lines { quantity variant { sku } } } } } }", {},
      function (d) {
        return d.reservations.edges.map(function (e) {
          var n = e.node;
          var minutes = Math.round((new Date(n.expiresAt).getTime() - Date.now()) / 60000);
          var soon = minutes <= 5 ? "expiring soon: " : "";
          return [n.id, soon + "in " + minutes + " min", n.lines.map(function (l) { return l.quantity + "× " + l.variant.sku; }).join(", ")];
        });
      });
    loadReport(state.reportDays || 1);
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

  // ---------- start ----------
  function reloadAll() {
    state.levels.clear();
    $("#stock tbody").textContent = "";
    return gql("{ stockCursor locations { id name isDefault } }").then(function (body) {
      if (body.errors) throw new Error(body.errors[0].message);
      // the cursor is read before the catalog: events after it are replayed; their
      // versions tell which ones the read already shows
      state.lastCursor = body.data.stockCursor;
      state.locations = body.data.locations;
      var select = $("#adjust-location");
      select.textContent = "";
      state.locations.forEach(function (l) {
        var o = document.createElement("option");
        o.value = l.id; o.textContent = l.name + (l.isDefault ? " (default)" : "");
        o.selected = l.isDefault;
        select.appendChild(o);
      });
      return loadCatalog();
    }).then(function (rows) {
      rows.forEach(function (r) { addRow(r.sku, r.level); });
      var list = $("#sku-list");
      list.textContent = "";
      state.variants.forEach(function (_, sku) { var o = document.createElement("option"); o.value = sku; list.appendChild(o); });
      searchAll();
      document.body.dataset.loaded = "true";
      connect();
    });
  }
  function start() {
    reloadAll();
    loadLedger();
    loadFeatures();
  }

  document.addEventListener("DOMContentLoaded", function () {
    $("#sign-in-form").addEventListener("submit", function (e) { e.preventDefault(); signIn($("#token").value); });
    $("#sign-out").addEventListener("click", function () {
      sessionStorage.removeItem(TOKEN_KEY);
      var ws = state.ws; state.ws = null; state.token = null;
      if (ws) ws.dispose();
      setConnection("offline");
      showSignIn();
    });
    $("#search").addEventListener("input", searchAll);
    $("#adjust-form").addEventListener("submit", submitAdjust);
    $("#order-form").addEventListener("submit", submitOrder);
    $("#threshold-form").addEventListener("submit", submitThreshold);
    document.querySelectorAll("#report-range button").forEach(function (b) {
      b.addEventListener("click", function () { loadReport(Number(b.dataset.days)); });
    });
    $("#adjust-mode").addEventListener("change", setMode);
    $("#adjust-sku").addEventListener("change", fillExpected);
    $("#adjust-location").addEventListener("change", fillExpected);
    var token = readToken();
    if (token) signIn(token); else showSignIn();
  });
})();
