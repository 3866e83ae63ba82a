"""A minimal external AutoBot agent: registers, answers every REQUEST by echoing it, sends
heartbeats, and signs its frames when given a secret. Needs only the `websockets` package.

    python examples/echo_agent.py --url ws://127.0.0.1:8000 --token abt_... --agent-id echo
    python examples/echo_agent.py ... --secret s3cret   # when the agent has a secret in the admin

Then, from anywhere:

    curl -X POST 'http://127.0.0.1:8000/api/agents/messages?wait=true' \\
      -H 'Authorization: Bearer abt_...' -H 'Content-Type: application/json' \\
      -d '{"header": {"message_type": "REQUEST", "recipient_id": "echo"},
           "payload": {"action": "echo", "data": {"x": 1}}}'
"""

import argparse
import asyncio
import hashlib
import hmac
import json
import logging
import uuid
from datetime import UTC, datetime

import websockets

log = logging.getLogger("echo_agent")


def canonical(obj) -> bytes:
    """Sorted keys, no whitespace, UTF-8 as-is: what the server signs and verifies."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


class Agent:
    def __init__(self, agent_id: str, secret: str | None):
        self.agent_id = agent_id
        self.secret = secret

    def message(self, message_type: str, action: str, data: dict | None = None, **header) -> str:
        wire = {
            "header": {
                "message_id": str(uuid.uuid4()),
                "message_type": message_type,
                "priority": header.pop("priority", "NORMAL"),
                "sender_id": self.agent_id,
                "timestamp": datetime.now(UTC).isoformat(),
                **header,
            },
            "payload": {"action": action, "data": data or {}, "context": {}},
        }
        if self.secret:  # the signature covers everything but itself
            wire["header"]["signature"] = hmac.new(self.secret.encode(), canonical(wire), hashlib.sha256).hexdigest()
        return json.dumps(wire)

    def answer(self, request: dict) -> str:
        return self.message(
            "RESPONSE", request["payload"]["action"], {"echo": request["payload"]["data"]},
            correlation_id=request["header"]["message_id"], priority=request["header"]["priority"],
        )


async def heartbeat(ws, agent: Agent, every: float) -> None:
    while True:
        await asyncio.sleep(every)
        await ws.send(agent.message("HEARTBEAT", "heartbeat"))


# Refusals that pass: the server's replay check cannot reach its Redis (a signed registration is
# refused rather than let through unchecked), or the agent sent too fast.
RETRY_CODES = {"replay_check_unavailable", "rate_limited"}


async def register(ws, agent: Agent, capabilities: list[str], attempts: int = 30) -> dict:
    for _ in range(attempts):
        await ws.send(agent.message("NOTIFICATION", "agent.register",
                                    {"name": f"Echo ({agent.agent_id})", "capabilities": capabilities,
                                     "version": "1.0"}))
        answer = json.loads(await ws.recv())
        if answer["header"]["message_type"] == "RESPONSE":
            return answer
        if answer["payload"]["data"].get("code") not in RETRY_CODES:
            break
        log.warning("registration refused for now (%s); trying again", answer["payload"]["data"]["code"])
        await asyncio.sleep(2)
    raise SystemExit(f"registration refused: {answer['payload']['data']}")


async def run(url: str, token: str, agent_id: str, secret: str | None, capabilities: list[str]) -> None:
    agent = Agent(agent_id, secret)
    async with websockets.connect(
        f"{url.rstrip('/')}/ws/agents/?agent_id={agent_id}", additional_headers={"Authorization": f"Bearer {token}"}
    ) as ws:
        registered = await register(ws, agent, capabilities)
        every = registered["payload"]["data"]["heartbeat_seconds"]
        log.info("registered as %s; heartbeat every %ss", agent_id, every)
        beats = asyncio.create_task(heartbeat(ws, agent, every))
        try:
            async for raw in ws:
                message = json.loads(raw)
                kind = message["header"]["message_type"]
                if kind == "REQUEST":
                    await ws.send(agent.answer(message))
                elif kind == "ERROR":
                    log.warning("server says: %s", message["payload"]["data"])
                else:
                    log.info("%s %s", kind, message["payload"]["action"])
        finally:
            beats.cancel()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="ws://127.0.0.1:8000")
    parser.add_argument("--token", required=True, help="an API token (manage.py create_api_token USER)")
    parser.add_argument("--agent-id", default="echo")
    parser.add_argument("--secret", default=None, help="the agent's signing secret, if it has one")
    parser.add_argument("--capability", action="append", default=None, help="repeatable; default: echo")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    asyncio.run(run(args.url, args.token, args.agent_id, args.secret, args.capability or ["echo"]))


if __name__ == "__main__":
    main()
