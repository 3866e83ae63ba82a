# AutoBot terminal hook: bash --noprofile --rcfile <this file> -i
#
# Before each command bash is about to run, a DEBUG trap (with extdebug, so a
# return of 1 skips the command) asks the AutoBot server for a verdict over the
# private socket inherited on fd $AUTOBOT_HOOK_FD. Only builtins are used, so a
# check costs two syscalls and no fork (a command allowed before: one poll). See
# docs/security.md for what this does and does not stop.

# Ctrl-C while this file runs would abandon it, leaving a shell without the hook: ignored
# until the first prompt (__autobot_prompt), once the hook is in place.
trap '' INT
declare -g __autobot_starting=1

if [[ -z ${AUTOBOT_HOOK_FD-} ]]; then
    printf 'autobot: no hook channel; refusing to start\n' >&2
    exit 97
fi
declare -r AUTOBOT_HOOK_FD AUTOBOT_HOOK_SUB_FD=${AUTOBOT_HOOK_SUB_FD-}
export -n AUTOBOT_HOOK_FD AUTOBOT_HOOK_SUB_FD
declare -r AUTOBOT_HOOK_TIMEOUT=${AUTOBOT_HOOK_TIMEOUT:-15}
export -n AUTOBOT_HOOK_TIMEOUT

# The server writes a per-session secret first; it lives only in this shell's
# memory (never exported), so a child process cannot sign requests.
IFS= read -r -t 10 -u "$AUTOBOT_HOOK_FD" __autobot_secret || {
    printf 'autobot: hook channel silent; refusing to start\n' >&2
    exit 97
}
declare -r __autobot_secret

# Simple commands already allowed (cache, per policy generation). An entry counts only if its
# value is the secret: bash arithmetic can write any variable named in a string it evaluates
# (x='__autobot_ok[k]=1'; (( x ))), but it can only ever store a number.
declare -gA __autobot_ok=()
declare -g __autobot_gen=0
declare -g __autobot_fresh=1     # 1 until the first command of the next line
declare -g __autobot_verdict=    # the current line's verdict: allow | block
declare -g __autobot_lastnum=
declare -g __autobot_vnum=       # the HISTCMD the verdict was given for
declare -g __autobot_snum=0      # a subshell: the history number its line was judged under
declare -gi __autobot_alive=0    # the DEBUG trap ran for the prompt: the hook is still in place
declare -g __autobot_stopped=    # the operator's stop ended this line here (see __autobot_stop)
declare -g __autobot_inttrap=    # the INT trap a stop set aside, after the secret (see __autobot_stop)
declare -r __autobot_nonces=ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789
# Bash's own values, not the user's: unset and assigned again they would be plain variables (a
# BASHPID that says "subshell", an SRANDOM that makes every nonce known). Read-only, they stay bash's.
readonly BASHPID SRANDOM
declare -r __autobot_stops='#$%&()*+,-./:;<=>?@[]^_{|}~'  # a subshell's "stop": see __autobot_subask

# The whole line comes from history; keep history honest.
HISTCONTROL=
HISTIGNORE=
declare -r HISTCONTROL HISTIGNORE
PS1='\u@autobot:\w\$ '

__autobot_esc() {
    local s=${1//\\/\\\\}
    s=${s//$'\n'/\\n}
    s=${s//$'\t'/\\t}
    s=${s//$'\r'/\\r}
    __autobot_escaped=$s
}

# A request is one line: secret, nonce, kind, history number, A, B (tab-separated,
# escaped). __autobot_ask KIND A [B [NUM]] -> returns 0 (run it) or 1 (skip it); a "stop"
# ends the line (__autobot_stop).
__autobot_ask() {
    local kind=$1 num=${4:-0} a b nonce=$SRANDOM$SRANDOM rnonce verdict gen msg tries
    __autobot_esc "$2"; a=$__autobot_escaped
    __autobot_esc "${3-}"; b=$__autobot_escaped
    if ! builtin printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$__autobot_secret" "$nonce" "$kind" "$num" "$a" "$b" >&"$AUTOBOT_HOOK_FD"; then
        builtin printf 'autobot: the terminal server is gone; command skipped\n' >&2
        return 1
    fi
    for (( tries = 0; tries < 32; tries++ )); do
        if ! IFS=$'\t' builtin read -r -t "$AUTOBOT_HOOK_TIMEOUT" -u "$AUTOBOT_HOOK_FD" rnonce verdict gen msg; then
            builtin printf 'autobot: no verdict from the server; command skipped\n' >&2
            return 1
        fi
        # A stale reply (after a timeout) or one for a forged request: skip it.
        [[ $rnonce == "$nonce" || $rnonce == '?' ]] && break
        verdict=block
    done
    if [[ $gen != "$__autobot_gen" ]]; then
        __autobot_ok=()
        __autobot_gen=$gen
    fi
    [[ -n $msg ]] && builtin printf '%s\n' "$msg" >&2
    [[ $verdict == stop ]] && __autobot_stop
    [[ $verdict == allow ]]
}

# From a subshell: __autobot_subask KIND TEXT NUM [COMMAND] on the subshells' own channel,
# answered with one byte — the request's one-character nonce for "allow", the punctuation mark its
# place picks from __autobot_stops for "stop" (see terminal/hook.py).
__autobot_subask() {
    local i=$(( SRANDOM % 62 )) nonce v= a
    nonce=${__autobot_nonces:i:1}
    __autobot_esc "$2"; a=$__autobot_escaped
    __autobot_esc "${4-}"
    builtin printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$__autobot_secret" "$nonce" "$1" "$3" "$a" "$__autobot_escaped" >&"$AUTOBOT_HOOK_SUB_FD" 2>/dev/null &&
        IFS= builtin read -r -N 1 -t "$AUTOBOT_HOOK_TIMEOUT" -u "$AUTOBOT_HOOK_SUB_FD" v 2>/dev/null
    [[ $v == "$nonce" ]] && return 0
    [[ -n $v && $v == "${__autobot_stops:i%${#__autobot_stops}:1}" ]] && __autobot_stop
    return 1
}

# The operator stopped the line and the server refused a command of it with "stop": end the line
# as Ctrl-C at the shell does, whatever the line did to SIGINT. The stop's own Ctrl-C may have been
# lost (taken for a program's as the shell handed it the terminal), or ignored (`trap '' INT`):
# the line would run on, a loop asking about each command and refused each time, an endless one
# for ever. Only the server's answer leads here (nothing else writes to this end of the channel).
__autobot_stop() {
    if [[ $BASHPID != "$$" ]]; then  # a subshell: it ends, its shell sees it interrupted
        builtin trap - INT
        builtin kill -INT "$BASHPID"
        builtin exit 130
    fi
    # The shell: SIGINT while it is not waiting for a program abandons the whole line (loops,
    # functions, lists) and brings the prompt, with status 130. An INT trap of the user's is set
    # aside for that and put back at the prompt (only the hook's own: it carries the secret).
    # Read outside posix mode, where `trap -p` names the signal SIGINT (in posix mode it says INT,
    # and the suffix left in would make another action); any other shape is not put back.
    __autobot_stopped=1
    local t
    t=$(builtin set +o posix; builtin trap -p INT)
    builtin trap - INT
    if [[ $t == "trap -- '"*"' SIGINT" ]]; then
        t=${t#"trap -- '"}
        t=${t%"' SIGINT"}
        __autobot_inttrap=$__autobot_secret${t//"'\''"/"'"}
    fi
    builtin kill -INT "$$"
    # Still here (kill unavailable): the rest of the line is skipped without asking.
}

# Sets __autobot_line/__autobot_num from history; the line is empty when it was
# not recorded (history switched off for it).
__autobot_histline() {
    local h num
    h=$(HISTTIMEFORMAT= builtin history 1)
    h=${h#"${h%%[![:space:]]*}"}
    num=${h%%[!0-9]*}
    h=${h#"$num"}
    h=${h#\*}
    h=${h#  }
    [[ -z $num || $num == "$__autobot_lastnum" ]] && h=
    __autobot_line=$h
    __autobot_num=$num
}

__autobot_hook() {
    local status=$?  # the previous command's exit status, for a line that ended without a prompt
    # Our own (read-only) functions are not the user's commands. Nothing the user can set
    # (COMP_LINE, a function named __autobot_something) switches the check off.
    case ${FUNCNAME[1]-} in
        __autobot_esc | __autobot_ask | __autobot_subask | __autobot_stop | __autobot_histline | __autobot_prompt)
            return 0 ;;
    esac
    # The prompt command: only as PROMPT_COMMAND runs it, at the top (not called from a function,
    # a sourced file or a subshell, where a line's own call would report a prompt that never came).
    if [[ $BASH_COMMAND == __autobot_prompt ]] && (( ${#FUNCNAME[@]} == 1 && ${#BASH_SOURCE[@]} == 1 )) &&
        [[ $BASHPID == "$$" ]]; then
        __autobot_alive=1
        return 0
    fi
    # A new line is a new history number, with or without a prompt in between: lines pasted
    # together (bracketed paste, Ctrl-V Ctrl-J) run one after another before the next prompt.
    local cmd=$BASH_COMMAND v num=$HISTCMD
    if [[ $BASHPID == "$$" && -n $__autobot_stopped ]]; then
        return 1  # the operator's stop ended this line (__autobot_stop): nothing more of it runs
    fi
    if [[ $BASHPID != "$$" ]]; then
        # A subshell: several may run at once, beside the shell, so they ask on their own
        # channel for their line's verdict, answered with one byte: their one-character
        # nonce for "allow", anything else is "block" (see terminal/hook.py). The verdict
        # they inherit counts only for the line it was given for.
        if [[ -z $__autobot_verdict || $num != "$__autobot_vnum" ]]; then
            if (( ! __autobot_fresh )) && [[ -n $__autobot_lastnum ]]; then
                # The shell's previous line of a paste ended just before this one forked.
                builtin printf '%s\t-\tdone\t%s\t%s\t\n' "$__autobot_secret" "$__autobot_lastnum" "$status" >&"$AUTOBOT_HOOK_FD" 2>/dev/null
            fi
            __autobot_histline
            # With the command it is about to run, judged with the line (which may not show it:
            # a prompt string's substitution, or history the subshell rewrote).
            __autobot_subask sline "$__autobot_line" "${__autobot_num:-0}" "$cmd" && __autobot_verdict=allow || __autobot_verdict=block
            __autobot_vnum=$num
            # Its commands ask under the same number (HISTCMD may have moved on: a prompt
            # string's subshell runs as the next line is read), so the server finds their line.
            __autobot_snum=${__autobot_num:-0}
            # The first simple command was judged with its line.
            [[ $__autobot_verdict == allow ]] && __autobot_ok[$cmd]=$__autobot_secret
        fi
        [[ $__autobot_verdict == allow ]] || return 1
        # And each simple command it runs, like the shell's own: a function or alias body
        # run in a subshell gets its own verdict too.
        # (Unless the server has written to the shell meanwhile: see below.)
        [[ ${__autobot_ok[$cmd]-} == "$__autobot_secret" ]] && ! builtin read -t 0 -u "$AUTOBOT_HOOK_FD" && return 0
        __autobot_subask scmd "$cmd" "$__autobot_snum" || return 1
        __autobot_ok[$cmd]=$__autobot_secret
        return 0
    fi
    if (( __autobot_fresh )) || [[ $num != "$__autobot_vnum" ]]; then
        if (( ! __autobot_fresh )); then
            # The previous line of a paste ended: report it as the prompt would have.
            # Number 0: the latest line, which may have run only in a subshell this shell never saw.
    builtin printf '%s\t-\tdone\t0\t%s\t\n' "$__autobot_secret" "$status" >&"$AUTOBOT_HOOK_FD" 2>/dev/null
            __autobot_fresh=1
        fi
        __autobot_histline
        if [[ -z $__autobot_line ]]; then
            # No new history line: a completion function, a key binding, or history
            # switched off (HISTSIZE=0). Check this command on its own, and leave the
            # line state alone: no verdict for subshells, the next real line still
            # gets its whole-line check. (Sent as a line with no text: recorded.)
            __autobot_ask line "" "$cmd" 0
            return
        fi
        __autobot_fresh=0
        __autobot_lastnum=$__autobot_num
        __autobot_vnum=$num
        __autobot_snum=$__autobot_num  # for the line's subshells, which inherit its verdict
        if __autobot_ask line "$__autobot_line" "$cmd" "$__autobot_num"; then
            __autobot_verdict=allow
            __autobot_ok[$cmd]=$__autobot_secret
            return 0
        fi
        __autobot_verdict=block
        return 1
    fi
    [[ $__autobot_verdict == allow ]] || return 1
    # A verdict kept for this text holds unless the server has written meanwhile (the operator's
    # stop nudges, see terminal/hook.py): then ask, and the answer's new generation drops the rest.
    [[ ${__autobot_ok[$cmd]-} == "$__autobot_secret" ]] && ! builtin read -t 0 -u "$AUTOBOT_HOOK_FD" && return 0
    (( ${#__autobot_ok[@]} > 512 )) && __autobot_ok=()
    __autobot_ask cmd "$cmd" || return 1
    __autobot_ok[$cmd]=$__autobot_secret
    return 0
}

__autobot_prompt() {
    local status=$? nonce=$SRANDOM$SRANDOM rnonce tries hooked=0
    set -o history
    # The report says whether the hook still runs: the trap ran just before this function, and
    # extdebug (which lets it skip a command) is on. A shell without it is ended by the server.
    (( __autobot_alive )) && builtin shopt -q extdebug && hooked=1
    __autobot_alive=0
    # Verdicts kept last line do not carry over: a function or alias run by the next line must
    # ask for each of its commands again, under that line's verdict (the operator's lines are
    # held to what they were cleared for, terminal/services/commands.py).
    __autobot_ok=()
    # A stop's line is over: an INT trap it set aside is back.
    __autobot_stopped=
    if [[ -n $__autobot_inttrap ]]; then
        [[ ${__autobot_inttrap:0:${#__autobot_secret}} == "$__autobot_secret" ]] &&
            builtin trap -- "${__autobot_inttrap:${#__autobot_secret}}" INT
        __autobot_inttrap=
    fi
    if (( __autobot_starting )); then  # the first prompt: Ctrl-C works from now on
        builtin trap - INT
        __autobot_starting=0
    fi
    # Always report: a line run only in subshells never cleared __autobot_fresh here.
    # Number 0: the latest line, which may have run only in a subshell this shell never saw.
    # Then wait for the server's go-ahead before reading a line: after the operator's stop it
    # comes once the terminal has acted on the Ctrl-C, so a line typed next is never read by
    # readline while it still handles that interrupt (it would throw away what it had read).
    if builtin printf '%s\t%s\tdone\t0\t%s\t%s\n' "$__autobot_secret" "$nonce" "$status" "$hooked" >&"$AUTOBOT_HOOK_FD" 2>/dev/null; then
        for (( tries = 0; tries < 32; tries++ )); do
            IFS=$'\t' builtin read -r -t "$AUTOBOT_HOOK_TIMEOUT" -u "$AUTOBOT_HOOK_FD" rnonce _ || break
            [[ $rnonce == "$nonce" ]] && break  # other lines: stale answers, nudges
        done
    fi
    __autobot_fresh=1
    __autobot_verdict=
    return "$status"
}

PROMPT_COMMAND=(__autobot_prompt)
declare -r PROMPT_COMMAND
readonly -f __autobot_esc __autobot_histline __autobot_ask __autobot_subask __autobot_stop __autobot_hook \
    __autobot_prompt
shopt -s extdebug
trap '__autobot_hook' DEBUG
