"""terminal/risk.py: commands named indirectly — in variables programs run (pagers, editors,
ssh commands), in options of package managers, editors and debuggers — are judged by the
command they name, while the everyday forms stay SAFE."""

import pytest

from terminal.policy import Level, decide
from terminal.risk import Risk, Trait, assess

S, M, H, D = Risk.SAFE, Risk.MODERATE, Risk.HIGH, Risk.DANGEROUS
X = "mkfs.ext4 /dev/autobot-test-none"  # DANGEROUS by the rules, harmless if it ever ran

CASES = [
    # variables whose value programs run through a shell
    (f"GIT_PAGER='{X}' git log", D),
    (f"export GIT_PAGER='{X}'", D),
    (f"declare -x PAGER='{X}'", D),
    (f"env GIT_SSH_COMMAND='{X}' git fetch", D),
    (f"env -u LANG EDITOR='{X}' crontab -e", D),
    (f"MANPAGER='{X}' man ls", D),
    (f"LESSOPEN='|{X} %s' less notes.txt", D),
    ("GIT_PAGER=bash git log", H),  # an interactive shell the hook cannot see into
    ('GIT_PAGER="$CMD" git log', H),  # built at run time
    ("GIT_PAGER=cat git log", S),
    ("GIT_PAGER= git log", S),
    ("PAGER=less man ls", S),
    ("EDITOR=vim git commit", S),
    ("export EDITOR=nano", S),
    ("export LANG=C.UTF-8", S),
    ("FOO=bar ls", S),
    ("declare -p PAGER", S),
    # variables naming a program, or code to load
    ("GIT_EXTERNAL_DIFF=./difftool.sh git diff", M),
    ("SSH_ASKPASS=/tmp/askpass ssh host", M),
    ("LD_PRELOAD=/tmp/hook.so ls", H),
    ("BASH_ENV=~/.startup bash -c ls", H),
    ("GIT_CONFIG_GLOBAL=/dev/null git status", S),
    ("PYTHONPATH=src pytest", M),
    ("export PATH=$HOME/bin:$PATH", M),
    ("PATH=.:$PATH ls", M),
    ("PATH=:$PATH ls", M),  # an empty entry is the current folder
    ("export PATH=$PATH:/opt/tool/bin:/usr/local/bin", S),
    # git configuration from the environment
    (f"GIT_CONFIG_COUNT=1 GIT_CONFIG_KEY_0=core.pager GIT_CONFIG_VALUE_0='{X}' git log", D),
    (f"GIT_CONFIG_PARAMETERS=\"'core.pager'='{X}'\" git log", D),
    ("GIT_CONFIG_PARAMETERS=\"'user.name'='Ann'\" git commit", H),
    # such variables set from input: their value is unknown when the line is judged
    ("read GIT_PAGER", H),
    ("read -r -p 'editor? ' EDITOR", H),
    ("printf -v PAGER '%s' less", H),
    ("mapfile PATH < paths.txt", H),
    ("read -r __autobot_verdict", D),
    ("read -r line", S),
    ("printf '%s\\n' PAGER", S),
    # package managers' hooks
    (f"apt-get -o APT::Update::Pre-Invoke::='{X}' update", D),
    (f"apt -o 'DPkg::Post-Invoke::={X}' install nginx", D),
    ("apt-get -o Acquire::Retries=3 update", S),
    ("apt-get -c ./apt.conf update", H),
    (f"dpkg --pre-invoke='{X}' -i pkg.deb", D),
    # editors and debuggers given commands
    (f"vim -c '!{X}' notes.txt", D),
    (f"vi -c ':r !{X}'", D),
    (f"vim +'!{X}'", D),
    (f"vim --cmd 'call system(\"{X}\")'", D),
    ("vim -c ':sh'", H),
    ("vim -c 'py3 import os'", H),
    ("vim -S session.vim", M),
    ("vim -c 'set number|wq' notes.txt", S),
    ("vim +42 notes.txt", S),
    ("vim +/TODO notes.txt", S),
    (f"gdb -batch -ex 'shell {X}' ./a.out", D),
    (f"gdb --ex '!{X}'", D),
    ("gdb -batch -ex 'python import os' ./a.out", H),
    ("gdb -p 1", H),
    ("gdb ./a.out", S),
    (f"zip -T -TT '{X}' a.zip notes.txt", D),
    (f"zip --unzip-command='{X}' -T a.zip notes.txt", D),
    ("zip -r a.zip docs", S),
]


@pytest.mark.parametrize(("line", "expected"), CASES, ids=[repr(c[0])[:60] for c in CASES])
def test_indirect_commands(line, expected):
    result = assess(line)
    assert result.risk is expected, result.reasons


def test_a_dangerous_pager_is_blocked_at_elevated_and_restricted():
    for level in (Level.ELEVATED, Level.RESTRICTED):
        assert decide(level, assess(f"export GIT_PAGER='{X}'")).blocked


def test_the_reason_names_the_command_the_variable_would_run():
    assert assess(f"GIT_PAGER='{X}' git log").reasons[0].startswith(X)


@pytest.mark.parametrize("line", ["LD_PRELOAD=/tmp/hook.so ls", "export PATH=/tmp/bin:$PATH", "PYTHONPATH=. ls",
                                  "vim -S session.vim", "gdb -x cmds ./a.out"])
def test_loading_code_from_files_is_refused_at_restricted(line):
    result = assess(line)
    assert Trait.SCRIPT_FILE in result.traits
    assert decide(Level.RESTRICTED, result).blocked
    assert not decide(Level.STANDARD, result).blocked
