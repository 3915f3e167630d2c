// The back office's webhooks (GET /admin): the endpoints (webhookEndpoints) with enable /
// disable (updateWebhookEndpoint), rotate (rotateWebhookEndpointSecret) and delete
// (deleteWebhookEndpoint, two clicks); the create form (createWebhookEndpoint: URL, topic
// checkboxes, note), whose answer's secret is shown ONCE in a box to copy from, with a
// warning, and kept nowhere else (not in storage: a reload does not show it); the recent
// deliveries (webhookDeliveries, newest first, by status) with a Retry button on FAILED ones
// (retryWebhookDelivery). Loaded before admin.js, which calls window.gqlAdminWebhooks(api)
// with its helpers: {$, gql, errorCode, clearErrors, showUserErrors}. Every text from the
// form or the server is shown with textContent, never as HTML.
window.gqlAdminWebhooks = function (api) {
  "use strict";
  var $ = api.$, gql = api.gql;
  var clearErrors = api.clearErrors, showUserErrors = api.showUserErrors;

  var TOPICS = ["INVENTORY_LEVEL_UPDATED", "STOCK_LOW", "STOCK_OUT", "STOCK_BACK_IN", "ORDER_PAID",
    "ORDER_NEEDS_ATTENTION", "ORDER_REFUNDED", "ORDER_CANCELLED", "PAYMENT_FAILED",
    "RESERVATION_EXPIRED", "INBOUND_SHIPMENT_RECEIVED"];
  var PAGE = 50;
  var ENDPOINT = "id url topics enabled description disabledReason createdAt previousSecretExpiresAt";
  var ERRORS = "userErrors { code message field }";
  var LIST = "{ webhookEndpoints { " + ENDPOINT + " } }";
  var DELIVERIES = "query($status: [WebhookDeliveryStatus!], $first: Int, $after: String) { " +
    "webhookDeliveries(status: $status, first: $first, after: $after) { totalCount " +
    "pageInfo { hasNextPage endCursor } edges { node { id messageId " +
    "topic status attempts lastStatusCode lastError nextAttemptAt createdAt endpoint { id url } } } } }";
  var CREATE = "mutation($input: CreateWebhookEndpointInput!) { createWebhookEndpoint(input: $input) " +
    "{ endpoint { " + ENDPOINT + " } secret " + ERRORS + " } }";
  var UPDATE = "mutation($input: UpdateWebhookEndpointInput!) { updateWebhookEndpoint(input: $input) " +
    "{ endpoint { " + ENDPOINT + " } " + ERRORS + " } }";
  var ROTATE = "mutation($id: ID!) { rotateWebhookEndpointSecret(id: $id) { endpoint { " + ENDPOINT +
    " } secret " + ERRORS + " } }";
  var DELETE = "mutation($id: ID!) { deleteWebhookEndpoint(id: $id) { endpoint { id } " + ERRORS + " } }";
  var RETRY = "mutation($id: ID!) { retryWebhookDelivery(id: $id) { delivery { id status } " + ERRORS + " } }";

  var kit = window.gqlAdminKit(api);
  var graphqlErrors = kit.graphqlErrors, say = kit.say, el = kit.el;
  function when(iso) { return iso ? new Date(iso).toLocaleString() : ""; }

  // ---------- the secret, shown once ----------
  function showSecret(secret, url, rotated) {
    $("#webhook-secret-what").textContent = (rotated ? "New signing secret for " : "Signing secret for ") + url +
      (rotated ? " (the previous one still signs for the overlap, then stops)" : "");
    $("#webhook-secret-value").value = secret;
    $("#webhook-secret").hidden = false;
    $("#webhook-secret-value").focus();
    $("#webhook-secret-value").select();
  }
  function hideSecret() {
    $("#webhook-secret-value").value = "";
    $("#webhook-secret").hidden = true;
  }
  function copySecret() {
    var input = $("#webhook-secret-value");
    input.select();
    var done = function () { $("#webhook-secret-copied").textContent = "Copied."; };
    if (navigator.clipboard && window.isSecureContext) return navigator.clipboard.writeText(input.value).then(done, function () {});
    try { if (document.execCommand("copy")) done(); } catch (e) { /* select and copy by hand */ }
    return Promise.resolve();
  }

  // ---------- endpoints ----------
  function loadEndpoints() {
    return gql(LIST).then(function (body) {
      $("#webhooks-error").textContent = body.errors ? graphqlErrors(body).map(say).join(" ") : "";
      if (body.errors) return;
      var box = $("#webhook-endpoints");
      box.textContent = "";
      body.data.webhookEndpoints.forEach(function (e) { box.appendChild(render(e)); });
      $("#webhook-endpoints-count").textContent = body.data.webhookEndpoints.length +
        (body.data.webhookEndpoints.length === 1 ? " endpoint" : " endpoints");
    });
  }
  function render(e) {
    var article = document.createElement("article");
    article.className = "webhook";
    article.dataset.endpoint = e.id;
    article.dataset.enabled = String(e.enabled);
    var head = el(article, "div", "webhook-head");
    el(head, "strong", "url", e.url);
    el(head, "span", "enabled", e.enabled ? "enabled" : "disabled" + (e.disabledReason ? ": " + e.disabledReason : ""));
    el(head, "span", "created", "created " + when(e.createdAt));
    el(article, "div", "topics", e.topics.join(", "));
    el(article, "div", "description", e.description === null ? "" : e.description);
    if (e.previousSecretExpiresAt) el(article, "div", "overlap", "previous secret signs until " + when(e.previousSecretExpiresAt));
    var actions = el(article, "div", "actions");
    var toggle = el(actions, "button", "toggle", e.enabled ? "Disable" : "Enable");
    var rotate = el(actions, "button", "rotate", "Rotate secret");
    var remove = el(actions, "button", "delete", "Delete");
    [toggle, rotate, remove].forEach(function (b) { b.type = "button"; });
    toggle.addEventListener("click", function () { setEnabled(article, e, !e.enabled); });
    rotate.addEventListener("click", function () { rotateSecret(article, e); });
    remove.addEventListener("click", function () { deleteEndpoint(article, e, remove); });
    el(article, "p", "error webhook-error").setAttribute("role", "alert");
    el(article, "p", "ok webhook-result").setAttribute("role", "status");
    return article;
  }
  // Send one endpoint mutation; `done(payload)` runs on success.
  function send(article, query, variables, name, done) {
    article.querySelectorAll(".error, .ok").forEach(function (n) { n.textContent = ""; });
    article.querySelectorAll("button").forEach(function (b) { b.disabled = true; });
    return gql(query, variables).then(function (body) {
      article.querySelectorAll("button").forEach(function (b) { b.disabled = false; });
      var errors = body.errors ? graphqlErrors(body) : body.data[name].userErrors;
      if (errors.length) { article.querySelector(".webhook-error").textContent = errors.map(say).join(" "); return; }
      done(body.data[name]);
    });
  }
  function setEnabled(article, e, enabled) {
    return send(article, UPDATE, { input: { id: e.id, enabled: enabled } }, "updateWebhookEndpoint", function (p) {
      var fresh = render(p.endpoint);
      article.replaceWith(fresh);
      fresh.querySelector(".webhook-result").textContent = enabled ? "Enabled." : "Disabled: nothing is sent to it.";
    });
  }
  function rotateSecret(article, e) {
    return send(article, ROTATE, { id: e.id }, "rotateWebhookEndpointSecret", function (p) {
      var fresh = render(p.endpoint);
      article.replaceWith(fresh);
      fresh.querySelector(".webhook-result").textContent = "New secret issued: copy it above.";
      showSecret(p.secret, p.endpoint.url, true);
    });
  }
  // The first click arms the button ("Really delete?"), the second deletes.
  function deleteEndpoint(article, e, button) {
    if (!button.dataset.armed) {
      button.dataset.armed = "true";
      button.textContent = "Really delete? Click again";
      return Promise.resolve();
    }
    return send(article, DELETE, { id: e.id }, "deleteWebhookEndpoint", function () {
      article.remove();
      $("#webhook-result").textContent = "Deleted " + e.url + " and its deliveries.";
      loadEndpoints();
      loadDeliveries();
    });
  }

  // ---------- create ----------
  function drawTopics() {
    var box = $("#webhook-topics");
    box.textContent = "";
    TOPICS.forEach(function (t) {
      var label = el(box, "label", "topic");
      var input = el(label, "input");
      input.type = "checkbox"; input.name = "topics"; input.value = t;
      label.appendChild(document.createTextNode(" " + t));
    });
  }
  function submitCreate(event) {
    event.preventDefault();
    var form = event.target;
    clearErrors(form);
    hideSecret();
    var topics = [];
    form.querySelectorAll('input[name="topics"]:checked').forEach(function (i) { topics.push(i.value); });
    var input = { url: $("#webhook-url").value.trim(), topics: topics,
      description: $("#webhook-description").value.trim() || null };
    return gql(CREATE, { input: input }).then(function (body) {
      if (body.errors) { showUserErrors(form, graphqlErrors(body)); return; }
      var payload = body.data.createWebhookEndpoint;
      if (payload.userErrors.length) { showUserErrors(form, payload.userErrors); return; }
      $("#webhook-result").textContent = "Created the endpoint " + payload.endpoint.url + ".";
      showSecret(payload.secret, payload.endpoint.url, false);
      $("#webhook-url").value = ""; $("#webhook-description").value = "";
      form.querySelectorAll('input[name="topics"]').forEach(function (i) { i.checked = false; });
      loadEndpoints();
    });
  }

  // ---------- deliveries ----------
  // the deliveries list: PAGE at a time, newest first; "More" appends the next page
  var deliveries = kit.pagedList({
    query: DELIVERIES, field: "webhookDeliveries", size: PAGE, status: "#deliveries-status",
    more: "#deliveries-more", error: "#deliveries-error", count: "#deliveries-count",
    body: "#webhook-deliveries tbody", render: function (node) { return deliveryRow(node); },
    counted: function (total, shown) {
      return total + (total === 1 ? " delivery" : " deliveries") +
        (total > shown ? " (newest " + shown + " shown)" : "");
    },
  });
  function loadDeliveries() { return deliveries.load(); }
  function moreDeliveries() { return deliveries.more(); }
  function deliveryRow(d) {
    var tr = document.createElement("tr");
    tr.dataset.delivery = d.id;
    tr.dataset.status = d.status;
    el(tr, "td", "created", when(d.createdAt));
    el(tr, "td", "endpoint", d.endpoint.url);
    el(tr, "td", "topic", d.topic);
    el(tr, "td", "status", d.status);
    el(tr, "td", "num attempts", d.attempts);
    el(tr, "td", "num last-code", d.lastStatusCode === null ? "" : d.lastStatusCode);
    el(tr, "td", "last-error", d.lastError || "");
    el(tr, "td", "next-attempt", when(d.nextAttemptAt));
    var actions = el(tr, "td", "actions");
    if (d.status === "FAILED") {
      var retry = el(actions, "button", "retry", "Retry");
      retry.type = "button";
      retry.addEventListener("click", function () { retryDelivery(tr, d, retry); });
    }
    el(actions, "span", "error");
    return tr;
  }
  function retryDelivery(tr, d, button) {
    button.disabled = true;
    return gql(RETRY, { id: d.id }).then(function (body) {
      button.disabled = false;
      var errors = body.errors ? graphqlErrors(body) : body.data.retryWebhookDelivery.userErrors;
      if (errors.length) { tr.querySelector(".error").textContent = errors.map(say).join(" "); return; }
      return loadDeliveries();
    });
  }

  function load() { return Promise.all([loadEndpoints(), loadDeliveries()]); }

  return { load: load, drawTopics: drawTopics, submitCreate: submitCreate, loadDeliveries: loadDeliveries,
    moreDeliveries: moreDeliveries, copySecret: copySecret, hideSecret: hideSecret };
};
