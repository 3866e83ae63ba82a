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
    # database clients given statements that run shell commands
    (f"mysql -e 'system {X}'", D),
    (f"mariadb --execute='select 1; \\! {X}' db", D),
    (f"psql -c '\\! {X}'", D),
    (f"psql -c \"\\copy t to program '{X}'\"", D),
    (f"psql -c '\\o |{X}' -c 'select 1'", D),
    (f"sqlite3 app.db '.shell {X}'", D),
    (f"sqlite3 -cmd '.output |{X}' app.db 'select 1'", D),
    ("mysql -e 'select count(*) from users' app", S),
    ("psql -c 'select 1' app", S),
    ("sqlite3 app.db .tables 'select * from t'", S),
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

# Ways around the rules above, found in review; each got past ELEVATED or RESTRICTED before.
EVASIONS = [
    # how the variable is named or set
    (f"export {{GIT_PAGER,PAGER}}='{X}'", D),  # brace expansion makes two assignments
    (f"export GIT_PAGE{{R,X}}='{X}'", D),
    (f"export GIT_PAGER={{cat,'{X}'}}", D),  # the last one wins
    ("{mkfs.ext4,/dev/autobot-test-none}", D),
    (f"export \"GIT_PAGER\"='{X}'", D),
    (f'GIT_PAGER="${{UNSET:-{X}}}" git log', D),  # the default is what runs
    (f'bash -c "${{UNSET:-{X}}}"', D),
    ("${UNSET:-mkfs.ext4} /dev/autobot-test-none", D),
    (f": ${{GIT_PAGER:={X}}}", D),  # assigns when unset
    (f"[[ -n ${{GIT_PAGER:={X}}} ]]", D),
    (f"for GIT_PAGER in '{X}'; do export GIT_PAGER; done", D),
    ("for GIT_PAGER; do git log; done", H),
    ("v=GIT_PAGER; export $v=less", H),  # a name computed at run time
    ('declare "$v=less"', H),
    ('printf -v "$v" less', H),
    ("printf -vGIT_PAGER '%s' less", H),
    ("mapfile GIT_PAGER -t", H),
    ("declare -n ref=GIT_PAGER", H),  # later `ref=...` sets GIT_PAGER
    ("declare -n ref", H),  # takes its target from the next assignment
    ("declare -n ref=__autobot_verdict", D),
    (f"sudo GIT_PAGER='{X}' git log", D),
    (f"systemd-run -E GIT_PAGER='{X}' git log", D),
    (f"env -S'{X}'", D),
    ("env -S 'mkfs.ext4\\_/dev/autobot-test-none'", D),  # \_ is a space to env -S
    (f"GIT_EXTERNAL_DIFF='{X}' git diff", D),  # git runs it through a shell
    (f"LESS='+!{X}' git log", D),  # less runs +! commands at start
    (f"less '+!{X}' notes.txt", D),
    ("MANOPT='-P mkfs.ext4\\ /dev/autobot-test-none' man ls", D),
    ("TAR_OPTIONS='--to-command=mkfs.ext4\\ /dev/autobot-test-none' tar xf a.tar", D),
    (f"PS1='$({X})'", D),  # bash expands the prompt each time
    ("APT_CONFIG=./apt.conf apt-get update", H),
    ("PATH=/usr/../tmp:$PATH ls", M),
    # bash's own tables of command names and the hook's cache
    ("hash -p /usr/sbin/mkfs.ext4 ls", D),  # `ls /dev/sda` would then format it
    ("hash -p ./tool ls", H),
    ("BASH_CMDS[ls]=/usr/sbin/mkfs.ext4", D),
    (f"BASH_ALIASES[zz]='{X}'", D),
    (f"alias zz='{X}'", D),
    (f'let "__autobot_ok[{X}]=1"', D),
    ("__autobot_ok[x]=1", D),
    (": $(( __autobot_ok[x]=1 ))", D),
    # apt
    (f"apt-get -q -o APT::Update::Pre-Invoke::='{X}' update", D),  # -q takes no value
    (f"apt-get -o 'Acquire::http::Proxy-Auto-Detect={X}' update", D),
    ("apt-get -o Dir::Bin::dpkg=./fake-dpkg install x", H),
    # vim
    (f"vim -es -c '!{X}' -c 'q!'", D),  # in Ex mode -s is "silent", not -s SCRIPT
    (f"vim -c 'silent !{X}'", D),
    (f"vim -c 'r!{X}'", D),
    (f"vim -c '!echo hi | {X}'", D),  # :! takes the rest of the line, | included
    (f"vim -c 'g/x/!{X}'", D),
    (f"vim -c 'windo !{X}'", D),
    (f"vim -c 'exe \"!{X}\"'", D),
    (f"vim -c 'normal :!{X}'", D),
    (f"vim -c 'au VimEnter * !{X}'", D),
    (f"vim -c 'term {X}'", D),
    ("vim -c 'set makeprg=mkfs.ext4\\ /dev/autobot-test-none' -c make", D),
    (f"vim -c 'e `{X}`'", D),
    ("vim -c '!mkfs.ext4 %' /dev/autobot-test-none", D),  # % is the file being edited
    (f"vim --remote-send ':!{X}<CR>'", D),
    (f"nvim -c 'lua os.execute(\"{X}\")'", D),
    # gdb and other debuggers
    (f"gdb -batch -ex 'she {X}'", D),  # any unique prefix of shell
    (f"gdb -batch -ex 'with confirm off -- shell {X}'", D),
    (f"gdb -batch -ex '| print 1 | {X}'", D),
    (f"gdb -batch -ex 'make ; {X}'", D),
    (f"gdb -batch -ex 'eval \"shell {X}\"'", D),
    (f"gdb -batch -ex 'call system(\"{X}\")' -p 1", D),
    ("gdb -batch -ex run --args mkfs.ext4 /dev/autobot-test-none", D),
    ("gdb -batch -ex 'run /dev/autobot-test-none' mkfs.ext4", D),
    (f"gdb -batch -ex 'run $({X})' /bin/true", D),  # gdb starts the program through a shell
    ("gdbserver :1234 mkfs.ext4 /dev/autobot-test-none", D),
    (f"lldb -o 'platform shell {X}'", D),
    (f"mysql --pager='{X}'", D),
]

# What a normal user types stays as it was.
EVERYDAY = [
    ("echo {a,b}", S),
    ("mkdir -p src/{api,web}", S),
    ("cp settings.py{,.bak}", S),
    ("git log --format='{%h,%s}'", S),
    ("for f in *.txt; do wc -l $f; done", S),
    ("for GIT_PAGER in cat less; do git log; done", S),
    ("alias ll='ls -la'", S),
    ("alias gs='git status'", S),
    ("EDITOR=code git commit", S),
    ("export VISUAL='code --wait'", S),
    ("vim +42 notes.txt", S),
    ("vim -c 'normal G' app.log", S),
    ("vim -c '%s/foo/bar/g|wq' notes.txt", S),
    ("vim -es -c '%s/a/b/g' -c wq notes.txt", S),
    ("less +G app.log", S),
    ("LESS=-R git log", S),
    ("PS1='\\u@\\h:\\w\\$ '", S),
    ("PS1='$(git branch --show-current) $ '", S),
    ("export PATH=/usr/local/go/bin:$PATH", S),
    ('PATH="${PATH:+${PATH}:}/opt/tool/bin"', S),
    ("gdb -batch -ex bt ./a.out core", S),
    ("apt-get -q -o Acquire::Retries=3 update", S),
    ("files[0]=notes.txt", S),
    ("sudo LANG=C apt-get update", S),
]


@pytest.mark.parametrize(("line", "expected"), CASES, ids=[repr(c[0])[:60] for c in CASES])
def test_indirect_commands(line, expected):
    result = assess(line)
    assert result.risk is expected, result.reasons


@pytest.mark.parametrize(("line", "expected"), EVASIONS, ids=[repr(c[0])[:60] for c in EVASIONS])
def test_evasions_are_judged_as_what_they_run(line, expected):
    result = assess(line)
    assert result.risk is expected, result.reasons


@pytest.mark.parametrize(("line", "expected"), EVERYDAY, ids=[repr(c[0])[:60] for c in EVERYDAY])
def test_everyday_lines_stay_as_they_were(line, expected):
    result = assess(line)
    assert result.risk is expected, result.reasons
    assert not decide(Level.RESTRICTED, result).blocked


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
