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
    }).then(function (r) { return r.json(); }).catch(function (err) {
      // the server is unreachable (restarting, network down): a GraphQL-shaped error, so
      // every caller handles it like any other refusal instead of an unhandled rejection
      return { errors: [{ message: "Cannot reach the server: " + err.message, extensions: { code: "NETWORK" } }] };
    });
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
  var LEVEL = "onHand reserved available damaged qualityControl safetyStock unavailable " +
    "incoming version location { id name }";
  var CATALOG = "query($after: String) { products(first: 100, after: $after) { " +
    "edges { node { title variants { sku title lowStockThreshold stockLevels { " + LEVEL +
    " } } } } pageInfo { hasNextPage endCursor } } }";
  var LEVELS = "query($sku: String!) { variant(sku: $sku) { stockLevels { " + LEVEL + " } } }";

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
    cell(tr, "num damaged", level.damaged);
    cell(tr, "num quality-control", level.qualityControl);
    cell(tr, "num safety-stock", level.safetyStock);
    cell(tr, "num unavailable", level.unavailable);
    cell(tr, "num incoming", level.incoming);
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
  function showLevel(entry, level) {
    entry.level = level;
    var row = entry.row;
    flash(row.querySelector(".on-hand"), level.onHand);
    flash(row.querySelector(".reserved"), level.reserved);
    flash(row.querySelector(".available"), level.available);
    flash(row.querySelector(".damaged"), level.damaged);
    flash(row.querySelector(".quality-control"), level.qualityControl);
    flash(row.querySelector(".safety-stock"), level.safetyStock);
    flash(row.querySelector(".unavailable"), level.unavailable);
    flash(row.querySelector(".incoming"), level.incoming);
  }
  // An event carries onHand, reserved and available: the states' split is read again
  // (one variant) when their sum (onHand - reserved - available) changed, and incoming
  // after a RECEIPT (a shipment's receipt lowers it).
  function refreshLevels(sku) {
    return gql(LEVELS, { sku: sku }).then(function (body) {
      if (body.errors || !body.data.variant) return;
      body.data.variant.stockLevels.forEach(function (level) {
        var entry = state.levels.get(sku + "|" + level.location.id);
        if (entry && level.version >= entry.level.version) showLevel(entry, level);
      });
    });
  }
  function applyEvent(ev) {
    state.lastCursor = ev.cursor;
    var key = ev.sku + "|" + ev.location.id;
    var entry = state.levels.get(key);
    var unavailable = ev.onHand - ev.reserved - ev.available;
    if (!entry) {
      addRow(ev.sku, { onHand: ev.onHand, reserved: ev.reserved, available: ev.available,
        damaged: "", qualityControl: "", safetyStock: "", unavailable: unavailable,
        incoming: "", version: ev.version, location: ev.location });
      flashRow(state.levels.get(key).row);
      refreshLevels(ev.sku);
    } else if (ev.version > entry.level.version) {
      var was = entry.level;
      showLevel(entry, { onHand: ev.onHand, reserved: ev.reserved, available: ev.available,
        damaged: was.damaged, qualityControl: was.qualityControl, safetyStock: was.safetyStock,
        unavailable: unavailable, incoming: was.incoming, version: ev.version, location: ev.location });
      if (unavailable !== was.unavailable || ev.kind === "RECEIPT") refreshLevels(ev.sku);
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

  // ---------- the sections of sections.js ----------
  var sections = window.gqlAdminSections({
    $: $, gql: gql, state: state, cell: cell, errorCode: errorCode, isValidationError: isValidationError,
    clearErrors: clearErrors, showUserErrors: showUserErrors, intOrNull: intOrNull, markLow: markLow,
  });
  var stockOps = window.gqlAdminStockOps({
    $: $, gql: gql, state: state, errorCode: errorCode, clearErrors: clearErrors,
    showUserErrors: showUserErrors, intOrNull: intOrNull, loadLedger: loadLedger,
  });
  var shipments = window.gqlAdminShipments({
    $: $, gql: gql, errorCode: errorCode, clearErrors: clearErrors,
    showUserErrors: showUserErrors, refreshLevels: refreshLevels, loadLedger: loadLedger,
  });
  var webhooks = window.gqlAdminWebhooks({
    $: $, gql: gql, errorCode: errorCode, clearErrors: clearErrors, showUserErrors: showUserErrors,
  });
  function loadFeatures() { return sections.loadFeatures(); }

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
      // the adjust form preselects the default location; the transfer form's From and
      // To the first and second location (data-locations), the shipment form the default
      [$("#adjust-location")].concat(Array.prototype.slice.call(document.querySelectorAll("select[data-locations]")))
        .forEach(function (select) {
          var pick = select.dataset.locations;
          select.textContent = "";
          state.locations.forEach(function (l, n) {
            var o = document.createElement("option");
            o.value = l.id; o.textContent = l.name + (l.isDefault ? " (default)" : "");
            o.selected = pick === "first" ? n === 0 : pick === "second" ? n === 1 : l.isDefault;
            select.appendChild(o);
          });
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
    }).catch(function (err) {
      setConnection("disconnected", "cannot load the stock (" + err.message + "): retrying");
      setTimeout(function () { if (state.token) reloadAll(); }, 5000);
    });
  }
  function start() {
    reloadAll();
    loadLedger();
    loadFeatures();
    shipments.load();
    webhooks.load();
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
    $("#order-form").addEventListener("submit", sections.submitOrder);
    $("#threshold-form").addEventListener("submit", sections.submitThreshold);
    $("#transfer-form").addEventListener("submit", stockOps.submitTransfer);
    $("#csv-file").addEventListener("change", stockOps.readCsv);
    $("#csv-form").addEventListener("submit", stockOps.applyCsv);
    $("#shipment-form").addEventListener("submit", shipments.submitCreate);
    $("#shipments-status").addEventListener("change", function () { shipments.load(); });
    $("#shipments-more").addEventListener("click", shipments.more);
    webhooks.drawTopics();
    $("#webhook-form").addEventListener("submit", webhooks.submitCreate);
    $("#webhook-secret-copy").addEventListener("click", webhooks.copySecret);
    $("#webhook-secret-done").addEventListener("click", webhooks.hideSecret);
    $("#deliveries-status").addEventListener("change", webhooks.loadDeliveries);
    $("#deliveries-refresh").addEventListener("click", webhooks.loadDeliveries);
    $("#deliveries-more").addEventListener("click", webhooks.moreDeliveries);
    $("#reservations-status").addEventListener("change", sections.loadReservations);
    $("#reservations-sku").addEventListener("change", sections.loadReservations);
    document.querySelectorAll("#report-range button").forEach(function (b) {
      b.addEventListener("click", function () { sections.loadReport(Number(b.dataset.days)); });
    });
    $("#adjust-mode").addEventListener("change", setMode);
    $("#adjust-sku").addEventListener("change", fillExpected);
    $("#adjust-location").addEventListener("change", fillExpected);
    var token = readToken();
    if (token) signIn(token); else showSignIn();
  });
})();
