// Starts GraphiQL against this hub's /graphql, with an example dossier query.
(function () {
  var endpoint = new URL("graphql", document.baseURI).toString();
  var example = [
    "# Enterprise dossiers shared across departments. Run with Ctrl-Enter;",
    "# the Docs pane lists every type. Put a token in the Headers tab below",
    "# (demo tokens: var/demo-tokens.txt), then refetch the schema (↻ on the left).",
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
      // `hub serve --demo` writes demo tokens to var/demo-tokens.txt.
      defaultHeaders: '{\n  "Authorization": "Bearer <token>",\n  "X-Hub-Purpose": ""\n}',
      shouldPersistHeaders: false,
    })
  );
})();
