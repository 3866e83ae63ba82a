"""Attempts to get a DANGEROUS command past the hook of a real RESTRICTED session (real bash,
real risk rules, real services). Each ran before it was fixed."""

import asyncio
import os

import pytest

from terminal import services
from terminal.services import live as registry

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]

HARMLESS_DANGER = "mkfs.ext4 /dev/autobot-test-none"
RAN = "/dev/autobot-test-none does not exist"  # what mke2fs says when it does run


class Session:
    def __init__(self, live, sub):
        self.live, self.sub, self.n = live, sub, 0

    async def run(self, line: str) -> str:
        """Type a line, then a marker; return everything printed up to the marker."""
        self.n += 1
        marker = f"MARK{self.n}END"
        self.live.proc.write(f"{line}\n")
        self.live.proc.write(f"echo {marker[:3]}''{marker[3:]}\n")
        seen = ""
        while marker not in seen.replace(f"{marker[:3]}''{marker[3:]}", ""):
            chunk = await asyncio.wait_for(self.sub.read(), 20)
            assert chunk is not None, seen
            seen += chunk
        return seen


@pytest.fixture
async def restricted(terminal_user):
    session = await services.session_open(user=terminal_user)
    live = registry.get(session.pk)
    sh = Session(live, live.proc.subscribe(replay=True))
    seen = ""
    while "@autobot:" not in seen:
        seen += await asyncio.wait_for(sh.sub.read(), 10)
    return sh


async def test_setting_comp_line_does_not_switch_the_hook_off(restricted):
    await restricted.run("COMP_LINE=x")
    out = await restricted.run(HARMLESS_DANGER)
    assert RAN not in out and "autobot: blocked" in out


async def test_history_switched_off_gives_subshells_no_free_pass(restricted):
    await restricted.run("HISTSIZE=0")
    out = await restricted.run(f"true; ({HARMLESS_DANGER})")
    assert RAN not in out
    out = await restricted.run(f"true | {HARMLESS_DANGER}")
    assert RAN not in out
    # Plain commands still run (checked one by one).
    assert "still-4" in await restricted.run("echo still-$((2+2))")


async def test_a_mapfile_callback_is_assessed(restricted):
    out = await restricted.run(f"mapfile -C '({HARMLESS_DANGER}) #' -c 1 a <<< x")
    assert RAN not in out and "autobot: blocked" in out


async def test_a_pager_variable_naming_a_dangerous_command_is_never_set(restricted):
    # Set, it would run the next time git (or man, or less) pages its output.
    out = await restricted.run(f"export GIT_PAGER='{HARMLESS_DANGER}'")
    assert "autobot: blocked" in out
    assert "pager=[]" in await restricted.run('echo "pager=[$GIT_PAGER]"')


async def test_ordinary_lines_with_subshells_and_pipes_still_run(restricted):
    out = await restricted.run("echo ok-$((2+2)) | cat; (echo sub-$((3+3))); x=$(echo cs-$((4+4))); echo $x")
    assert "ok-4" in out and "sub-6" in out and "cs-8" in out


async def test_the_shell_gets_none_of_the_servers_environment(terminal_user, monkeypatch):
    monkeypatch.setenv("AUTOBOT_SECRET_KEY", "leak-me-secret")
    monkeypatch.setenv("DATABASE_URL", "postgres://u:leak-me-db@h/d")
    monkeypatch.setenv("REDIS_URL", "redis://:leak-me-redis@h")
    session = await services.session_open(user=terminal_user)
    live = registry.get(session.pk)
    sh = Session(live, live.proc.subscribe(replay=True))
    out = await sh.run("env; echo")
    assert "leak-me" not in out and "HOME=" in out
    result = await services.command_run(user=terminal_user, command="env", session=session)
    assert "leak-me" not in result["output"] and "HOME=" in result["output"]
    assert os.environ["AUTOBOT_SECRET_KEY"] == "leak-me-secret"


@pytest.mark.parametrize(
    "line",
    [
        f"echo /dev/autobot-test-none | xargs {HARMLESS_DANGER.split()[0]}",
        f"echo ${{x:-$({HARMLESS_DANGER})}}",
        f'echo "${{x/a/$({HARMLESS_DANGER})}}"',
        f"script -qc '{HARMLESS_DANGER}' /dev/null",
        f"git -c core.pager='{HARMLESS_DANGER}' --version",
    ],
)
async def test_commands_named_in_arguments_are_blocked(restricted, line):
    out = await restricted.run(line)
    assert RAN not in out and "autobot: blocked" in out
    # The session is still usable afterwards.
    assert "next-6" in await restricted.run("echo next-$((3+3))")
