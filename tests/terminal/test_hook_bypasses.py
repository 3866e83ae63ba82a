"""Attempts to get a DANGEROUS command past the hook of a real RESTRICTED (or ELEVATED) session
(real bash, real risk rules, real services). Each ran before it was fixed."""

import asyncio
import os
import re
import shutil

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


_ESCAPES = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\r")


def printed_lines(out: str) -> list[str]:
    """The lines of `out` as the user sees them (terminal escapes and carriage returns removed).
    A program's output may follow its own line directly or, on a slow machine, the echo of the
    marker line `run` typed ahead while it ran: `\\r1\\r\\n` or `\\r\\n1\\r\\n`."""
    return _ESCAPES.sub("", out).split("\n")


async def _open(user, level: str | None = None) -> Session:
    """A live session at `level` (the user's default, RESTRICTED, when None), at its first prompt."""
    session = await services.session_open(user=user, **({"security_level": level} if level else {}))
    live = registry.get(session.pk)
    sh = Session(live, live.proc.subscribe(replay=True))
    seen = ""
    while "@autobot:" not in seen:
        seen += await asyncio.wait_for(sh.sub.read(), 10)
    return sh


@pytest.fixture
async def restricted(terminal_user):
    return await _open(terminal_user)


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


async def _blocked_and_pager_unset(sh: Session, line: str) -> None:
    """Set, GIT_PAGER would run the next time git (or man, or less) pages its output."""
    assert "autobot: blocked" in await sh.run(line)
    assert "pager=[]" in await sh.run('echo "pager=[$GIT_PAGER]"')


@pytest.mark.parametrize("line", [
    f"export GIT_PAGER='{HARMLESS_DANGER}'",
    f"export {{GIT_PAGER,PAGER}}='{HARMLESS_DANGER}'",  # brace expansion names both
])
async def test_a_pager_variable_naming_a_dangerous_command_is_never_set(restricted, line):
    await _blocked_and_pager_unset(restricted, line)


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


@pytest.fixture
async def elevated(staff):
    return await _open(staff, "ELEVATED")


@pytest.mark.parametrize(
    "line",
    [
        # Ex mode's -s is "silent", not "-s SCRIPT": the -c after it used to go unseen.
        f"vim -es -c '!{HARMLESS_DANGER}' -c 'q!'",
        f"gdb -batch -ex 'she {HARMLESS_DANGER}'",  # gdb takes any unique prefix of `shell`
        f"env -S'{HARMLESS_DANGER}'",  # -S with its string attached
    ],
)
async def test_commands_run_by_editors_debuggers_and_env_are_blocked(restricted, line):
    out = await restricted.run(line)
    assert RAN not in out and "autobot: blocked" in out


async def test_a_name_reference_to_a_pager_variable_is_refused(restricted):
    out = await restricted.run("declare -n ref=GIT_PAGER")
    assert "autobot: blocked" in out
    await restricted.run(f"export ref='{HARMLESS_DANGER}'")
    assert "pager=[]" in await restricted.run('echo "pager=[$GIT_PAGER]"')


async def test_hashing_a_dangerous_program_under_a_harmless_name_is_refused(restricted):
    mkfs = shutil.which("mkfs.ext4")
    if mkfs is None:
        pytest.skip("mkfs.ext4 is not installed")
    assert "autobot: blocked" in await restricted.run(f"hash -p {mkfs} ls")
    out = await restricted.run("ls /dev/autobot-test-none")
    assert RAN not in out


async def test_the_hooks_cache_of_allowed_commands_cannot_be_filled_in(restricted):
    # A command in the cache runs without being asked about; an alias hides it from the line.
    out = await restricted.run(f'let "__autobot_ok[{HARMLESS_DANGER}]=1"')
    assert "autobot: blocked" in out
    assert "autobot: blocked" in await restricted.run(f"alias zz='{HARMLESS_DANGER}'")
    out = await restricted.run("true; zz")
    assert RAN not in out


async def test_a_default_value_naming_a_dangerous_pager_is_blocked_at_elevated(elevated):
    await _blocked_and_pager_unset(elevated, f'export GIT_PAGER="${{UNSET_X:-{HARMLESS_DANGER}}}"')


async def test_a_cache_entry_written_by_arithmetic_does_not_let_a_command_through(elevated):
    # Bash arithmetic writes any variable named in the string it evaluates, the hook's cache of
    # allowed commands included; an entry only counts when its value is the session's secret.
    # (Stored with `read`: `x='__autobot_ok[…]=1'; (( x ))` on one line is refused by the rules.)
    await elevated.run(f"read -r x <<< '__autobot_ok[{HARMLESS_DANGER}]=1'; (( x ))")
    await elevated.run(f"echo '{HARMLESS_DANGER}' > poisoned.sh")
    out = await elevated.run("source poisoned.sh")
    assert RAN not in out and "autobot: blocked" in out


# Run-time names, descriptors and the shell's own input (terminal/risk/rules/expansions.py): HIGH,
# so blocked at RESTRICTED, only where bash expands or redirects them; quoted, they are data.


async def test_run_time_syntax_in_quotes_and_comments_is_data_and_runs(restricted):
    out = await restricted.run("echo '${!x} exec <f >&$fd' ran-$((6*7)) # exec <f")
    assert "autobot: blocked" not in out and "${!x} exec <f >&$fd ran-42" in out
    await restricted.run("printf 'exec <steps.sh\\n' > notes.txt")
    out = await restricted.run("grep -c 'exec <' notes.txt")
    assert "autobot: blocked" not in out and "1" in printed_lines(out)  # one line found


async def test_a_variable_named_at_run_time_is_blocked(restricted):
    out = await restricted.run('x=HOME; echo "got-${!x}"')
    assert "autobot: blocked" in out and "got-/" not in out


@pytest.mark.parametrize("line", [
    "exec <steps.sh",
    "e'x'ec <steps.sh",  # ran before: the raw-line rule wanted `exec` spelled plainly
    "builtin exec 0<steps.sh",
    "exec 3<steps.sh; exec 0>&3",  # ran before: `0>&3` duplicates 3 onto 0 as `0<&3` does
])
async def test_the_shells_input_cannot_be_switched_to_a_file(restricted, line):
    # Had it run, the shell would read the file's line, then its end, and exit (no marker ever).
    await restricted.run("printf 'echo from-file-$((2+3))\\n' > steps.sh")
    out = await restricted.run(line)
    assert "autobot: blocked" in out and "from-file-5" not in out
    assert "still-7" in await restricted.run("echo still-$((3+4))")


async def test_an_alias_for_exec_is_judged_when_it_runs(restricted):
    await restricted.run("printf 'echo from-file-$((2+3))\\n' > steps.sh; alias e=exec")
    out = await restricted.run("e <steps.sh")
    assert "autobot: blocked" in out and "from-file-5" not in out


# The hook's own variables (terminal/risk/rules/hookvars.py): reading them (its secret) or computing
# with them is DANGEROUS where bash expands or evaluates them; a quoted mention is data.


async def test_a_quoted_mention_of_the_hooks_variables_is_data_and_runs(restricted):
    await restricted.run("printf '%s\\n' 'uses $__autobot_secret' > notes.txt")
    out = await restricted.run("echo '$__autobot_secret (( __autobot_ok[x]=1 ))' ran-$((6*7)) # ${#__autobot_secret}")
    assert "autobot: blocked" not in out and "$__autobot_secret (( __autobot_ok[x]=1 )) ran-42" in out
    out = await restricted.run("grep -c '$__autobot_' notes.txt")
    assert "autobot: blocked" not in out and "1" in printed_lines(out)


@pytest.mark.parametrize("line", [
    "printf 'g%st-[%s]\\n' o \"$__autobot_secret\"",
    "printf 'g%st-[%s]\\n' o ${#__autobot_secret}",
    "x=abc; printf 'g%st-[%s]\\n' o ${x:__autobot_n}",
    "cat <<EOF\ng${nothing}ot-[$__autobot_secret]\nEOF",
    # Its delimiter also quoted on the line (review: SAFE when merged; bash expands this body).
    "cat <<'EOF'; cat <<EOF\nhi\nEOF\ng${nothing}ot-[$__autobot_secret]\nEOF",
])
async def test_a_real_read_of_the_hooks_variables_is_blocked(restricted, line):
    out = await restricted.run(line)  # what it would print, "got-[", is not in the line as typed
    assert "autobot: blocked" in out and "got-[" not in out



@pytest.mark.parametrize("line", ["declare -p", "set", "readonly", "typeset -A", "declare +x", "set -x"])
async def test_listing_every_variable_is_blocked_as_it_would_print_the_secret(restricted, line):
    out = await restricted.run(line)  # these printed the secret and the hook's cache (review: SAFE before)
    assert "autobot: blocked" in out and "__autobot_secret=" not in out and "__autobot_ok" not in out

@pytest.mark.parametrize("line", [
    "v=__autobot_secret; printf 'g%st-[%s]\\n' o \"${!v}\"",  # ran before at ELEVATED (HIGH)
    "v=__autobot_secret; (( v )) || printf 'g%st-[%s]\\n' o $?",  # bash's error shows the value
])
async def test_a_hook_variable_named_by_another_is_blocked_at_elevated(elevated, line):
    out = await elevated.run(line)
    assert "autobot: blocked" in out and "got-[" not in out and "error token" not in out


async def test_a_hook_variable_read_from_a_sourced_file_is_blocked_when_it_runs(restricted):
    # The line only writes and sources a file (MODERATE); the hook judges the command in it.
    out = await restricted.run("printf '%s\\n' 'printf \"g%st-[%s]\\n\" o \"$__autobot_secret\"' > s.sh; source s.sh")
    assert "autobot: blocked" in out and "got-[" not in out
