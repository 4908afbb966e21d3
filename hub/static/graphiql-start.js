// Starts GraphiQL against this hub's /graphql, with an example dossier query.
(function () {
  var endpoint = new URL("graphql", document.baseURI).toString();
  var example = [
    "# Enterprise dossiers shared across departments. Run with Ctrl-Enter;",
    "# the Docs pane lists every type. Credentials go in the Headers tab.",
    "query Dossier {",
    "  enterprises(first: 3) {",
    "    edges {",
    "      node {",
    "        uscc",
    "        name",
    "        rectifications {",
    "          owner { nameEn }",
    "          deadline",
    "          status",
    "          acceptance { verdict acceptedOn opinion }",
    "        }",
    "      }",
    "    }",
    "  }",
    "}",
    "",
  ].join("\n");
  ReactDOM.createRoot(document.getElementById("graphiql")).render(
    React.createElement(GraphiQL, {
      fetcher: GraphiQL.createFetcher({ url: endpoint }),
      defaultQuery: example,
      defaultEditorToolsVisibility: "headers",
      shouldPersistHeaders: false,
    })
  );
})();
