// Helpers the /admin section scripts share (loaded before them): GraphQL errors as lines,
// text-only DOM building, and a list paged with a "More" button. window.gqlAdminKit(api)
// takes admin.js's {$, gql, errorCode} and returns {graphqlErrors, say, el, pagedList}.
window.gqlAdminKit = function (api) {
  "use strict";
  var $ = api.$, gql = api.gql, errorCode = api.errorCode;

  // a GraphQL response's top-level errors as {code, message} (as userErrors look)
  function graphqlErrors(body) {
    return body.errors.map(function (e) { return { code: errorCode(e) || "ERROR", message: e.message }; });
  }
  function say(e) { return e.code + ": " + e.message; }
  // append <tag class=cls> to parent, its text set as text (never HTML)
  function el(parent, tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = String(text);
    parent.appendChild(node);
    return node;
  }

  // A connection read `size` at a time, newest page first, appended by "More".
  // o: {query, field (the connection's name), size, status (select of comma-joined statuses),
  //     more (button), error (line), count (line), body (the element rows go into),
  //     render(node) -> element, counted(totalCount, shown) -> text}. A newer load() drops
  // the answers of older ones.
  function pagedList(o) {
    var list = { after: null, generation: 0 };
    function page(generation) {
      var chosen = $(o.status).value;
      $(o.more).hidden = true;
      var variables = { status: chosen ? chosen.split(",") : null, first: o.size, after: list.after };
      return gql(o.query, variables).then(function (body) {
        if (generation !== list.generation) return;
        $(o.error).textContent = body.errors ? graphqlErrors(body).map(say).join(" ") : "";
        if (body.errors) return;
        var conn = body.data[o.field];
        var into = $(o.body);
        conn.edges.forEach(function (edge) { into.appendChild(o.render(edge.node)); });
        list.after = conn.pageInfo.endCursor;
        $(o.more).hidden = !conn.pageInfo.hasNextPage;
        $(o.count).textContent = o.counted(conn.totalCount, into.children.length);
      });
    }
    return {
      load: function () {
        list.generation++;
        list.after = null;
        $(o.body).textContent = "";
        return page(list.generation);
      },
      more: function () { return page(list.generation); },
    };
  }

  return { graphqlErrors: graphqlErrors, say: say, el: el, pagedList: pagedList };
};
