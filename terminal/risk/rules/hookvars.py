"""Reading the terminal hook's variables (`$__autobot_secret`, `${#…}`, `${!__autobot_*}`) and
arithmetic on them (`(( __autobot_ok[x]=1 ))`, `$[…]`, `${x:__autobot_n}`, `a[__autobot_n]=1`,
`declare -i x=__autobot_n`): with the hook's secret a line can write requests of its own to the
hook's channel, and arithmetic can assign any variable it names. Both DANGEROUS.

The walker calls `word_hits` on the words bash expands, so single-quoted, `$'…'` and escaped text,
comments and quoted here-documents never reach it (`echo '$__autobot_secret'` is data). Arithmetic
reads names without `$`, quoted or not, wherever bash evaluates it: `(( … ))` (`arithmetic_hits`),
subscripts of names given to builtins (`name_hits`) and `declare -i` values. `ROUGH` is for text
bashlex cannot parse: there the raw text decides, as it did before these rules, quotes or not.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

from terminal.risk.expand import _ansi_c_dequote, _past_backtick, _skip_quoted
from terminal.risk.model import Cmd, Hit, Risk
from terminal.risk.paths import split_options
from terminal.risk.registry import register

READ = Hit(Risk.DANGEROUS, "reads the terminal's command hook variables (its secret among them)")
ARITHMETIC = Hit(Risk.DANGEROUS, "arithmetic on the terminal's command hook variables")
IN_EXPANSION = Hit(Risk.DANGEROUS, "names the terminal's command hook variables in a parameter expansion, whose "
                   "subscripts, offsets and lengths are arithmetic")
STORED_READ = Hit(Risk.DANGEROUS, "stores text that reads the terminal's command hook variables when it is expanded "
                  "again (${name@P}, eval, a prompt)")
STORED_NAME = Hit(Risk.HIGH, "stores a name of the terminal's command hook variables, which arithmetic on this "
                  "variable would read or assign")

_READ_NAME = r"(?:__autobot_|__AUTOBOT_|AUTOBOT_HOOK)"
_READ_AT = re.compile(_READ_NAME)
_ANY_NAME = re.compile(r"(?<!\w)(?:__autobot_|__AUTOBOT_|AUTOBOT_)")  # as arithmetic reads a name

# Rated by the walker in tests/terminal/test_risk_registry.py, like a registered rule's examples.
BENIGN = {
    "echo '$__autobot_secret'": Risk.SAFE,
    "grep -n '__autobot_' notes.txt # $__autobot_secret": Risk.SAFE,
    "cat <<'EOF'\n${#__autobot_secret} $(( __autobot_n ))\nEOF": Risk.SAFE,
}
HARMFUL = {
    'echo "$__autobot_secret"': Risk.DANGEROUS,
    "echo ${#__autobot_secret}": Risk.DANGEROUS,
    "(( __autobot_ok[x]=1 ))": Risk.DANGEROUS,
    'echo "${x:__autobot_n}"': Risk.DANGEROUS,
}


def word_hits(text: str) -> Iterator[Hit]:
    """A word's source text, as bash expands it."""
    text = _joined_everywhere(text)  # `$__auto\<newline>bot_secret` is `$__autobot_secret` to bash
    i, n, double = 0, len(text), False
    while i < n:
        ch = text[i]
        if ch == "\\":
            i += 2
        elif ch == '"':
            double = not double
            i += 1
        elif not double and (ch == "'" or text.startswith("$'", i)):
            i = _skip_quoted(text, i)
        elif text.startswith("$((", i) or text.startswith("$[", i):
            end = _skip_quoted(text, i) if text[i + 1] == "(" else _past_bracket(text, i + 1)
            if _ANY_NAME.search(text, i, end):  # quoted or not: arithmetic reads bare names
                yield ARITHMETIC
            i = end
        elif text.startswith("${", i):
            end = _skip_quoted(text, i)
            yield from _parameter_hits(text[i + 2 : end - 1])
            i = end
        elif text.startswith("$(", i):
            i = _skip_quoted(text, i)  # the walker visits the commands inside
        elif ch == "`":
            end = _past_backtick(text, i)
            yield from word_hits(re.sub(r"\\([$`\\])", r"\1", text[i + 1 : end - 1]))
            i = end
        elif ch == "$" and _READ_AT.match(text, i + 1):
            yield READ
            i += 1
        else:
            i += 1


def _parameter_hits(body: str) -> Iterator[Hit]:
    """`${BODY}`, nested ones included, quoted or not (in `"${a:-'$x'}"` bash expands `$x`): the
    name (`__autobot_x`, `#__autobot_x`, `!__autobot_*`) or a `$name` inside is a read; any other
    hook name is taken for arithmetic (a subscript, an offset or length: `${x:__autobot_n}`),
    even in a default's plain text (`${x:-__autobot_y}`), which is rare enough to be safe to refuse.
    One regex each over the body, not a scan per level of nesting."""
    if _ROUGH_READ.search("${" + body + "}"):
        yield READ
    elif _ANY_NAME.search(re.sub(r"^[#!]?\w+", "", body, count=1)):  # not its own name: `${AUTOBOT_URL}`
        yield IN_EXPANSION


def arithmetic_hits(text: str, known: dict[str, str]) -> Iterator[Hit]:
    """`(( … ))`: bash evaluates its text as arithmetic (quoted as in double quotes), so every name
    in it is read or assigned, and so is every name in the value of a variable it names
    (`v=__autobot_secret; (( v ))`; `known`: the plain values assigned earlier on the line)."""
    text = _joined_everywhere(text)
    if _ANY_NAME.search(text) or any(_ANY_NAME.search(known.get(name, "")) for name in re.findall(r"\w+", text)):
        yield ARITHMETIC


def indirect_hits(text: str, known: dict[str, str]) -> Iterator[Hit]:
    """`v=__autobot_secret; echo ${!v}`: the variable named at run time is the hook's, as the line
    shows. Called for a word where bash does expand `${!name}` (rules/expansions.py)."""
    if any(re.match(_READ_NAME, known.get(name, "")) for name in re.findall(r"\$\{!(\w+)", _joined_everywhere(text))):
        yield READ


def stored_name_hits(value: str) -> Iterator[Hit]:
    """A value that reads the hook's variables when bash expands it again (`x='$__autobot_secret'`:
    `${x@P}`, `eval "$x"`, a prompt), or that names them (`v=__autobot_secret`,
    `x='__autobot_ok[k]=1'`): arithmetic on `v` (`(( v ))`, `$(( v ))`, `[[ 1 -eq v ]]`) reads or
    assigns what it names, on this line or a later one, and bash's error message shows the value it
    could not evaluate."""
    value = _joined_everywhere(value)
    if _ROUGH_READ.search(value):
        yield STORED_READ
    elif _ANY_NAME.search(value):
        yield STORED_NAME


def _joined_everywhere(text: str) -> str:
    """Every backslash-newline taken out, in quotes too (unlike rules/expansions.py's `_joined`,
    which keeps them in single quotes): for the hook's names this can only show more."""
    return text.replace("\\\n", "")


def subscript_hits(name: str) -> Iterator[Hit]:
    """`NAME[SUBSCRIPT]`, assigned or given to a builtin as a variable's name: bash evaluates the
    subscript of an indexed array as arithmetic (`a[__autobot_ok[k]=1]=x` assigns the hook's cache)."""
    m = re.match(r"\s*[A-Za-z_]\w*\[", name)
    if m and _ANY_NAME.search(name, m.end(), _past_bracket(name, m.end() - 1)):
        yield ARITHMETIC


def names_hits(args: Iterable[str]) -> Iterator[Hit]:
    """Subscripts in the arguments of a builtin that takes variable names."""
    for arg in args:
        for hit in subscript_hits(_ansi_c_dequote(arg) if "'" in arg or '"' in arg else arg):
            yield hit
            return


def _past_bracket(text: str, i: int) -> int:
    """Index just past the `]` matching the `[` at text[i] (the end of text when there is none)."""
    depth, j = 0, i
    while j < len(text):
        depth += (text[j] == "[") - (text[j] == "]")
        j += 1
        if not depth:
            break
    return j



def _variable_names(cmd: Cmd, _w) -> Iterator[Hit]:
    """Builtins that take variable names (`unset`, `read`, `printf -v`, `test -v`, `declare`…) evaluate
    a subscript in them; `declare -i NAME=VALUE` evaluates VALUE too; `declare -p NAME` prints it."""
    yield from names_hits(cmd.args)
    yield from _stored_input(cmd)
    if cmd.name in _DECLARES:
        opts, _, i = split_options(cmd.args)
        if "i" in opts and any(_ANY_NAME.search(a.partition("=")[2]) for a in cmd.args[i:]):
            yield ARITHMETIC
        elif "p" in opts and any(re.match(_READ_NAME, a) for a in cmd.args[i:]):
            yield READ  # `declare -p __autobot_secret` prints it as `echo "$__autobot_secret"` does


_DECLARES = ("declare", "typeset", "local", "export", "readonly")


def _sourced(cmd: Cmd, _w) -> Iterator[Hit]:
    """`source <(echo '…')`, `. /dev/stdin <<< '…'`: the text the line shows is run by this shell,
    where the hook's variables live; judged on its raw text, quotes included."""
    yield from rough_hits(cmd.text + "\n" + (cmd.stdin_text or ""))


def _stored_input(cmd: Cmd) -> Iterator[Hit]:
    """`read x <<< '$__autobot_secret'`, `printf -v PS1 '%s' '$__autobot_secret'`: the variable then
    holds text that reads the hook's variables when expanded again (a prompt, `${x@P}`, `eval`)."""
    if cmd.name in {"read", "mapfile", "readarray"} or any(a.startswith("-v") for a in cmd.args):
        text = _PRINTF_ESCAPE.sub(_unescape, cmd.text + "\n" + (cmd.stdin_text or ""))  # printf's `\x24` is `$`
        if _ROUGH_READ.search(_joined_everywhere(text)):
            yield STORED_READ


_PRINTF_ESCAPE = re.compile(r"\\(?:x([0-9A-Fa-f]{1,2})|0?([0-7]{1,3}))")


def _unescape(m: re.Match) -> str:
    return chr(int(m.group(1), 16) if m.group(1) else int(m.group(2), 8))


def _evaluated(cmd: Cmd, _w) -> Iterator[Hit]:
    """`eval "$(echo 'echo $__autobot_secret')"`: a string built at run time (HIGH in any case) from
    text the line shows; judged on that text, quotes included."""
    if any("$(" in a or "`" in a for a in cmd.args):
        yield from rough_hits(cmd.text)

register("unset", "read", "printf", "mapfile", "readarray", "test", "[", "getopts", "wait", *_DECLARES,
         family="hook", check=_variable_names,
         summary="a subscript naming the hook's variables in a variable name (`unset 'a[__autobot_ok[k]=1]'`, "
                 "`printf -v`, `read`, `test -v`), or in a `declare -i` value, DANGEROUS: bash evaluates it; "
                 "`declare -p` of a hook variable DANGEROUS",
         benign={"unset 'a[1]'": Risk.SAFE, "declare -i n=__x+1": Risk.SAFE},
         harmful={"unset 'a[__autobot_ok[1]=1]'": Risk.DANGEROUS, "declare -i n=__autobot_n": Risk.DANGEROUS})


register("source", ".", family="hook", check=_sourced,
         summary="sourcing text the line shows that reads the hook's variables DANGEROUS, quoted or not",
         benign={"source env.sh": Risk.MODERATE},
         harmful={"source /dev/stdin <<< 'echo $__autobot_secret'": Risk.DANGEROUS})


register("eval", family="hook", check=_evaluated,
         summary="`eval` of a string built from text that reads the hook's variables DANGEROUS, quoted or not",
         benign={"eval \"$(ssh-agent -s)\"": Risk.HIGH},
         harmful={"eval \"$(echo 'echo $__autobot_secret')\"": Risk.DANGEROUS})


# For a line bashlex cannot parse: the raw text, quotes and comments included (fail closed).
# `[[ … ]]` with the hook's names is left unparsed (parse.py); its `-eq`, `-lt`… and `-v a[…]` are arithmetic.
_ROUGH_READ = re.compile(r"\$\{?[!#]?" + _READ_NAME)
ROUGH = (
    (re.compile(r"(\(\(|\$\[|\[\[)[^;&|\n]*?(__autobot_|__AUTOBOT_|AUTOBOT_)"), ARITHMETIC),
    (_ROUGH_READ, READ),
)


def rough_hits(text: str) -> Iterator[Hit]:
    text = _joined_everywhere(text)
    for pattern, hit in ROUGH:
        if pattern.search(text):
            yield hit
