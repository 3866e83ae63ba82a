"""The hook's variables read (`$__autobot_secret`, `${#…}`, `${!__autobot_*}`) or used in arithmetic
(`(( __autobot_ok[x]=1 ))`, subscripts, offsets, `declare -i`): DANGEROUS where bash expands or
evaluates them, data elsewhere (terminal/risk/rules/hookvars.py).

Each row carries the rating main gave before these rules were the walker's (raw-line regexes in
assess.py): a line bash does expand is never rated lower than that."""

import pytest

from terminal.risk import Risk, assess

S, M, H, D = Risk.SAFE, Risk.MODERATE, Risk.HIGH, Risk.DANGEROUS

# Text bash does not expand: single quotes, `$'…'`, backslashes, comments, quoted here-documents,
# here-strings and substitutions whose text is quoted. (line, rating on main, rating now).
NOT_EXPANDED = [
    ("echo '$__autobot_secret'", D, S),
    ("grep -n '$__autobot_secret' notes.txt # ${#__autobot_secret}", D, S),
    ('echo hi # $__autobot_secret', D, S),
    ('echo hi\n# (( __autobot_ok[x]=1 ))', D, S),
    ('echo \\$__autobot_secret', D, S),
    ('echo "\\$__autobot_secret"', D, S),
    ("echo $'$__autobot_secret'", D, S),
    ("cat <<'EOF'\n$__autobot_secret ${#__autobot_secret} $(( __autobot_n ))\nEOF", D, S),
    ('cat <<"EOF"\n$__autobot_secret\nEOF', D, S),
    ('cat <<EOF\n\\$__autobot_secret\nEOF', D, S),
    ("echo '(( __autobot_ok[x]=1 ))'", D, S),
    ("echo '$[__autobot_n]'", D, S),
    ("cat <<< '$__autobot_secret'", D, S),
    ("cat <(echo '$__autobot_secret')", D, S),
    ("echo `echo '$__autobot_secret'`", D, S),
    ("echo $(echo '$__autobot_secret')", D, S),
    ("echo ok-$((2+2)) '__autobot_'", D, S),
    ('printf \'%s\\n\' \'${!__autobot_*}\' "${x}"', D, S),
    ("[[ -n $x ]] && echo '$__autobot_secret'", D, S),
    ("x=$((1)); echo '$__autobot_secret'", D, S),
    ("echo hi > '$__autobot_secret'", D, S),
    ("find . -name '$__autobot_secret'", D, S),
]


@pytest.mark.parametrize(("line", "before", "now"), NOT_EXPANDED, ids=[repr(c[0])[:60] for c in NOT_EXPANDED])
def test_a_hook_variable_bash_does_not_expand_is_data(line, before, now):
    result = assess(line)
    assert result.risk is now is S and before is D, result.reasons


# An adversarial review: (line, rating on main, rating now); never lower than main.
EXPANDED = [
    ("grep '__autobot_' notes.txt", S, S),
    ("echo $'\\x24__autobot_secret'", S, S),
    ('echo $__autobot_secret', D, D),
    ('echo "$__autobot_secret"', D, D),
    ('echo "${__autobot_secret}"', D, D),
    ('echo ${#__autobot_secret}', D, D),
    ('echo "${!__autobot_*}"', D, D),
    ('echo ${!__autobot_@}', D, D),
    ('echo $AUTOBOT_HOOK_FD', D, D),
    ('echo $__AUTOBOT_X', D, D),
    ('echo "$"\'__autobot_secret\'', S, S),
    ('echo "$__autobot"\'_secret\'', S, S),
    ("echo '$'__autobot_secret", S, S),
    ('echo $"$__autobot_secret"', D, D),
    ("eval 'echo $__autobot_secret'", D, D),
    ('eval "echo \\$__autobot_secret"', D, D),
    ("eval 'echo $(( __autobot_n ))'", D, D),
    ("eval '(( __autobot_ok[x]=1 ))'", D, D),
    ("bash -c 'echo $__autobot_secret'", D, D),
    ('v=__autobot_secret; echo ${!v}', H, D),
    ('v=__autobot_secret; echo "${!v}"', H, D),
    ('declare -n r=__autobot_secret; echo $r', D, D),
    ('printf -v x \'%s\' "$__autobot_secret"', D, D),
    ("printf -v 'a[__autobot_ok[1]=1]' x", S, D),
    ('compgen -v', S, S),
    ('compgen -v __autobot', S, S),
    ('compgen -A variable __autobot_', S, S),
    ('set', S, D),  # lists every variable, the secret among them (review)
    ('declare -p', S, D),
    ('declare -p __autobot_secret', S, D),
    ('v=__autobot_secret; (( v ))', M, D),
    ('v=__autobot_secret; echo $(( v ))', S, H),
    ("x='__autobot_ok[k]=1'; (( x ))", M, D),
    ('(( __autobot_ok[x]=1 ))', D, D),
    ('(( "__autobot_ok[x]=1" ))', D, D),
    ('if (( __autobot_n > 0 )); then :; fi', D, D),
    ('while (( __autobot_n )); do :; done', D, D),
    ('echo $(( __autobot_n + 1 ))', D, D),
    ('echo "$(( __autobot_n ))"', D, D),
    ('echo $[ __autobot_n ]', D, D),
    ('echo $(( $__autobot_n ))', D, D),
    ('let x=__autobot_n', D, D),
    ("let 'x=__autobot_n'", D, D),
    ('[[ $__autobot_x ]]', D, D),
    ("[[ $x == '__autobot_' ]]", H, D),
    ('[[ 1 -eq __autobot_n ]]', H, D),
    ('[[ -v a[__autobot_ok[1]=1] ]]', H, D),
    ('for (( i = __autobot_n; i < 2; i++ )); do :; done', D, D),
    ('a[__autobot_n]=1', S, D),
    ('a[__autobot_ok[5]=1]=x', S, D),
    ("a['__autobot_ok[5]=1']=x", S, D),
    ('a=([__autobot_ok[1]=1]=x)', S, H),
    ('echo ${a[__autobot_n]}', S, D),
    ('echo "${a[__autobot_ok[1]=1]}"', S, D),
    ('echo ${x:__autobot_n}', S, D),
    ('echo "${x:1:__autobot_n}"', S, D),
    ('echo ${x:$__autobot_n}', D, D),
    ('echo "${x:-$__autobot_secret}"', D, D),
    ('echo "${x:-\'$__autobot_secret\'}"', D, D),
    ("echo ${x:-'$__autobot_secret'}", D, D),
    ('echo ${x:-__autobot_secret}', S, D),  # plain text in a default: refused with subscripts and offsets
    ('echo "${x:-$(( __autobot_n ))}"', D, D),
    ('declare -i n=__autobot_n', S, D),
    ("declare -i n='__autobot_ok[1]=1'", S, D),
    ('local -i n=__autobot_n', S, D),
    ("unset 'a[__autobot_ok[1]=1]'", S, D),
    ('unset a[__autobot_ok[1]=1]', S, D),
    ("read 'a[__autobot_ok[1]=1]' <<< z", S, D),
    ("test -v 'a[__autobot_ok[1]=1]'", S, D),
    ("[ -v 'a[__autobot_ok[1]=1]' ]", S, D),
    ('cat <<< "$__autobot_secret"', D, D),
    ('cat <(echo $__autobot_secret)', D, D),
    ('diff <(echo "$__autobot_secret") /dev/null', D, D),
    ('echo `echo \\$__autobot_secret`', D, D),
    ('echo $(echo $__autobot_secret)', D, D),
    ('x=$__autobot_secret', D, D),
    ('x="${__autobot_secret}"', D, D),
    ('cat <<EOF\n$__autobot_secret\nEOF', D, D),
    ('cat <<EOF\n${#__autobot_secret}\nEOF', D, D),
    ('cat <<EOF\n$(( __autobot_n ))\nEOF', D, D),
    ("cat <<EOF\n'$__autobot_secret'\nEOF", D, D),
    ('cat <<EOF\n"$__autobot_secret"\nEOF', D, D),
    ("echo '$__autobot_secret'; case $x in a) ;; esac", D, D),
    ('echo $__autobot_secret; case $x in a) ;; esac', D, D),
    ('echo ${__autobot_secret@Q}', D, D),
    ('echo ${__autobot_secret:0:4}', D, D),
    ('echo ${__autobot_secret/a/b}', D, D),
    ('echo ${x//$__autobot_secret/}', D, D),
    ("alias s='echo $__autobot_secret'", D, D),
    ('f() { echo $__autobot_secret; }', D, D),
    ("trap 'echo $__autobot_secret' INT", D, D),
    ("PS1='$__autobot_secret'", D, D),
    ('mapfile -t a <<< "$__autobot_secret"', D, D),
    ('echo ${__autobot_secret+set}', D, D),
    ('echo "$__autobot_x"\'$__autobot_y\'', D, D),
    ('echo "$AUTOBOT_HOOK_FD" >&2', D, D),
    ('x=1; echo ${x:-__autobot_}', S, D),
    ("echo $'\\'' $__autobot_secret '", D, D),
    ("echo '\\' $__autobot_secret '", D, D),
    ('echo "\'" $__autobot_secret "\'"', D, D),
    ('echo "$__auto\\\nbot_secret"', S, D),
    ('echo $__auto\\\nbot_secret', S, D),
    ('cat <<EOF\n$__auto\\\nbot_secret\nEOF', S, D),
    ("echo '$__auto\\\nbot_secret'", S, S),
    ('echo "${x:-$(echo $__autobot_secret)}"', D, D),
    ("printf -v '__autobot_ok[x]' 1", D, D),
    ('printf -v __autobot_ok[x] 1', D, D),
    ('getopts ab __autobot_x', D, D),
    ('wait -p __autobot_x', S, S),
    ('mapfile __autobot_ok < notes.txt', D, D),
    ('read -a __autobot_ok <<< x', D, D),
    ('v=__AUTOBOT_X; echo ${!v}', H, D),
    ('v=HOME; echo ${!v}', H, H),
    ("v=__autobot_secret; echo '${!v}'", S, H),
    ('v=HOME; (( v ))', M, M),
    ("read -r x <<< '__autobot_ok[k]=1'; (( x ))", M, M),
    ("[[ -v 'a[__autobot_ok[1]=1]' ]]", H, D),
    ('echo ${x: __autobot_n}', S, D),
    ('echo ${x:(-__autobot_n)}', S, D),
    ('echo ${x/#a/$__autobot_secret}', D, D),
    ('echo ${#__autobot_ok[@]}', D, D),
    ('echo ${!__autobot_ok[@]}', D, D),
    ('echo "${__autobot_secret:-x}"', D, D),
    ('echo ${__AUTOBOT_X}', D, D),
    ('echo $AUTOBOT_X', S, S),
    ('echo ${AUTOBOT_HOOK_FD}', D, D),
    ('echo $((AUTOBOT_HOOK_FD))', D, D),
    ('echo $((1)) "$__autobot_secret"', D, D),
    ('coproc echo $__autobot_secret', D, D),
    ('time echo $__autobot_secret', D, D),
    ('select x in $__autobot_secret; do :; done', D, D),
    ('for x in $__autobot_secret; do :; done', D, D),
    ("for x in '$__autobot_secret'; do :; done", D, D),
    ('case $__autobot_secret in a) ;; esac', D, D),
    ('echo $__autobot_secret >/dev/null &', D, D),
    ('echo hi > "$__autobot_secret"', D, D),
    ('export X="$__autobot_secret"', D, D),
    ('env X=$__autobot_secret ls', D, D),
    ('sudo echo $__autobot_secret', D, D),
    ('xargs echo $__autobot_secret', D, D),
    ("watch 'echo $__autobot_secret'", D, D),
    ("ssh host 'echo $__autobot_secret'", D, D),
    ('ssh host "echo $__autobot_secret"', D, D),
    ("source <(echo 'echo $__autobot_secret')", D, D),
    (". <(printf '%s\\n' 'echo $__autobot_secret')", D, D),
    ("echo 'echo $__autobot_secret' | source /dev/stdin", D, D),
    ("source /dev/stdin <<< 'echo $__autobot_secret'", D, D),
    ("source /dev/stdin <<'EOF'\necho $__autobot_secret\nEOF", D, D),
    ('eval "$(echo \'echo $__autobot_secret\')"', D, D),
    ('bind -x \'"\\C-t": echo $__autobot_secret\'', D, D),
    ("complete -C 'echo $__autobot_secret' ls", D, D),
    ("mapfile -C 'echo $__autobot_secret' -c 1 a <<< x", D, D),
    ("PROMPT_COMMAND='echo $__autobot_secret'", D, D),
    ("command eval 'echo $__autobot_secret'", D, D),
    ("builtin eval 'echo $__autobot_secret'", D, D),
    ('x=\'echo $__autobot_secret\'; eval "$x"', D, D),
    ("x='echo $__autobot_secret'; $x", D, D),
    ('echo "${x@P}"', H, H),
    ('x=\'$__autobot_secret\'; echo "${x@P}"', D, D),
    ("trap 'echo $__autobot_secret' DEBUG", D, D),
    ("PS0='$__autobot_secret'", D, D),
    ("export PS4='${__autobot_secret}'", D, D),
    ("declare PS1='$__autobot_secret'", D, D),
    ("read -r PS1 <<< '$__autobot_secret'", D, D),
    ("printf -v PS1 '%s' '$__autobot_secret'", D, D),
    ("alias ll='echo ${#__autobot_secret}'", D, D),
    ("BASH_ALIASES[ll]='echo $__autobot_secret'", D, D),
    ("sudo bash -c 'echo $__autobot_secret'", D, D),
    ("sh -c 'echo $__autobot_secret'", D, D),
    ("find . -exec sh -c 'echo $__autobot_secret' \\;", D, D),
    ("xargs sh -c 'echo $__autobot_secret'", D, D),
    ("echo $__AUTOBOT_X '$AUTOBOT_HOOK_FD'", D, D),
    ('echo ${__autobot_secret', D, D),
    ('printf -v x \'\\x24__autobot_secret\'; echo "${x@P}"', H, D),
    ("printf -v x '\\044__autobot_secret'", S, D),
    ('v=__autobot_secret; let v', S, D),
    ("v='__autobot_ok[k]=1'; let 'x = v + 1'", S, D),
    ('a=(\'$__autobot_secret\'); echo "${a[0]@P}"', D, D),
    ("x=$'\\x24__autobot_secret'", S, D),
    ('declare -n r=__auto"bot_secret"', D, D),
    ("printf '\\x24__autobot_secret'", S, S),
    ("((x=1)) && echo '__autobot_'", S, S),
]


@pytest.mark.parametrize(("line", "before", "now"), EXPANDED, ids=[repr(c[0])[:60] for c in EXPANDED])
def test_no_spelling_reads_or_computes_with_the_hooks_variables_unseen(line, before, now):
    result = assess(line)
    assert result.risk is now, result.reasons
    assert now >= before


# Text written to a file, or to the history, and run later by this shell: the line is rated as the
# writing it does (lower than main, whose raw regex read the quotes); the hook judges each command
# bash then runs (tests/terminal/test_hook_bypasses.py).
RUN_LATER = [
    ("fc -s 'x=echo $__autobot_secret'", D, M),
    ("printf '%s' '$__autobot_secret' > s.sh; source s.sh", D, M),
]


@pytest.mark.parametrize(("line", "before", "now"), RUN_LATER, ids=[repr(c[0])[:60] for c in RUN_LATER])
def test_text_run_later_from_a_file_or_the_history_is_rated_as_the_line_shows_it(line, before, now):
    assert assess(line).risk is now


@pytest.mark.parametrize("line", [
    "echo '$__autobot_secret'; case $x in a) ;; esac",
    "echo '(( __autobot_ok[x]=1 ))'; case $x in a) ;; esac",
])
def test_a_line_that_cannot_be_parsed_is_judged_on_its_raw_text(line):
    result = assess(line)
    assert (result.risk, result.parsed) == (D, False), result.reasons


def test_a_string_run_later_that_cannot_be_parsed_is_judged_on_its_raw_text():
    # eval's string fails to parse (bashlex lacks `$(( ))` with the hook's names kept in it)
    result = assess("eval 'echo $(( __autobot_n ))'")
    assert result.risk is D and result.parsed, result.reasons


def test_the_reason_names_the_word_that_is_expanded():
    (reason,) = assess("echo '$__autobot_a' \"${#__autobot_secret}\"").reasons
    assert reason == '"${#__autobot_secret}": reads the terminal\'s command hook variables (its secret among them)'


# The second review (before / now on main as it was merged).
SECOND_REVIEW = [
    # A delimiter used quoted and unquoted on one line: the unquoted body expands (SAFE when merged).
    ("cat <<'EOF'; cat <<EOF\nhi\nEOF\n$__autobot_secret\nEOF", D),
    ("cat <<EOF; cat <<'EOF'\n$__autobot_secret\nEOF\nhi\nEOF", D),
    ("cat <<'EOF'\nx\nEOF\ncat <<EOF\n$__autobot_secret\nEOF", D),
    ("cat <<'EOF'; cat <<EOF\nx\nEOF\n$(mkfs.ext4 /dev/autobot-test-none)\nEOF", D),
    ("cat <<'EOF'\n$__autobot_secret\nEOF", S),  # quoted only: data
    # `+` attributes list every variable without them, the secret and the cache among them.
    ("declare +x", D),
    ("declare +A", D),
    ("typeset +i", D),
    ("declare -p +x", D),
    ("declare +x FOO", S),
    ("declare -x", S),  # exported ones only: neither the secret nor the cache
    ("declare -i", S),
    ("readonly -a", S),
    # xtrace traces the hook's own commands, the secret in their arguments.
    ("set -x", D),
    ("set -o xtrace", D),
    ("set -euxo pipefail", D),
    ("set -euo pipefail", S),
    ("set -- -x", S),
    # A prompt string set from another variable's value is expanded again at each prompt (SAFE before).
    ("printf -v y '%s%s' '$' __autobot_secret; PS1=$y", H),
    ("PS1=$y", H),
    ('export PS1="${y}> "', H),
    ("PS1='$y> '", S),  # single quotes: the prompt expands $y once, its value is not expanded again
    ('PS1="$PS1 x"', S),
    ("PS1='${debian_chroot:+($debian_chroot)}\\u@\\h:\\w\\$ '", S),
    # A parameter's own name: only the hook's count.
    ("echo ${AUTOBOT_URL}", S),
    ("echo ${AUTOBOT_VAR_DIR:-x}", S),
    ("echo ${AUTOBOT_HOOK_FD}", D),
    ("echo ${x[AUTOBOT_N]}", D),
]


@pytest.mark.parametrize(("line", "expected"), SECOND_REVIEW, ids=[repr(c[0])[:60] for c in SECOND_REVIEW])
def test_the_second_reviews_lines(line, expected):
    result = assess(line)
    assert result.risk is expected, result.reasons
