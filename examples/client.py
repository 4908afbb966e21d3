"""A department system's first client of the hub, to start from: read an enterprise's
rectification orders and their acceptance (the canonical case), then follow the change feed
live. One WebSocket carries both (graphql-transport-ws); `pip install "gql[websockets]"`.

    HUB_URL=ws://127.0.0.1:8000/graphql HUB_TOKEN=... python examples/client.py 9133010985H96UB001

HUB_PURPOSE (e.g. "rectification-check: 整改验收核查") states the purpose conditional fields
need; the hub takes it percent-encoded UTF-8 or plain ASCII. Stop with Ctrl-C; pass --once to
stop after the first change (as the test suite does).
"""

import asyncio
import os
import sys
from typing import Any

from gql import Client, GraphQLRequest
from gql.transport.websockets import WebsocketsTransport

DOSSIER = """
query Orders($uscc: String!) {
  enterprise(uscc: $uscc) {
    name
    rectifications { owner { code } requirement deadline status overdue
                     acceptance { verdict acceptedOn opinion } }
  }
}"""
CHANGES = """
subscription Changes($after: String) {
  changes(after: $after, kinds: [RECTIFICATION, ACCEPTANCE]) {
    endCursor
    changes { kind change owner { code } sourceId uscc }
  }
}"""
PAGE = "query Page($after: String) { changes(after: $after, first: 500) { endCursor hasMore } }"


async def main(uscc: str, once: bool) -> None:
    headers = {"Authorization": f"Bearer {os.environ['HUB_TOKEN']}"}
    if purpose := os.environ.get("HUB_PURPOSE"):
        headers["X-Hub-Purpose"] = purpose
    transport = WebsocketsTransport(
        url=os.environ.get("HUB_URL", "ws://127.0.0.1:8000/graphql"),
        subprotocols=[WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL],
        init_payload=headers,
    )
    async with Client(transport=transport) as session:
        # Withheld fields come back null, each with its reason in an error: show both.
        answer = await session.execute(
            GraphQLRequest(DOSSIER, variable_values={"uscc": uscc}), get_execution_result=True
        )
        report(answer.data, answer.errors or [])
        # Follow from now on: the feed's end first (a system that keeps its cursor starts
        # from there instead, and misses nothing while it was away).
        after, more = None, True
        while more:
            page = await session.execute(GraphQLRequest(PAGE, variable_values={"after": after}))
            after, more = page["changes"]["endCursor"], page["changes"]["hasMore"]
        live = GraphQLRequest(CHANGES, variable_values={"after": after})
        async for page in session.subscribe(live):
            for change in page["changes"]["changes"]:
                print(
                    f"{change['change']} {change['kind']} {change['sourceId']} "
                    f"of {change['uscc']} by {change['owner']['code']}",
                    flush=True,
                )
                if once:
                    return


def report(data: Any, errors: list[dict[str, Any]]) -> None:
    enterprise = data["enterprise"]
    print(enterprise["name"])
    for order in enterprise["rectifications"]:
        accepted = order["acceptance"] or {}
        print(
            f"  {order['owner']['code']}: {order['requirement']} by {order['deadline']} "
            f"{order['status']}{' OVERDUE' if order['overdue'] else ''} "
            f"{accepted.get('verdict') or ''}"
        )
    for error in errors:
        print(f"  withheld {error['extensions'].get('field')}: {error['extensions']['code']}")
    print("waiting for changes...", flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], "--once" in sys.argv))
