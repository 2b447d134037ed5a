# bash completion for stanzactl(1). Commands come from stanzactl itself, options from this file; account
# names, contacts and rooms from the running daemon (`stanzactl complete ...`), and
# nothing when it is not running.

_stanzactl_ask() {
    local -a global=()
    local i
    for ((i = 1; i < ${#COMP_WORDS[@]} - 1; i++)); do
        case ${COMP_WORDS[i]} in
            -c|--config|-s|--socket) global+=("${COMP_WORDS[i]}" "${COMP_WORDS[i+1]}") ;;
        esac
    done
    command stanzactl "${global[@]}" complete "$@" 2>/dev/null
}

_stanzactl() {
    local cur prev
    cur=${COMP_WORDS[COMP_CWORD]}
    prev=${COMP_WORDS[COMP_CWORD-1]}
    local commands
    commands=$(command stanzactl complete commands 2>/dev/null | cut -d' ' -f1 | uniq)
    local global_options="-c --config -s --socket --json -h --help --version"

    case $prev in
        -c|--config) COMPREPLY=($(compgen -f -- "$cur")); return ;;
        -s|--socket) COMPREPLY=($(compgen -f -- "$cur")); return ;;
        --since|--id|-n|--before|--password|--group|--jid|--name|--password-command) return ;;
    esac

    # The command and its positional arguments, options and their values skipped.
    local -a words=()
    local i w
    for ((i = 1; i < COMP_CWORD; i++)); do
        w=${COMP_WORDS[i]}
        case $w in
            -c|--config|-s|--socket|--since|--id|-n|--before|--password|--group|--jid|--name|--password-command) ((i++)) ;;
            -*) ;;
            *) words+=("$w") ;;
        esac
    done

    if [[ ${#words[@]} -eq 0 ]]; then
        if [[ $cur == -* ]]; then COMPREPLY=($(compgen -W "$global_options" -- "$cur"))
        else COMPREPLY=($(compgen -W "$commands" -- "$cur")); fi
        return
    fi

    local cmd=${words[0]}
    local -a args=("${words[@]:1}")
    if [[ $cmd == roster && ${#args[@]} -ge 1 && ( ${args[0]} == add || ${args[0]} == remove ) ]]; then
        cmd="roster ${args[0]}"
        args=("${args[@]:1}")
    fi
    local n=${#args[@]}

    if [[ $cur == -* ]]; then
        local opts="--json"
        case $cmd in
            send) opts+=" --id" ;;
            tail) opts+=" --since" ;;
            history) opts+=" -n --before" ;;
            join) opts+=" --password" ;;
            "roster add") opts+=" --group --no-subscribe" ;;
            init) opts="--jid --name --password-command --password --irc --force" ;;
        esac
        COMPREPLY=($(compgen -W "$opts" -- "$cur"))
        return
    fi

    case $cmd in
        help)
            [[ $n -eq 0 ]] && COMPREPLY=($(compgen -W "$commands" -- "$cur"))
            [[ $n -eq 1 && ${args[0]} == roster ]] && COMPREPLY=($(compgen -W "add remove" -- "$cur")) ;;
        complete)
            [[ $n -eq 0 ]] && COMPREPLY=($(compgen -W "commands accounts contacts rooms" -- "$cur"))
            [[ $n -eq 1 && ${args[0]} != commands && ${args[0]} != accounts ]] &&
                COMPREPLY=($(compgen -W "$(_stanzactl_ask accounts)" -- "$cur")) ;;
        status|tail|init|doctor) ;;
        roster)
            if [[ $n -eq 0 ]]; then
                COMPREPLY=($(compgen -W "add remove $(_stanzactl_ask accounts)" -- "$cur"))
            fi ;;
        presence)
            [[ $n -eq 0 ]] && COMPREPLY=($(compgen -W "$(_stanzactl_ask accounts)" -- "$cur"))
            [[ $n -eq 1 ]] && COMPREPLY=($(compgen -W "online away chat dnd xa" -- "$cur")) ;;
        join|part)
            [[ $n -eq 0 ]] && COMPREPLY=($(compgen -W "$(_stanzactl_ask accounts)" -- "$cur"))
            [[ $n -eq 1 ]] && COMPREPLY=($(compgen -W "$(_stanzactl_ask rooms "${args[0]}")" -- "$cur")) ;;
        rooms|blocklist|pin)
            [[ $n -eq 0 ]] && COMPREPLY=($(compgen -W "$(_stanzactl_ask accounts)" -- "$cur")) ;;
        *)
            # ACCOUNT then JID (contacts): send, history, raw, roster add/remove,
            # subscribe, unsubscribe, approve, deny, block, unblock.
            if [[ $n -eq 0 ]]; then
                COMPREPLY=($(compgen -W "$(_stanzactl_ask accounts)" -- "$cur"))
            elif [[ $n -eq 1 || $cmd == block || $cmd == unblock ]] && [[ $cmd != raw ]]; then
                COMPREPLY=($(compgen -W "$(_stanzactl_ask contacts "${args[0]}")" -- "$cur"))
            fi ;;
    esac
}

complete -F _stanzactl stanzactl
