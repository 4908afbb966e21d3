// GraphiQL for this hub: asks for a token first (nothing is fetched without one), sends the
// purpose and case reference percent-encoded (header values must be Latin-1, purposes are
// Chinese), and runs subscriptions over a WebSocket (graphql-transport-ws), as clients do.
(function () {
  "use strict";
  var endpoint = new URL("graphql", document.baseURI);
  var socketUrl = endpoint.toString().replace(/^http/, "ws");
  var KEY = "hub.graphiql";
  var example = [
    "# Enterprise dossiers shared across departments. Run with Ctrl-Enter;",
    "# the Docs pane lists every type. Subscriptions (e.g. `subscription { changes",
    "# { changes { kind change sourceId } } }`) run over a WebSocket.",
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

  function saved() {
    try {
      return JSON.parse(sessionStorage.getItem(KEY) || "null");
    } catch (error) {
      return null;
    }
  }

  // What the start form holds, then what the Headers tab adds; the hub's free-text headers
  // percent-encoded, so that any text (整改验收核查) can be sent.
  function headersFor(start, edited) {
    var headers = { Authorization: "Bearer " + start.token };
    if (start.purpose) headers["X-Hub-Purpose"] = start.purpose;
    if (start.caseRef) headers["X-Hub-Case"] = start.caseRef;
    Object.keys(edited || {}).forEach(function (name) {
      if (edited[name] !== "" && edited[name] != null) headers[name] = String(edited[name]);
    });
    ["X-Hub-Purpose", "X-Hub-Case"].forEach(function (name) {
      if (headers[name] && !/%[0-9A-Fa-f]{2}/.test(headers[name])) {
        headers[name] = encodeURIComponent(headers[name]);
      }
    });
    return headers;
  }

  function isSubscription(params) {
    var text = (params.query || "").replace(/#[^\n]*/g, "");
    var named = params.operationName
      ? new RegExp("subscription\\s+" + params.operationName + "\\b").test(text)
      : /^\s*subscription\b/.test(text);
    return named;
  }

  // One subscription over its own socket: an async iterator of the `next` payloads; an
  // `error` message or a refused connection (4403 with the hub's reason) as an answer with
  // errors, so GraphiQL shows why.
  function subscribe(params, headers) {
    var queue = [];
    var waiting = null;
    var done = false;
    var socket = new WebSocket(socketUrl, "graphql-transport-ws");
    function push(item) {
      if (waiting) {
        var resolve = waiting;
        waiting = null;
        resolve(item);
      } else {
        queue.push(item);
      }
    }
    function finish(answer) {
      if (done) return;
      if (answer) push({ value: answer, done: false });
      done = true;
      push({ value: undefined, done: true });
    }
    socket.onopen = function () {
      socket.send(JSON.stringify({ type: "connection_init", payload: headers }));
    };
    socket.onmessage = function (event) {
      var message = JSON.parse(event.data);
      if (message.type === "connection_ack") {
        socket.send(JSON.stringify({ id: "1", type: "subscribe", payload: params }));
      } else if (message.type === "next") {
        push({ value: message.payload, done: false });
      } else if (message.type === "error") {
        finish({ errors: message.payload });
        socket.close(1000);
      } else if (message.type === "complete") {
        finish(null);
        socket.close(1000);
      } else if (message.type === "ping") {
        socket.send(JSON.stringify({ type: "pong" }));
      }
    };
    socket.onclose = function (event) {
      if (event.code === 1000) return finish(null);
      finish({
        errors: [{ message: "the hub closed the subscription: " + event.code + " " + (event.reason || "") }],
      });
    };
    return {
      next: function () {
        if (queue.length) return Promise.resolve(queue.shift());
        if (done) return Promise.resolve({ value: undefined, done: true });
        return new Promise(function (resolve) {
          waiting = resolve;
        });
      },
      return: function () {
        if (socket.readyState === WebSocket.OPEN) {
          socket.send(JSON.stringify({ id: "1", type: "complete" }));
          socket.close(1000);
        }
        done = true;
        return Promise.resolve({ value: undefined, done: true });
      },
      [Symbol.asyncIterator]: function () {
        return this;
      },
    };
  }

  function fetcherFor(start) {
    return function (params, options) {
      var headers = headersFor(start, options && options.headers);
      if (isSubscription(params)) return subscribe(params, headers);
      headers["Content-Type"] = "application/json";
      return fetch(endpoint, { method: "POST", headers: headers, body: JSON.stringify(params) })
        .then(function (response) {
          return response.json();
        });
    };
  }

  function explore(start) {
    var bar = document.getElementById("session");
    bar.hidden = false;
    bar.querySelector("[data-who]").textContent =
      "with your token" + (start.purpose ? " · purpose: " + start.purpose : "");
    bar.querySelector("button").onclick = function () {
      sessionStorage.removeItem(KEY);
      location.reload();
    };
    // A link may carry a query to open with: /graphql#query=...
    var linked = new URLSearchParams(location.hash.slice(1)).get("query");
    ReactDOM.createRoot(document.getElementById("graphiql")).render(
      React.createElement(GraphiQL, {
        fetcher: fetcherFor(start),
        query: linked || undefined,
        defaultQuery: example,
        defaultEditorToolsVisibility: "headers",
        defaultHeaders: "{}",
        shouldPersistHeaders: false,
      })
    );
  }

  function ask() {
    var form = document.getElementById("start");
    form.hidden = false;
    document.getElementById("graphiql").hidden = true;
    form.onsubmit = function (event) {
      event.preventDefault();
      var start = {
        token: form.elements.token.value.trim(),
        purpose: form.elements.purpose.value.trim(),
        caseRef: form.elements.caseRef.value.trim(),
      };
      if (!start.token) return;
      sessionStorage.setItem(KEY, JSON.stringify(start));
      form.hidden = true;
      document.getElementById("graphiql").hidden = false;
      explore(start);
    };
  }

  var start = saved();
  if (start && start.token) explore(start);
  else ask();
})();
