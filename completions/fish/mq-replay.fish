function __mq-replay_should_offer_completions_for_flags_or_options -a expected_commands
    set -l non_repeating_flags_or_options $argv[2..]
    set -l non_repeating_flags_or_options_absent 0
    set -l positional_index 0
    set -l commands
    __mq-replay_parse_tokens
    test "$commands" = "$expected_commands"; and return $non_repeating_flags_or_options_absent
end

function __mq-replay_should_offer_completions_for_positional -a expected_commands positional_index_comparison expected_positional_index
    set -l non_repeating_flags_or_options
    set -l non_repeating_flags_or_options_absent 0
    set -l positional_index 0
    set -l commands
    __mq-replay_parse_tokens
    test "$commands" = "$expected_commands" -a \( "$positional_index" "$positional_index_comparison" "$expected_positional_index" \)
end

function __mq-replay_parse_tokens -S
    set -l unparsed_tokens (__mq-replay_tokens -pc)
    switch $unparsed_tokens[1]
    case 'mq-replay'
        __mq-replay_parse_subcommand 1 'dir=' 'from=' 'to=' 'p/partition=' 'grep=' 'key=' 'header=+' 'rate=' 'v/verbose' 'd/delimiter=' '0/null' 'format=' 'J/json' 'into=' 'restamp' 'name=' 'again' 'no-create' 'no-wait' 'g/group=' 'reset-to=' 'n/dry-run' 'read-uncommitted' 'version' 'h/help'
        switch $unparsed_tokens[1]
        case 'help'
            __mq-replay_parse_subcommand -r 1 'version'
        end
    end
end

function __mq-replay_tokens
    if test (string split -m 1 -f 1 -- . "$FISH_VERSION") -gt 3
        commandline --tokens-raw $argv
    else
        commandline -o $argv
    end
end

function __mq-replay_parse_subcommand -S -a positional_count
    argparse -s r -- $argv
    set -l option_specs $argv[2..]
    set -l is_repeating_positional $_flag_r
    set -el _flag_r
    set -a commands $unparsed_tokens[1]
    set positional_index 0
    while true
        set -e unparsed_tokens[1]
        argparse -sn "$commands" $option_specs -- $unparsed_tokens 2> /dev/null
        set unparsed_tokens $argv
        set positional_index (math $positional_index + 1)
        for non_repeating_flag_or_option in $non_repeating_flags_or_options
            if set -ql "_flag_$(string replace -a - _ -- $non_repeating_flag_or_option)"
                set non_repeating_flags_or_options_absent 1
                break
            end
        end
        test (count $unparsed_tokens) -eq 0 -o \( -z "$is_repeating_positional" -a "$positional_index" -gt "$positional_count" \) && break
    end
end

function __mq-replay_complete_directories
    set -l token (commandline -t)
    string match -- '*/' $token
    set -l subdirs $token*/
    printf %s\n $subdirs
end

function __mq-replay_custom_completion
    set -x SAP_SHELL fish
    set -x SAP_SHELL_VERSION $FISH_VERSION
    set -l tokens (__mq-replay_tokens -p)
    if test -z "$(__mq-replay_tokens -t)"
        set -l index (count (__mq-replay_tokens -pc))
        set tokens $tokens[..$index] \'\' $tokens[(math $index + 1)..]
    end
    command $tokens[1] $argv $tokens
end

complete -c 'mq-replay' -f
complete -c 'mq-replay' -n '__mq-replay_should_offer_completions_for_flags_or_options "mq-replay" dir' -l 'dir' -d 'The log directory (default: $MQ_DIR, else $XDG_DATA_HOME/mq, else ~/.local/share/mq).' -rfka ''
complete -c 'mq-replay' -n '__mq-replay_should_offer_completions_for_positional "mq-replay" -eq 1' -fka '(__mq-replay_custom_completion ---completion -- positional@0 (count (__mq-replay_tokens -pc)) (__mq-replay_tokens -tC))'
complete -c 'mq-replay' -n '__mq-replay_should_offer_completions_for_flags_or_options "mq-replay" from' -l 'from' -d 'First message: beginning (default), end, an offset, PARTITION:OFFSET,..., or a time.' -rfka ''
complete -c 'mq-replay' -n '__mq-replay_should_offer_completions_for_flags_or_options "mq-replay" to' -l 'to' -d 'Last message, included: end (default, as it is at the start), an offset, PARTITION:OFFSET,..., or a time.' -rfka ''
complete -c 'mq-replay' -n '__mq-replay_should_offer_completions_for_flags_or_options "mq-replay" p partition' -s 'p' -l 'partition' -d 'Only this partition.' -rfka ''
complete -c 'mq-replay' -n '__mq-replay_should_offer_completions_for_flags_or_options "mq-replay" grep' -l 'grep' -d 'Only messages whose value matches this extended regular expression.' -rfka ''
complete -c 'mq-replay' -n '__mq-replay_should_offer_completions_for_flags_or_options "mq-replay" key' -l 'key' -d 'Only messages with this key.' -rfka ''
complete -c 'mq-replay' -n '__mq-replay_should_offer_completions_for_flags_or_options "mq-replay"' -l 'header' -d 'Only messages with this header (repeatable; all must match).' -rfka ''
complete -c 'mq-replay' -n '__mq-replay_should_offer_completions_for_flags_or_options "mq-replay" rate' -l 'rate' -d 'At most this many messages a second: N, N/s, N/m or N/h.' -rfka ''
complete -c 'mq-replay' -n '__mq-replay_should_offer_completions_for_flags_or_options "mq-replay" v verbose' -s 'v' -l 'verbose' -d 'Print a summary on standard error.'
complete -c 'mq-replay' -n '__mq-replay_should_offer_completions_for_flags_or_options "mq-replay" D d delimiter' -s 'd' -s 'D' -l 'delimiter' -d 'Write this after each value instead of a newline (-D as kcat).' -rfka ''
complete -c 'mq-replay' -n '__mq-replay_should_offer_completions_for_flags_or_options "mq-replay" 0 null' -s '0' -l 'null' -d 'End each value with a NUL byte.'
complete -c 'mq-replay' -n '__mq-replay_should_offer_completions_for_flags_or_options "mq-replay" format' -l 'format' -d 'Print with kcat tokens: %t %p %o %k %s %T %h %K %S, \\n \\t.' -rfka ''
complete -c 'mq-replay' -n '__mq-replay_should_offer_completions_for_flags_or_options "mq-replay" J json' -s 'J' -l 'json' -d 'Print one JSON envelope per message.'
complete -c 'mq-replay' -n '__mq-replay_should_offer_completions_for_flags_or_options "mq-replay" into' -l 'into' -d 'Copy the range into this topic (TOPIC itself included) instead of printing it, each message exactly once however often the replay is interrupted and run again.' -rfka '(__mq-replay_custom_completion ---completion -- --into (count (__mq-replay_tokens -pc)) (__mq-replay_tokens -tC))'
complete -c 'mq-replay' -n '__mq-replay_should_offer_completions_for_flags_or_options "mq-replay" restamp' -l 'restamp' -d 'With --into: give the copies the time of the copy instead of their original timestamps.'
complete -c 'mq-replay' -n '__mq-replay_should_offer_completions_for_flags_or_options "mq-replay" name' -l 'name' -d 'With --into: name the replay instead of identifying it by its arguments.' -rfka ''
complete -c 'mq-replay' -n '__mq-replay_should_offer_completions_for_flags_or_options "mq-replay" again' -l 'again' -d 'With --into: copy again a replay that is complete.'
complete -c 'mq-replay' -n '__mq-replay_should_offer_completions_for_flags_or_options "mq-replay" no-create' -l 'no-create' -d 'With --into: fail when the destination topic does not exist instead of creating it.'
complete -c 'mq-replay' -n '__mq-replay_should_offer_completions_for_flags_or_options "mq-replay" no-wait' -l 'no-wait' -d 'With --into: fail with status 75 when the same replay runs elsewhere, instead of waiting for it.'
complete -c 'mq-replay' -n '__mq-replay_should_offer_completions_for_flags_or_options "mq-replay" g group' -s 'g' -l 'group' -d 'With --reset-to: the consumer group whose offsets move.' -rfka '(__mq-replay_custom_completion ---completion -- --group (count (__mq-replay_tokens -pc)) (__mq-replay_tokens -tC))'
complete -c 'mq-replay' -n '__mq-replay_should_offer_completions_for_flags_or_options "mq-replay" reset-to' -l 'reset-to' -d 'Move the group\'s committed offsets: beginning, end, an offset, +N, -N, or a time.' -rfka ''
complete -c 'mq-replay' -n '__mq-replay_should_offer_completions_for_flags_or_options "mq-replay" dry-run n' -s 'n' -l 'dry-run' -d 'With --reset-to: print the offsets before and after, change nothing.'
complete -c 'mq-replay' -n '__mq-replay_should_offer_completions_for_flags_or_options "mq-replay" read-uncommitted' -l 'read-uncommitted' -d 'Also show records of transactions still open or aborted (default: committed only).'
complete -c 'mq-replay' -n '__mq-replay_should_offer_completions_for_flags_or_options "mq-replay" version' -l 'version' -d 'Show the version.'
complete -c 'mq-replay' -n '__mq-replay_should_offer_completions_for_flags_or_options "mq-replay" h help' -s 'h' -l 'help' -d 'Show help information.'
