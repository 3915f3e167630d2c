// The back office's inbound shipments (GET /admin): the list (inboundShipments, newest
// first, by status, PAGE at a time with "More"), each shipment's lines, the create form
// (createInboundShipment, lines typed as "SKU,quantity"), receiving everything left or the
// units entered per line (receiveInboundShipment) and cancelling (cancelInboundShipment,
// two clicks). Loaded before admin.js, which calls window.gqlAdminShipments(api) with its
// helpers: {$, gql, errorCode, clearErrors, showUserErrors, refreshLevels,
// loadLedger}. Every text from the form or the server is shown with textContent, never as
// HTML. The live feed carries no `incoming`: after each change the stock table reads the
// shipment's variants again (refreshLevels).
window.gqlAdminShipments = function (api) {
  "use strict";
  var $ = api.$, gql = api.gql;
  var clearErrors = api.clearErrors, showUserErrors = api.showUserErrors;

  var PAGE = 20;
  var OPEN = ["OPEN", "PARTIALLY_RECEIVED"];
  var INT_MAX = 2147483647;
  var SHIPMENT = "id reference status expectedAt createdAt location { id name } " +
    "lines { quantityExpected quantityReceived variant { sku } }";
  var PAYLOAD = "{ shipment { " + SHIPMENT + " } userErrors { code message field } }";
  var LIST = "query($status: [InboundShipmentStatus!], $first: Int, $after: String) { " +
    "inboundShipments(status: $status, first: $first, after: $after) { totalCount " +
    "pageInfo { hasNextPage endCursor } edges { node { " + SHIPMENT + " } } } }";
  var CREATE = "mutation($input: CreateInboundShipmentInput!) { createInboundShipment(input: $input) " + PAYLOAD + " }";
  var RECEIVE = "mutation($input: ReceiveInboundShipmentInput!) { receiveInboundShipment(input: $input) " + PAYLOAD + " }";
  var CANCEL = "mutation($id: ID!) { cancelInboundShipment(shipmentId: $id) " + PAYLOAD + " }";

  var kit = window.gqlAdminKit(api);
  var graphqlErrors = kit.graphqlErrors, say = kit.say, el = kit.el;
  // ["input", "lines", "2", "quantity"] -> 2; null for a field outside the lines
  function lineIndex(field) {
    var at = (field || []).indexOf("lines");
    return at >= 0 && field.length > at + 1 ? Number(field[at + 1]) : null;
  }
  function refreshStock(shipment) {
    shipment.lines.forEach(function (l) { api.refreshLevels(l.variant.sku); });
  }

  // ---------- the list ----------
  var list = kit.pagedList({
    query: LIST, field: "inboundShipments", size: PAGE, status: "#shipments-status",
    more: "#shipments-more", error: "#shipments-error", count: "#shipments-count",
    body: "#shipments", render: function (node) { return render(node); },
    counted: function (total) { return total + (total === 1 ? " shipment" : " shipments"); },
  });
  function load() { return list.load(); }
  function more() { return list.more(); }

  // One <article data-shipment=id>: a head line, a table of lines (with a units input per
  // line while it is open), the actions while it is open, its error and result lines.
  function render(s) {
    var article = document.createElement("article");
    article.className = "shipment";
    article.dataset.shipment = s.id;
    article.dataset.status = s.status;
    var head = el(article, "div", "shipment-head");
    el(head, "strong", "reference", s.reference === null ? "(no reference)" : s.reference);
    el(head, "span", "status", s.status);
    el(head, "span", "location", s.location.name);
    el(head, "span", "expected", s.expectedAt ? "expected " + new Date(s.expectedAt).toLocaleDateString() : "no date");
    el(head, "span", "created", "created " + new Date(s.createdAt).toLocaleString());
    var open = OPEN.indexOf(s.status) >= 0;
    var table = el(article, "table", "shipment-lines");
    var tr = el(el(table, "thead"), "tr");
    el(tr, "th", "", "SKU"); el(tr, "th", "num", "Expected"); el(tr, "th", "num", "Received");
    if (open) el(tr, "th", "num", "Receive now");
    el(tr, "th", "", "");
    var tbody = el(table, "tbody");
    s.lines.forEach(function (l) {
      var row = el(tbody, "tr");
      row.dataset.sku = l.variant.sku;
      el(row, "td", "sku", l.variant.sku);
      el(row, "td", "num expected", l.quantityExpected);
      el(row, "td", "num received", l.quantityReceived);
      if (open) {
        var input = el(el(row, "td", "num"), "input", "receive");
        input.type = "number"; input.min = "0"; input.step = "1";
        input.max = String(l.quantityExpected - l.quantityReceived);
        input.placeholder = "0";
        input.setAttribute("aria-label", "Units of " + l.variant.sku + " received");
      }
      el(row, "td", "error");
    });
    if (open) {
      var actions = el(article, "div", "actions");
      var all = el(actions, "button", "receive-all", "Receive all left");
      var some = el(actions, "button", "receive-lines", "Receive entered");
      var cancel = el(actions, "button", "cancel", "Cancel shipment");
      [all, some, cancel].forEach(function (b) { b.type = "button"; });
      all.addEventListener("click", function () { receive(article, s, true); });
      some.addEventListener("click", function () { receive(article, s, false); });
      cancel.addEventListener("click", function () { cancelShipment(article, s, cancel); });
    }
    el(article, "p", "error shipment-error").setAttribute("role", "alert");
    el(article, "p", "ok shipment-result").setAttribute("role", "status");
    return article;
  }

  function lineRow(article, sku) {
    var found = null;
    article.querySelectorAll("tr[data-sku]").forEach(function (tr) { if (tr.dataset.sku === sku) found = tr; });
    return found;
  }
  function showShipmentErrors(article, errors, sent) {
    errors.forEach(function (e) {
      var i = lineIndex(e.field);
      var row = i !== null && sent && sent[i] ? lineRow(article, sent[i].sku) : null;
      var slot = row ? row.querySelector(".error") : article.querySelector(".shipment-error");
      slot.textContent = (slot.textContent ? slot.textContent + " " : "") + say(e);
    });
  }
  // Send one shipment mutation; on success the article is drawn again from the answer.
  function send(article, query, variables, name, sent, done) {
    article.querySelectorAll(".error, .ok").forEach(function (n) { n.textContent = ""; });
    article.querySelectorAll("button").forEach(function (b) { b.disabled = true; });
    return gql(query, variables).then(function (body) {
      article.querySelectorAll("button").forEach(function (b) { b.disabled = false; });
      if (body.errors) { showShipmentErrors(article, graphqlErrors(body), null); return; }
      var payload = body.data[name];
      if (payload.userErrors.length) { showShipmentErrors(article, payload.userErrors, sent); return; }
      var fresh = render(payload.shipment);
      article.replaceWith(fresh);
      fresh.querySelector(".shipment-result").textContent = done(payload.shipment);
      refreshStock(payload.shipment);
      api.loadLedger();
    });
  }

  function receive(article, s, all) {
    var lines = null, bad = false;
    article.querySelectorAll(".error, .ok").forEach(function (n) { n.textContent = ""; });
    if (!all) {
      lines = [];
      article.querySelectorAll("tr[data-sku]").forEach(function (tr) {
        var value = tr.querySelector("input.receive").value.trim();
        if (value === "") return;
        if (!/^\d+$/.test(value) || Number(value) > INT_MAX) {
          tr.querySelector(".error").textContent = "INVALID_INPUT: units must be a whole number, 0 or more";
          bad = true;
        } else if (Number(value) > 0) lines.push({ sku: tr.dataset.sku, quantity: Number(value) });
      });
      if (bad) return Promise.resolve();
      if (!lines.length) {
        article.querySelector(".shipment-error").textContent = "INVALID_INPUT: enter the units received on at least one line";
        return Promise.resolve();
      }
    }
    return send(article, RECEIVE, { input: { shipmentId: s.id, lines: lines } }, "receiveInboundShipment", lines,
      function (after) {
        var units = 0;
        after.lines.forEach(function (l, n) { units += l.quantityReceived - s.lines[n].quantityReceived; });
        return "Received " + units + " units: " + after.status + ".";
      });
  }

  // The first click arms the button ("Really cancel?"), the second cancels.
  function cancelShipment(article, s, button) {
    if (!button.dataset.armed) {
      button.dataset.armed = "true";
      button.textContent = "Really cancel? Click again";
      return Promise.resolve();
    }
    return send(article, CANCEL, { id: s.id }, "cancelInboundShipment", null, function () {
      return "Cancelled: what was still expected is no longer incoming.";
    });
  }

  // ---------- create ----------
  // "SKU,quantity" per line (the last comma splits; blank lines skipped) -> input lines
  function parseLines(text) {
    var lines = [], rows = [], problems = [];
    text.split(/\r\n|\r|\n/).forEach(function (raw, n) {
      if (raw.trim() === "") return;
      var at = raw.lastIndexOf(",");
      var sku = (at < 0 ? raw : raw.slice(0, at)).trim();
      var quantity = at < 0 ? "" : raw.slice(at + 1).trim();
      if (!/^\d+$/.test(quantity) || Number(quantity) > INT_MAX) {
        problems.push({ line: n + 1, sku: sku, code: "INVALID_INPUT", message: 'write "SKU,quantity" with a whole number of units' });
        return;
      }
      lines.push({ sku: sku, quantity: Number(quantity) });
      rows.push(n + 1);
    });
    return { lines: lines, rows: rows, problems: problems };
  }
  function showLineErrors(problems) {
    var ul = $("#shipment-line-errors");
    ul.textContent = "";
    problems.forEach(function (p) {
      var li = el(ul, "li", "", "line " + p.line + (p.sku ? " (" + p.sku + ")" : "") + ": " + p.code + ": " + p.message);
      li.dataset.line = p.line;
    });
  }
  function expectedAt(value) {
    if (!value) return null;
    var p = value.split("-").map(Number); // the start of that day where the browser is
    return new Date(p[0], p[1] - 1, p[2]).toISOString();
  }
  function submitCreate(event) {
    event.preventDefault();
    var form = event.target;
    clearErrors(form);
    showLineErrors([]);
    var parsed = parseLines($("#shipment-lines").value);
    if (parsed.problems.length) { showLineErrors(parsed.problems); return Promise.resolve(); }
    var input = {
      locationId: $("#shipment-location").value || null,
      reference: $("#shipment-reference").value.trim() || null,
      expectedAt: expectedAt($("#shipment-expected").value),
      lines: parsed.lines,
    };
    return gql(CREATE, { input: input }).then(function (body) {
      if (body.errors) { showUserErrors(form, graphqlErrors(body)); return; }
      var payload = body.data.createInboundShipment;
      if (payload.userErrors.length) {
        var perLine = [], rest = [];
        payload.userErrors.forEach(function (e) {
          var i = lineIndex(e.field);
          if (i !== null && parsed.lines[i]) perLine.push({ line: parsed.rows[i], sku: parsed.lines[i].sku, code: e.code, message: e.message });
          else rest.push(e);
        });
        showLineErrors(perLine);
        showUserErrors(form, rest);
        return;
      }
      var s = payload.shipment;
      $("#shipment-result").textContent = "Created shipment " + (s.reference === null ? s.id : s.reference) +
        ": " + s.lines.length + (s.lines.length === 1 ? " line" : " lines") + " to " + s.location.name + ".";
      ["#shipment-reference", "#shipment-expected", "#shipment-lines"].forEach(function (sel) { $(sel).value = ""; });
      refreshStock(s);
      load();
    });
  }

  return { load: load, more: more, submitCreate: submitCreate, parseLines: parseLines };
};
