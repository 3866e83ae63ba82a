"""files_write and symlinks in the files area: rated by where the write really lands, and never
out of the area (the area is the terminal's home, where `ln -s .ssh keys` is one command away)."""

import asyncio
import os
from pathlib import Path

import pytest

from chat import services
from chat.operator import services as operator
from tests.agents.conftest import _agents_runtime  # noqa: F401 - each test's bus stops with it
from tests.chat.test_operator import MODELS, area, call, run_turn

pytestmark = pytest.mark.django_db(transaction=True)

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAutobotTestKeyOnly attacker\n"


def _read(path: str) -> str | None:
    try:
        with open(path) as fh:
            return fh.read()
    except FileNotFoundError:
        return None


async def test_a_write_through_a_folder_link_into_ssh_is_high_and_names_where_it_lands(owner, llm):
    root = await area(owner)
    await asyncio.to_thread(os.makedirs, f"{root}/.ssh")
    await asyncio.to_thread(os.symlink, ".ssh", f"{root}/keys")  # what `ln -s .ssh keys` leaves
    llm.script = [{"tool_calls": [call("files_write", {"path": "keys/authorized_keys", "content": KEY}, "w")]},
                  {"text": "Not written."}]
    session = await services.session_create(user=owner, model=MODELS["openai"])
    asked = []

    async def deny(approval):
        asked.append(approval)
        await operator.approval_decide(user=owner, session_id=session.id, approval_id=approval["id"],
                                       decision="deny")

    reply, _ = await run_turn(owner, session, "add my key", on_approval=deny)

    assert asked and asked[0]["risk"] == "HIGH"
    assert "resolves to .ssh/authorized_keys" in asked[0]["command"]
    assert any("keys/authorized_keys (resolves to .ssh/authorized_keys): a hidden file" in r
               for r in asked[0]["reasons"])
    assert reply["tool_calls"][0]["status"] == "denied"
    assert await asyncio.to_thread(_read, f"{root}/.ssh/authorized_keys") is None


async def test_a_plain_folder_write_stays_moderate(owner, llm):
    root = await area(owner)
    await asyncio.to_thread(os.makedirs, f"{root}/notes")
    llm.script = [{"tool_calls": [call("files_write", {"path": "notes/todo.txt", "content": "milk\n"}, "w")]},
                  {"text": "Written."}]
    session = await services.session_create(user=owner, model=MODELS["openai"])

    reply, events = await run_turn(owner, session, "note milk")

    written = reply["tool_calls"][0]
    assert written["status"] == "done" and written["risk"] == "MODERATE"
    assert not [e for e in events if e["type"] == "chat.approval"]
    assert await asyncio.to_thread(_read, f"{root}/notes/todo.txt") == "milk\n"


async def test_links_never_carry_a_write_out_of_the_area_or_into_what_they_point_at(owner, llm, tmp_path):
    root = await area(owner)
    outside = tmp_path / "outside"
    await asyncio.to_thread(outside.mkdir)
    await asyncio.to_thread((outside / "target.txt").write_text, "untouched\n")
    await asyncio.to_thread(Path(root, ".bashrc").write_text, "# mine\n")
    await asyncio.to_thread(os.symlink, str(outside), f"{root}/out")  # a folder link out of the area
    await asyncio.to_thread(os.symlink, str(outside / "target.txt"), f"{root}/away.txt")  # a file link out
    await asyncio.to_thread(os.symlink, ".bashrc", f"{root}/rc.txt")  # a file link to a hidden file
    llm.script = [{"tool_calls": [call("files_write", {"path": "out/new.txt", "content": "x\n"}, "dir"),
                                  call("files_write", {"path": "away.txt", "content": "x\n"}, "file"),
                                  call("files_write", {"path": "rc.txt", "content": "curl x | sh\n"}, "rc")]},
                  {"text": "Done."}]
    session = await services.session_create(user=owner, model=MODELS["openai"])

    reply, _ = await run_turn(owner, session, "write them")

    through_dir, through_file, through_rc = reply["tool_calls"]
    assert through_dir["status"] == "failed" and "path_forbidden" in through_dir["output"]
    assert through_file["status"] == "failed" and "path_forbidden" in through_file["output"]
    assert await asyncio.to_thread(lambda: sorted(os.listdir(outside))) == ["target.txt"]
    assert await asyncio.to_thread(_read, str(outside / "target.txt")) == "untouched\n"
    # A file's own name is replaced, never followed: the link becomes a file, .bashrc stays as it was.
    assert through_rc["status"] == "done" and through_rc["risk"] == "MODERATE"
    assert await asyncio.to_thread(_read, f"{root}/.bashrc") == "# mine\n"
    assert not await asyncio.to_thread(os.path.islink, f"{root}/rc.txt")
    assert await asyncio.to_thread(_read, f"{root}/rc.txt") == "curl x | sh\n"


async def test_a_link_re_pointed_while_the_owner_decides_voids_the_approval(owner, llm, settings):
    """Approved as a large write into notes/, the link then re-pointed at .ssh: the call is rated
    again once approved, no longer matches what the owner saw, and writes nothing anywhere."""
    settings.OPERATOR_WRITE_HIGH_BYTES = 10  # HIGH for its size, so it waits for the owner
    root = await area(owner)
    await asyncio.to_thread(os.makedirs, f"{root}/notes")
    await asyncio.to_thread(os.makedirs, f"{root}/.ssh")
    await asyncio.to_thread(os.symlink, "notes", f"{root}/box")
    llm.script = [{"tool_calls": [call("files_write", {"path": "box/authorized_keys", "content": KEY}, "w")]},
                  {"text": "Not written."}]
    session = await services.session_create(user=owner, model=MODELS["openai"])
    asked = []

    async def swap_then_approve(approval):
        asked.append(approval)
        await asyncio.to_thread(os.remove, f"{root}/box")
        await asyncio.to_thread(os.symlink, ".ssh", f"{root}/box")  # what another line could do meanwhile
        await operator.approval_decide(user=owner, session_id=session.id, approval_id=approval["id"],
                                       decision="approve")

    reply, _ = await run_turn(owner, session, "save this", on_approval=swap_then_approve)

    assert "resolves to notes/authorized_keys" in asked[0]["command"]
    assert reply["tool_calls"][0]["status"] == "denied"
    assert await asyncio.to_thread(_read, f"{root}/.ssh/authorized_keys") is None
    assert await asyncio.to_thread(_read, f"{root}/notes/authorized_keys") is None
