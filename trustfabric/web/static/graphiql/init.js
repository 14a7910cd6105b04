// GraphiQL over this service's /graphql, queries over HTTP and subscriptions over
// graphql-ws; every asset comes from /static, so the page works without internet.
"use strict";
(function () {
  const url = new URL("/graphql", window.location.href);
  const ws = new URL(url);
  ws.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  const fetcher = GraphiQL.createFetcher({ url: url.href, subscriptionUrl: ws.href });
  const example = [
    "# Paste a token into Headers below: {\"Authorization\": \"Bearer tf_…\"}",
    "query OnCall {",
    "  anomalies(first: 5, status: OPEN) {",
    "    edges { node { id anomalyId severity kind } }",
    "  }",
    "}",
    "",
  ].join("\n");
  ReactDOM.createRoot(document.getElementById("graphiql")).render(
    React.createElement(GraphiQL, {
      fetcher: fetcher,
      defaultQuery: example,
      defaultEditorToolsVisibility: true,
      isHeadersEditorEnabled: true,
      shouldPersistHeaders: true,
      inputValueDeprecation: true,
    }),
  );
})();
