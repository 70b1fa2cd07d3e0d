function __mq-topic_should_offer_completions_for_flags_or_options -a expected_commands
    set -l non_repeating_flags_or_options $argv[2..]
    set -l non_repeating_flags_or_options_absent 0
    set -l positional_index 0
    set -l commands
    __mq-topic_parse_tokens
    test "$commands" = "$expected_commands"; and return $non_repeating_flags_or_options_absent
end

function __mq-topic_should_offer_completions_for_positional -a expected_commands positional_index_comparison expected_positional_index
    set -l non_repeating_flags_or_options
    set -l non_repeating_flags_or_options_absent 0
    set -l positional_index 0
    set -l commands
    __mq-topic_parse_tokens
    test "$commands" = "$expected_commands" -a \( "$positional_index" "$positional_index_comparison" "$expected_positional_index" \)
end

function __mq-topic_parse_tokens -S
    set -l unparsed_tokens (__mq-topic_tokens -pc)
    switch $unparsed_tokens[1]
    case 'mq-topic'
        __mq-topic_parse_subcommand 0 'version' 'h/help'
        switch $unparsed_tokens[1]
        case 'create'
            __mq-topic_parse_subcommand 1 'dir=' 'partitions=' 'config=+' 'if-not-exists' 'n/dry-run' 'version' 'h/help'
        case 'list'
            __mq-topic_parse_subcommand 0 'dir=' 'version' 'h/help'
        case 'describe'
            __mq-topic_parse_subcommand -r 1 'dir=' 'J/json' 'version' 'h/help'
        case 'alter'
            __mq-topic_parse_subcommand 1 'dir=' 'config=+' 'delete-config=+' 'n/dry-run' 'version' 'h/help'
        case 'delete'
            __mq-topic_parse_subcommand -r 1 'dir=' 'force' 'n/dry-run' 'version' 'h/help'
        case 'help'
            __mq-topic_parse_subcommand -r 1 'version'
        end
    end
end

function __mq-topic_tokens
    if test (string split -m 1 -f 1 -- . "$FISH_VERSION") -gt 3
        commandline --tokens-raw $argv
    else
        commandline -o $argv
    end
end

function __mq-topic_parse_subcommand -S -a positional_count
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

function __mq-topic_complete_directories
    set -l token (commandline -t)
    string match -- '*/' $token
    set -l subdirs $token*/
    printf %s\n $subdirs
end

function __mq-topic_custom_completion
    set -x SAP_SHELL fish
    set -x SAP_SHELL_VERSION $FISH_VERSION
    set -l tokens (__mq-topic_tokens -p)
    if test -z "$(__mq-topic_tokens -t)"
        set -l index (count (__mq-topic_tokens -pc))
        set tokens $tokens[..$index] \'\' $tokens[(math $index + 1)..]
    end
    command $tokens[1] $argv $tokens
end

complete -c 'mq-topic' -f
complete -c 'mq-topic' -n '__mq-topic_should_offer_completions_for_flags_or_options "mq-topic" version' -l 'version' -d 'Show the version.'
complete -c 'mq-topic' -n '__mq-topic_should_offer_completions_for_flags_or_options "mq-topic" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'mq-topic' -n '__mq-topic_should_offer_completions_for_positional "mq-topic" -eq 1' -fa 'create' -d 'Create a topic.'
complete -c 'mq-topic' -n '__mq-topic_should_offer_completions_for_positional "mq-topic" -eq 1' -fa 'list' -d 'List topics, one per line.'
complete -c 'mq-topic' -n '__mq-topic_should_offer_completions_for_positional "mq-topic" -eq 1' -fa 'describe' -d 'Show topics\' partitions, offsets, sizes and configs.'
complete -c 'mq-topic' -n '__mq-topic_should_offer_completions_for_positional "mq-topic" -eq 1' -fa 'alter' -d 'Change a topic\'s configs.'
complete -c 'mq-topic' -n '__mq-topic_should_offer_completions_for_positional "mq-topic" -eq 1' -fa 'delete' -d 'Delete topics and all their messages.'
complete -c 'mq-topic' -n '__mq-topic_should_offer_completions_for_positional "mq-topic" -eq 1' -fa 'help' -d 'Show subcommand help information.'
complete -c 'mq-topic' -n '__mq-topic_should_offer_completions_for_flags_or_options "mq-topic create" dir' -l 'dir' -d 'The log directory (default: $MQ_DIR, else $XDG_DATA_HOME/mq, else ~/.local/share/mq).' -rfka ''
complete -c 'mq-topic' -n '__mq-topic_should_offer_completions_for_flags_or_options "mq-topic create" partitions' -l 'partitions' -d 'Number of partitions, fixed for the topic\'s life.' -rfka ''
complete -c 'mq-topic' -n '__mq-topic_should_offer_completions_for_flags_or_options "mq-topic create"' -l 'config' -d 'Set a topic config (repeatable).' -rfka '(__mq-topic_custom_completion ---completion create -- --config (count (__mq-topic_tokens -pc)) (__mq-topic_tokens -tC))'
complete -c 'mq-topic' -n '__mq-topic_should_offer_completions_for_flags_or_options "mq-topic create" if-not-exists' -l 'if-not-exists' -d 'Succeed without change when the topic exists.'
complete -c 'mq-topic' -n '__mq-topic_should_offer_completions_for_flags_or_options "mq-topic create" dry-run n' -s 'n' -l 'dry-run' -d 'Check the name and configs, say what would be created, create nothing.'
complete -c 'mq-topic' -n '__mq-topic_should_offer_completions_for_flags_or_options "mq-topic create" version' -l 'version' -d 'Show the version.'
complete -c 'mq-topic' -n '__mq-topic_should_offer_completions_for_flags_or_options "mq-topic create" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'mq-topic' -n '__mq-topic_should_offer_completions_for_flags_or_options "mq-topic list" dir' -l 'dir' -d 'The log directory (default: $MQ_DIR, else $XDG_DATA_HOME/mq, else ~/.local/share/mq).' -rfka ''
complete -c 'mq-topic' -n '__mq-topic_should_offer_completions_for_flags_or_options "mq-topic list" version' -l 'version' -d 'Show the version.'
complete -c 'mq-topic' -n '__mq-topic_should_offer_completions_for_flags_or_options "mq-topic list" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'mq-topic' -n '__mq-topic_should_offer_completions_for_flags_or_options "mq-topic describe" dir' -l 'dir' -d 'The log directory (default: $MQ_DIR, else $XDG_DATA_HOME/mq, else ~/.local/share/mq).' -rfka ''
complete -c 'mq-topic' -n '__mq-topic_should_offer_completions_for_positional "mq-topic describe" -ge 1' -fka '(__mq-topic_custom_completion ---completion describe -- positional@0 (count (__mq-topic_tokens -pc)) (__mq-topic_tokens -tC))'
complete -c 'mq-topic' -n '__mq-topic_should_offer_completions_for_flags_or_options "mq-topic describe" J json' -s 'J' -l 'json' -d 'Print one JSON object per topic.'
complete -c 'mq-topic' -n '__mq-topic_should_offer_completions_for_flags_or_options "mq-topic describe" version' -l 'version' -d 'Show the version.'
complete -c 'mq-topic' -n '__mq-topic_should_offer_completions_for_flags_or_options "mq-topic describe" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'mq-topic' -n '__mq-topic_should_offer_completions_for_flags_or_options "mq-topic alter" dir' -l 'dir' -d 'The log directory (default: $MQ_DIR, else $XDG_DATA_HOME/mq, else ~/.local/share/mq).' -rfka ''
complete -c 'mq-topic' -n '__mq-topic_should_offer_completions_for_positional "mq-topic alter" -eq 1' -fka '(__mq-topic_custom_completion ---completion alter -- positional@0 (count (__mq-topic_tokens -pc)) (__mq-topic_tokens -tC))'
complete -c 'mq-topic' -n '__mq-topic_should_offer_completions_for_flags_or_options "mq-topic alter"' -l 'config' -d 'Set a topic config (repeatable).' -rfka '(__mq-topic_custom_completion ---completion alter -- --config (count (__mq-topic_tokens -pc)) (__mq-topic_tokens -tC))'
complete -c 'mq-topic' -n '__mq-topic_should_offer_completions_for_flags_or_options "mq-topic alter"' -l 'delete-config' -d 'Return a config to its default (repeatable).' -rfka '(__mq-topic_custom_completion ---completion alter -- --delete-config (count (__mq-topic_tokens -pc)) (__mq-topic_tokens -tC))'
complete -c 'mq-topic' -n '__mq-topic_should_offer_completions_for_flags_or_options "mq-topic alter" dry-run n' -s 'n' -l 'dry-run' -d 'Check the changes, print the configs as they would be, change nothing.'
complete -c 'mq-topic' -n '__mq-topic_should_offer_completions_for_flags_or_options "mq-topic alter" version' -l 'version' -d 'Show the version.'
complete -c 'mq-topic' -n '__mq-topic_should_offer_completions_for_flags_or_options "mq-topic alter" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'mq-topic' -n '__mq-topic_should_offer_completions_for_flags_or_options "mq-topic delete" dir' -l 'dir' -d 'The log directory (default: $MQ_DIR, else $XDG_DATA_HOME/mq, else ~/.local/share/mq).' -rfka ''
complete -c 'mq-topic' -n '__mq-topic_should_offer_completions_for_positional "mq-topic delete" -ge 1' -fka '(__mq-topic_custom_completion ---completion delete -- positional@0 (count (__mq-topic_tokens -pc)) (__mq-topic_tokens -tC))'
complete -c 'mq-topic' -n '__mq-topic_should_offer_completions_for_flags_or_options "mq-topic delete" force' -l 'force' -d 'Delete even while a producer or reader has the topic open.'
complete -c 'mq-topic' -n '__mq-topic_should_offer_completions_for_flags_or_options "mq-topic delete" dry-run n' -s 'n' -l 'dry-run' -d 'Make every check, say what would be deleted, delete nothing.'
complete -c 'mq-topic' -n '__mq-topic_should_offer_completions_for_flags_or_options "mq-topic delete" version' -l 'version' -d 'Show the version.'
complete -c 'mq-topic' -n '__mq-topic_should_offer_completions_for_flags_or_options "mq-topic delete" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'mq-topic' -n '__mq-topic_should_offer_completions_for_flags_or_options "mq-topic help" version' -l 'version' -d 'Show the version.'
