// The graphql-http server audits (the GraphQL over HTTP specification's reference
// conformance suite) against a running hub, as a department would call it: the bearer
// token is added to every request. Prints one JSON line per audit:
// {"id", "name", "status": "ok" | "warn" | "notice" | "error", "reason"}.
//   node audit.mjs URL TOKEN
import { serverAudits } from "graphql-http";

const [url, token] = process.argv.slice(2);
if (!url || !token) {
  console.error("usage: node audit.mjs URL TOKEN");
  process.exit(2);
}

function withToken(input, init = {}) {
  const headers = new Headers(init.headers);
  headers.set("authorization", `Bearer ${token}`);
  return fetch(input, { ...init, headers });
}

// One audit at a time, as a client sends its requests (all at once, the hub's limit of
// concurrent requests per client would answer some with 429).
for (const audit of serverAudits({ url, fetchFn: withToken })) {
  const result = await audit.fn();
  const line = { id: result.id, name: result.name, status: result.status };
  if (result.status !== "ok") {
    line.reason = result.reason;
    if (result.response) {
      line.response = { status: result.response.status, headers: Object.fromEntries(result.response.headers), body: await result.response.text() };
    }
  }
  console.log(JSON.stringify(line));
}
