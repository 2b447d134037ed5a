# fish completion for stanzactl(1). Commands come from stanzactl itself; account names,
# contacts and rooms from the running daemon (`stanzactl complete ...`), and nothing when
# it is not running.

function __stanzactl_args --description 'positional words after stanzactl, options skipped'
    set -l tokens (commandline -opc)
    set -e tokens[1]
    set -l skip 0
    for t in $tokens
        if test $skip -eq 1
            set skip 0
            continue
        end
        switch $t
            case -c --config -s --socket --since --id -n --before --password --group --jid --name --password-command
                set skip 1
            case '-*'
            case '*'
                echo $t
        end
    end
end

function __stanzactl_ask
    set -l tokens (commandline -opc)
    set -l global
    for i in (seq 2 (count $tokens))
        switch $tokens[$i]
            case -c --config -s --socket
                set -a global $tokens[$i] $tokens[(math $i + 1)]
        end
    end
    command stanzactl $global complete $argv 2>/dev/null
end

function __stanzactl_commands
    command stanzactl complete commands 2>/dev/null | string replace -r ' .*' '' | uniq
end

# What to offer for the next positional word.
function __stanzactl_next
    set -l args (__stanzactl_args)
    set -l n (count $args)
    if test $n -eq 0
        __stanzactl_commands
        return
    end
    set -l cmd $args[1]
    set -e args[1]
    if test "$cmd" = roster; and test (count $args) -ge 1; and contains -- $args[1] add remove
        set cmd "roster $args[1]"
        set -e args[1]
    end
    set n (count $args)
    switch $cmd
        case help
            test $n -eq 0; and __stanzactl_commands
            test $n -eq 1; and test "$args[1]" = roster; and printf '%s\n' add remove
        case complete
            test $n -eq 0; and printf '%s\n' commands accounts contacts rooms
            test $n -eq 1; and contains -- $args[1] contacts rooms; and __stanzactl_ask accounts
        case status tail init doctor
        case roster
            test $n -eq 0; and printf '%s\n' add remove; and __stanzactl_ask accounts
        case presence
            test $n -eq 0; and __stanzactl_ask accounts
            test $n -eq 1; and printf '%s\n' online away chat dnd xa
        case join part
            test $n -eq 0; and __stanzactl_ask accounts
            test $n -eq 1; and __stanzactl_ask rooms $args[1]
        case rooms blocklist pin raw
            test $n -eq 0; and __stanzactl_ask accounts
        case '*'
            if test $n -eq 0
                __stanzactl_ask accounts
            else if test $n -eq 1; or contains -- $cmd block unblock
                __stanzactl_ask contacts $args[1]
            end
    end
end

complete -c stanzactl -f -a '(__stanzactl_next)'
complete -c stanzactl -s c -l config -r -F -d 'the configuration file'
complete -c stanzactl -s s -l socket -r -F -d "the daemon's socket"
complete -c stanzactl -l json -d 'print the JSON lines as received'
complete -c stanzactl -s h -l help -d 'print the usage'
complete -c stanzactl -l version -d 'print the version'
complete -c stanzactl -l id -x -d 'send: the message id'
complete -c stanzactl -l since -x -d 'tail: replay after seq N'
complete -c stanzactl -s n -x -d 'history: how many messages'
complete -c stanzactl -l before -x -d 'history: the page before ID'
complete -c stanzactl -l password -x -d "join: the room's password; init: the account's"
complete -c stanzactl -l group -x -d 'roster add: a group'
complete -c stanzactl -l no-subscribe -d 'roster add: do not subscribe'
complete -c stanzactl -l jid -x -d "init: the account's JID"
complete -c stanzactl -l name -x -d "init: the account's short name"
complete -c stanzactl -l password-command -x -d 'init: the command that prints the password'
complete -c stanzactl -l irc -d 'init: an IRC listener with a generated password'
complete -c stanzactl -l force -d 'init: replace an existing config'
