"""Safe fixtures for the schemathesis run (loaded with SCHEMATHESIS_HOOKS by
tests/platform/test_schemathesis.py). Every operation is exercised; the ones that run commands,
type into a shell, fetch URLs or revoke tokens get harmless values in place of the generated ones:

- commands (execute, the terminal agent) become `echo schemathesis`; typed input becomes that line;
- crawls fetch the loopback site the test serves, not whatever host was generated;
- revoking the caller's own token revokes a spare token instead (the run would otherwise lose its
  credentials halfway and report 401s as findings).
"""

import os
import re

import schemathesis

SAFE_COMMAND = "echo schemathesis"


def _env_int(name: str) -> int | None:
    value = os.environ.get(name)
    return int(value) if value else None


@schemathesis.hook
def map_case(context, case):
    key = (case.operation.method.upper(), case.operation.path)
    body = case.body if isinstance(case.body, dict) else None
    if key == ("DELETE", "/api/tokens/{token_id}"):
        params = case.path_parameters or {}
        if params.get("token_id") == _env_int("ST_TOKEN_ID"):
            case.path_parameters = {**params, "token_id": _env_int("ST_SPARE_TOKEN_ID")}
    elif key == ("POST", "/api/terminal/sessions/{session_id}/execute") and body is not None:
        command = body.get("command")
        if isinstance(command, str) and command.strip() and len(command) <= 65536:  # invalid ones stay so
            body["command"] = SAFE_COMMAND
        if isinstance(body.get("cwd"), str):
            body["cwd"] = None
    elif key == ("POST", "/api/terminal/sessions/{session_id}/input") and body is not None:
        if isinstance(body.get("text"), str):
            body["text"] = SAFE_COMMAND + "\r"
    elif key == ("POST", "/api/knowledge/crawls") and body is not None:
        if isinstance(body.get("url"), str) and re.match(r"(?i)https?://[^\s/]", body["url"]):
            body["url"] = os.environ["ST_SITE_URL"]  # invalid ones stay invalid (and are refused)
    elif key == ("POST", "/api/agents/messages") and body is not None:
        payload = body.get("payload")
        data = payload.get("data") if isinstance(payload, dict) else None
        if isinstance(data, dict) and "command" in data:
            data["command"] = SAFE_COMMAND
    return case
