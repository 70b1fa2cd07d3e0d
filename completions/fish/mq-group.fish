function __mq-group_should_offer_completions_for_flags_or_options -a expected_commands
    set -l non_repeating_flags_or_options $argv[2..]
    set -l non_repeating_flags_or_options_absent 0
    set -l positional_index 0
    set -l commands
    __mq-group_parse_tokens
    test "$commands" = "$expected_commands"; and return $non_repeating_flags_or_options_absent
end

function __mq-group_should_offer_completions_for_positional -a expected_commands positional_index_comparison expected_positional_index
    set -l non_repeating_flags_or_options
    set -l non_repeating_flags_or_options_absent 0
    set -l positional_index 0
    set -l commands
    __mq-group_parse_tokens
    test "$commands" = "$expected_commands" -a \( "$positional_index" "$positional_index_comparison" "$expected_positional_index" \)
end

function __mq-group_parse_tokens -S
    set -l unparsed_tokens (__mq-group_tokens -pc)
    switch $unparsed_tokens[1]
    case 'mq-group'
        __mq-group_parse_subcommand 0 'version' 'h/help'
        switch $unparsed_tokens[1]
        case 'list'
            __mq-group_parse_subcommand 0 'dir=' 'J/json' 'q/quiet' 'version' 'h/help'
        case 'describe'
            __mq-group_parse_subcommand -r 1 'dir=' 't/topic=+' 'J/json' 'version' 'h/help'
        case 'delete'
            __mq-group_parse_subcommand -r 1 'dir=' 'force' 'n/dry-run' 'q/quiet' 'J/json' 'version' 'h/help'
        case 'reset'
            __mq-group_parse_subcommand 2 'dir=' 'to=' 'p/partition=' 'n/dry-run' 'y/yes' 'J/json' 'version' 'h/help'
        case 'help'
            __mq-group_parse_subcommand -r 1 'version'
        end
    end
end

function __mq-group_tokens
    if test (string split -m 1 -f 1 -- . "$FISH_VERSION") -gt 3
        commandline --tokens-raw $argv
    else
        commandline -o $argv
    end
end

function __mq-group_parse_subcommand -S -a positional_count
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

function __mq-group_complete_directories
    set -l token (commandline -t)
    string match -- '*/' $token
    set -l subdirs $token*/
    printf %s\n $subdirs
end

function __mq-group_custom_completion
    set -x SAP_SHELL fish
    set -x SAP_SHELL_VERSION $FISH_VERSION
    set -l tokens (__mq-group_tokens -p)
    if test -z "$(__mq-group_tokens -t)"
        set -l index (count (__mq-group_tokens -pc))
        set tokens $tokens[..$index] \'\' $tokens[(math $index + 1)..]
    end
    command $tokens[1] $argv $tokens
end

complete -c 'mq-group' -f
complete -c 'mq-group' -n '__mq-group_should_offer_completions_for_flags_or_options "mq-group" version' -l 'version' -d 'Show the version.'
complete -c 'mq-group' -n '__mq-group_should_offer_completions_for_flags_or_options "mq-group" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'mq-group' -n '__mq-group_should_offer_completions_for_positional "mq-group" -eq 1' -fa 'list' -d 'List groups: members, topics, lag and last commit.'
complete -c 'mq-group' -n '__mq-group_should_offer_completions_for_positional "mq-group" -eq 1' -fa 'describe' -d 'Show groups per partition: committed offset, log end, lag, owners, in-flight and retrying messages.'
complete -c 'mq-group' -n '__mq-group_should_offer_completions_for_positional "mq-group" -eq 1' -fa 'delete' -d 'Delete groups: their committed offsets, work-queue state and member files.'
complete -c 'mq-group' -n '__mq-group_should_offer_completions_for_positional "mq-group" -eq 1' -fa 'reset' -d 'Move a group\'s committed offsets on a topic.'
complete -c 'mq-group' -n '__mq-group_should_offer_completions_for_positional "mq-group" -eq 1' -fa 'help' -d 'Show subcommand help information.'
complete -c 'mq-group' -n '__mq-group_should_offer_completions_for_flags_or_options "mq-group list" dir' -l 'dir' -d 'The log directory (default: $MQ_DIR, else $XDG_DATA_HOME/mq, else ~/.local/share/mq).' -rfka ''
complete -c 'mq-group' -n '__mq-group_should_offer_completions_for_flags_or_options "mq-group list" J json' -s 'J' -l 'json' -d 'Print one JSON object.'
complete -c 'mq-group' -n '__mq-group_should_offer_completions_for_flags_or_options "mq-group list" q quiet' -s 'q' -l 'quiet' -d 'Print the group names alone, one per line.'
complete -c 'mq-group' -n '__mq-group_should_offer_completions_for_flags_or_options "mq-group list" version' -l 'version' -d 'Show the version.'
complete -c 'mq-group' -n '__mq-group_should_offer_completions_for_flags_or_options "mq-group list" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'mq-group' -n '__mq-group_should_offer_completions_for_flags_or_options "mq-group describe" dir' -l 'dir' -d 'The log directory (default: $MQ_DIR, else $XDG_DATA_HOME/mq, else ~/.local/share/mq).' -rfka ''
complete -c 'mq-group' -n '__mq-group_should_offer_completions_for_positional "mq-group describe" -ge 1' -fka '(__mq-group_custom_completion ---completion describe -- positional@0 (count (__mq-group_tokens -pc)) (__mq-group_tokens -tC))'
complete -c 'mq-group' -n '__mq-group_should_offer_completions_for_flags_or_options "mq-group describe"' -s 't' -l 'topic' -d 'Only this topic or topic pattern (repeatable).' -rfka '(__mq-group_custom_completion ---completion describe -- --topic (count (__mq-group_tokens -pc)) (__mq-group_tokens -tC))'
complete -c 'mq-group' -n '__mq-group_should_offer_completions_for_flags_or_options "mq-group describe" J json' -s 'J' -l 'json' -d 'Print one JSON object per group, one per line.'
complete -c 'mq-group' -n '__mq-group_should_offer_completions_for_flags_or_options "mq-group describe" version' -l 'version' -d 'Show the version.'
complete -c 'mq-group' -n '__mq-group_should_offer_completions_for_flags_or_options "mq-group describe" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'mq-group' -n '__mq-group_should_offer_completions_for_flags_or_options "mq-group delete" dir' -l 'dir' -d 'The log directory (default: $MQ_DIR, else $XDG_DATA_HOME/mq, else ~/.local/share/mq).' -rfka ''
complete -c 'mq-group' -n '__mq-group_should_offer_completions_for_positional "mq-group delete" -ge 1' -fka '(__mq-group_custom_completion ---completion delete -- positional@0 (count (__mq-group_tokens -pc)) (__mq-group_tokens -tC))'
complete -c 'mq-group' -n '__mq-group_should_offer_completions_for_flags_or_options "mq-group delete" force' -l 'force' -d 'Delete even while consumers run: they go on with what they hold, and their commits are lost.'
complete -c 'mq-group' -n '__mq-group_should_offer_completions_for_flags_or_options "mq-group delete" dry-run n' -s 'n' -l 'dry-run' -d 'Say what would be deleted, change nothing.'
complete -c 'mq-group' -n '__mq-group_should_offer_completions_for_flags_or_options "mq-group delete" q quiet' -s 'q' -l 'quiet' -d 'Print nothing on success.'
complete -c 'mq-group' -n '__mq-group_should_offer_completions_for_flags_or_options "mq-group delete" J json' -s 'J' -l 'json' -d 'Print one JSON object per group deleted, one per line.'
complete -c 'mq-group' -n '__mq-group_should_offer_completions_for_flags_or_options "mq-group delete" version' -l 'version' -d 'Show the version.'
complete -c 'mq-group' -n '__mq-group_should_offer_completions_for_flags_or_options "mq-group delete" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'mq-group' -n '__mq-group_should_offer_completions_for_flags_or_options "mq-group reset" dir' -l 'dir' -d 'The log directory (default: $MQ_DIR, else $XDG_DATA_HOME/mq, else ~/.local/share/mq).' -rfka ''
complete -c 'mq-group' -n '__mq-group_should_offer_completions_for_positional "mq-group reset" -eq 1' -fka '(__mq-group_custom_completion ---completion reset -- positional@0 (count (__mq-group_tokens -pc)) (__mq-group_tokens -tC))'
complete -c 'mq-group' -n '__mq-group_should_offer_completions_for_positional "mq-group reset" -eq 2' -fka '(__mq-group_custom_completion ---completion reset -- positional@1 (count (__mq-group_tokens -pc)) (__mq-group_tokens -tC))'
complete -c 'mq-group' -n '__mq-group_should_offer_completions_for_flags_or_options "mq-group reset" to' -l 'to' -d 'Where to: beginning, end, an offset, +N, -N, or a time (ISO-8601 or relative, e.g. -10m).' -rfka ''
complete -c 'mq-group' -n '__mq-group_should_offer_completions_for_flags_or_options "mq-group reset" p partition' -s 'p' -l 'partition' -d 'Only this partition.' -rfka ''
complete -c 'mq-group' -n '__mq-group_should_offer_completions_for_flags_or_options "mq-group reset" dry-run n' -s 'n' -l 'dry-run' -d 'Print the plan, change nothing.'
complete -c 'mq-group' -n '__mq-group_should_offer_completions_for_flags_or_options "mq-group reset" y yes' -s 'y' -l 'yes' -d 'Reset without asking.'
complete -c 'mq-group' -n '__mq-group_should_offer_completions_for_flags_or_options "mq-group reset" J json' -s 'J' -l 'json' -d 'Print the plan (or what was done) as one JSON object.'
complete -c 'mq-group' -n '__mq-group_should_offer_completions_for_flags_or_options "mq-group reset" version' -l 'version' -d 'Show the version.'
complete -c 'mq-group' -n '__mq-group_should_offer_completions_for_flags_or_options "mq-group reset" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'mq-group' -n '__mq-group_should_offer_completions_for_flags_or_options "mq-group help" version' -l 'version' -d 'Show the version.'
