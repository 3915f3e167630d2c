// Starts GraphiQL against this server's /graphql (HTTP and graphql-transport-ws).
// An admin token goes in the Headers tab: {"Authorization": "Bearer <token>"}.
(function () {
  "use strict";
  var url = window.location.origin + "/graphql";
  var wsUrl = url.replace(/^http/, "ws");
  var fetcher = GraphiQL.createFetcher({ url: url, subscriptionUrl: wsUrl });
  var root = ReactDOM.createRoot(document.getElementById("graphiql"));
  root.render(
    React.createElement(GraphiQL, {
      fetcher: fetcher,
      defaultEditorToolsVisibility: true,
      shouldPersistHeaders: false,
    })
  );
})();
