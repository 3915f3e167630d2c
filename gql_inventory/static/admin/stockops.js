// The back office's stock operations (GET /admin): the transfer form (transferStock) and
// the stock CSV upload (bulkAdjustStock). Loaded before admin.js, which calls
// window.gqlAdminStockOps(api) with its helpers: {$, gql, state, errorCode, clearErrors,
// showUserErrors, intOrNull, loadLedger}. Every text from a file or the server is shown
// with textContent, never as HTML.
window.gqlAdminStockOps = function (api) {
  "use strict";
  var $ = api.$, gql = api.gql, state = api.state;
  var clearErrors = api.clearErrors, showUserErrors = api.showUserErrors, intOrNull = api.intOrNull;

  var graphqlErrors = window.gqlAdminKit(api).graphqlErrors;

  // ---------- transfer form ----------
  var TRANSFER = "mutation($input: TransferStockInput!) { transferStock(input: $input) { " +
    "from { onHand available location { name } } to { onHand available location { name } } " +
    "movements { id } userErrors { code message field } } }";

  function submitTransfer(event) {
    event.preventDefault();
    var form = event.target;
    clearErrors(form);
    var input = {
      sku: $("#transfer-sku").value.trim(),
      fromLocationId: $("#transfer-from").value,
      toLocationId: $("#transfer-to").value,
      quantity: intOrNull($("#transfer-quantity").value),
      reason: $("#transfer-reason").value || null,
    };
    if (input.quantity === null || !Number.isInteger(input.quantity)) {
      showUserErrors(form, [{ code: "INVALID_INPUT", message: "quantity must be a whole number", field: ["quantity"] }]);
      return Promise.resolve();
    }
    return gql(TRANSFER, { input: input }).then(function (body) {
      if (body.errors) { showUserErrors(form, graphqlErrors(body)); return; }
      var payload = body.data.transferStock;
      if (payload.userErrors.length) { showUserErrors(form, payload.userErrors); return; }
      $("#transfer-result").textContent = "Moved " + input.quantity + " × " + input.sku + ": " +
        payload.from.location.name + " now " + payload.from.onHand + " on hand, " +
        payload.to.location.name + " now " + payload.to.onHand + " on hand.";
      api.loadLedger();
    });
  }

  // ---------- stock CSV upload ----------
  var BULK = "mutation($input: BulkAdjustStockInput!) { bulkAdjustStock(input: $input) { " +
    "movements { id sku } userErrors { code message field } } }";
  var REASONS = ["RECEIVED", "CORRECTION", "DAMAGED", "LOST", "FOUND", "CYCLE_COUNT"];
  var MAX_LINES = 500;
  var INT_MAX = 2147483647;
  var pending = null; // {lines: [input line], rows: [csv line number]} ready to send

  // RFC 4180: quoted fields may hold commas, doubled quotes and line breaks.
  function parseCsv(text) {
    var rows = [], row = [], field = "", quoted = false, i = 0;
    text = text.replace(/^\uFEFF/, "");
    for (; i < text.length; i++) {
      var c = text[i];
      if (quoted) {
        if (c === '"' && text[i + 1] === '"') { field += '"'; i++; }
        else if (c === '"') quoted = false;
        else field += c;
      } else if (c === '"') quoted = true;
      else if (c === ",") { row.push(field); field = ""; }
      else if (c === "\n" || c === "\r") {
        if (c === "\r" && text[i + 1] === "\n") i++;
        row.push(field); rows.push(row); row = []; field = "";
      } else field += c;
    }
    if (field !== "" || row.length) { row.push(field); rows.push(row); }
    return rows;
  }

  function locationId(value) {
    var v = value.trim();
    if (v === "") return { id: null };
    var found = state.locations.filter(function (l) { return l.id === v || l.name === v; })[0];
    return found ? { id: found.id } : { error: "unknown location " + JSON.stringify(v) };
  }

  // CSV rows -> bulkAdjustStock lines; a header row (first cell "sku") names the columns
  // sku, delta, reason, location, note; without one the columns are sku, delta, reason.
  function toLines(rows) {
    var columns = ["sku", "delta", "reason"], start = 0, problems = [], lines = [], numbers = [];
    if (rows.length && rows[0][0] && rows[0][0].trim().toLowerCase() === "sku") {
      columns = rows[0].map(function (h) { return h.trim().toLowerCase(); });
      start = 1;
    }
    for (var r = start; r < rows.length; r++) {
      var cells = rows[r], lineNo = r + 1, rec = {};
      if (cells.every(function (c) { return c.trim() === ""; })) continue;
      columns.forEach(function (name, k) { rec[name] = (cells[k] || "").trim(); });
      var sku = rec.sku || "";
      var bad = function (message) { problems.push({ line: lineNo, sku: sku, code: "INVALID_INPUT", message: message }); };
      if (sku === "") { bad("no SKU"); continue; }
      if (!/^[+-]?\d+$/.test(rec.delta || "") || Math.abs(Number(rec.delta)) > INT_MAX) {
        bad("delta must be a whole number, got " + JSON.stringify(rec.delta || "")); continue;
      }
      var reason = (rec.reason || "CORRECTION").toUpperCase();
      if (REASONS.indexOf(reason) < 0) { bad("reason must be one of " + REASONS.join(", ")); continue; }
      var loc = locationId(rec.location || "");
      if (loc.error) { bad(loc.error); continue; }
      lines.push({ sku: sku, delta: Number(rec.delta), reason: reason, locationId: loc.id, note: rec.note || null });
      numbers.push(lineNo);
    }
    if (!problems.length && !lines.length) problems.push({ line: 0, sku: "", code: "INVALID_INPUT", message: "the file holds no lines" });
    if (lines.length > MAX_LINES) problems.push({ line: 0, sku: "", code: "INVALID_INPUT", message: "at most " + MAX_LINES + " lines per upload, got " + lines.length });
    return { lines: lines, rows: numbers, problems: problems };
  }

  function showCsvErrors(problems) {
    var list = $("#csv-errors");
    list.textContent = "";
    problems.forEach(function (p) {
      var li = document.createElement("li");
      li.dataset.line = p.line;
      li.textContent = (p.line ? "line " + p.line + (p.sku ? " (" + p.sku + ")" : "") + ": " : "") + p.code + ": " + p.message;
      list.appendChild(li);
    });
  }

  function readCsv() {
    pending = null;
    $("#csv-apply").disabled = true;
    $("#csv-result").textContent = "";
    showCsvErrors([]);
    var file = $("#csv-file").files[0];
    if (!file) return Promise.resolve();
    return file.text().then(function (text) {
      var parsed = toLines(parseCsv(text));
      showCsvErrors(parsed.problems);
      if (parsed.problems.length) { $("#csv-status").textContent = "Nothing sent: fix the file and choose it again."; return; }
      pending = parsed;
      $("#csv-status").textContent = parsed.lines.length + " lines ready.";
      $("#csv-apply").disabled = false;
    });
  }

  function lineIndex(field) {
    var at = (field || []).indexOf("lines");
    return at >= 0 && field.length > at + 1 ? Number(field[at + 1]) : null;
  }

  function applyCsv(event) {
    event.preventDefault();
    if (!pending) return Promise.resolve();
    var sent = pending;
    pending = null;
    $("#csv-apply").disabled = true;
    return gql(BULK, { input: { lines: sent.lines, atomic: true } }).then(function (body) {
      if (body.errors) {
        showCsvErrors(graphqlErrors(body).map(function (e) { return { line: 0, sku: "", code: e.code, message: e.message }; }));
        $("#csv-status").textContent = "Nothing changed.";
        return;
      }
      var payload = body.data.bulkAdjustStock;
      if (payload.userErrors.length) {
        showCsvErrors(payload.userErrors.map(function (e) {
          var i = lineIndex(e.field);
          return i === null || !sent.lines[i]
            ? { line: 0, sku: "", code: e.code, message: e.message }
            : { line: sent.rows[i], sku: sent.lines[i].sku, code: e.code, message: e.message };
        }));
        $("#csv-status").textContent = "Nothing changed: every line applies or none does.";
        return;
      }
      $("#csv-status").textContent = "";
      $("#csv-result").textContent = "Applied " + payload.movements.length + " lines.";
      api.loadLedger();
    });
  }

  return { submitTransfer: submitTransfer, readCsv: readCsv, applyCsv: applyCsv, parseCsv: parseCsv };
};
