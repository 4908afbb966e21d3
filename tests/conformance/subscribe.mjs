// A subscription through graphql-ws's own client (the graphql-transport-ws protocol's
// reference implementation) against a running hub, as a department system in Node.js would
// open it: the bearer token in connection_init's payload, where hub/subscriptions.py reads
// it (a browser cannot set headers on a WebSocket).
//
//   HUB_TOKEN=TOKEN node subscribe.mjs --url ws://HOST:PORT/graphql [--events N]
//        [--query DOCUMENT] [--variables JSON] [--purpose TEXT] [--case TEXT]
//        [--timeout SECONDS]
//
// The token comes from the environment, not the command line, which other users of the
// machine can read (ps, /proc).
//
// stdout: each `next` payload as it came, one JSON line each. Exit 0 after N of them.
// On anything else one JSON line on stderr says what ended it, and the exit status is not 0:
//   1  {"errors": [...]}              the hub sent `error` for the subscription
//   1  {"closed": {"code", "reason"}} the socket closed (a refused connection_init: 4403 ...)
//   1  {"failed": "message"}          the client itself failed (e.g. a message it rejected)
//   2  {"usage": "..."}               the arguments are wrong
//   3  {"timeout": seconds}           nothing ended it in time (the script never hangs)
//   4  {"completed": n}               the hub completed the subscription after n events
//
// graphql-ws retries a connection closed with 4403 (Forbidden: "might grant access after
// retry") up to 5 times with a backoff of seconds; a conformance check wants the first
// answer, so retries are off.
import { parseArgs } from "node:util";
import { createClient } from "graphql-ws";
import WebSocket from "ws";

// The hub's own change feed, as tests/test_subscriptions.py follows it.
const CHANGES = `subscription($after: String, $kinds: [RecordKind!]) {
  changes(after: $after, kinds: $kinds) {
  endCursor changes { kind change sourceId owner { code }
  record { ... on Acceptance { verdict } } } } }`;

function finish(status, said) {
  process.stderr.write(JSON.stringify(said) + "\n", () => process.exit(status));
}

function settings() {
  const { values } = parseArgs({
    options: {
      url: { type: "string" },
      events: { type: "string", default: "1" },
      query: { type: "string", default: CHANGES },
      variables: { type: "string", default: "{}" },
      purpose: { type: "string" },
      case: { type: "string" },
      timeout: { type: "string", default: "20" },
    },
  });
  const variables = JSON.parse(values.variables);
  const events = Number(values.events), timeout = Number(values.timeout);
  const token = process.env.HUB_TOKEN;
  if (!values.url || !token) throw new Error("--url and HUB_TOKEN (in the environment) are required");
  if (!Number.isInteger(events) || events < 1) throw new Error("--events is a whole number above 0");
  if (!(timeout > 0)) throw new Error("--timeout is a number of seconds above 0");
  if (typeof variables !== "object" || variables === null || Array.isArray(variables)) {
    throw new Error("--variables is a JSON object");
  }
  return { ...values, token, variables, events, timeout };
}

function subscribe(options) {
  // Never hangs: whatever the hub does (or does not do), the script ends in time.
  setTimeout(() => finish(3, { timeout: options.timeout }), options.timeout * 1000);

  const connectionParams = { Authorization: `Bearer ${options.token}` };
  if (options.purpose !== undefined) connectionParams["X-Hub-Purpose"] = options.purpose;
  if (options.case !== undefined) connectionParams["X-Hub-Case"] = options.case;
  const client = createClient({
    url: options.url,
    webSocketImpl: WebSocket,
    connectionParams,
    retryAttempts: 0,
  });
  const ended = (status, said) => client.dispose().finally(() => finish(status, said));

  let received = 0;
  client.subscribe(
    { query: options.query, variables: options.variables },
    {
      next(payload) {
        received += 1;
        process.stdout.write(JSON.stringify(payload) + "\n");
        if (received === options.events) client.dispose().finally(() => process.exit(0));
      },
      error(problem) {
        if (Array.isArray(problem)) {
          ended(1, { errors: problem });
        } else if (problem && typeof problem.code === "number") {
          // A CloseEvent of `ws`: the code and reason the hub closed with.
          ended(1, { closed: { code: problem.code, reason: String(problem.reason) } });
        } else {
          // An Error, or an ErrorEvent of `ws` (connection refused...): both have a message.
          ended(1, { failed: String(problem?.message ?? problem) });
        }
      },
      complete() {
        if (received < options.events) ended(4, { completed: received });
      },
    },
  );
}

let options;
try {
  options = settings();
} catch (wrong) {
  finish(2, { usage: wrong.message });
}
if (options) subscribe(options);
