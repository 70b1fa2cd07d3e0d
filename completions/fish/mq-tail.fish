function __mq-tail_should_offer_completions_for_flags_or_options -a expected_commands
    set -l non_repeating_flags_or_options $argv[2..]
    set -l non_repeating_flags_or_options_absent 0
    set -l positional_index 0
    set -l commands
    __mq-tail_parse_tokens
    test "$commands" = "$expected_commands"; and return $non_repeating_flags_or_options_absent
end

function __mq-tail_should_offer_completions_for_positional -a expected_commands positional_index_comparison expected_positional_index
    set -l non_repeating_flags_or_options
    set -l non_repeating_flags_or_options_absent 0
    set -l positional_index 0
    set -l commands
    __mq-tail_parse_tokens
    test "$commands" = "$expected_commands" -a \( "$positional_index" "$positional_index_comparison" "$expected_positional_index" \)
end

function __mq-tail_parse_tokens -S
    set -l unparsed_tokens (__mq-tail_tokens -pc)
    switch $unparsed_tokens[1]
    case 'mq-tail'
        __mq-tail_parse_subcommand -r 1 'dir=' 'n/lines=' 'from=' 'o=' 'c/count=' 'f/follow' 'read-uncommitted' 'p/partition=' 'd/delimiter=' '0/null' 'format=' 'J/json' 'version' 'h/help'
        switch $unparsed_tokens[1]
        case 'help'
            __mq-tail_parse_subcommand -r 1 'version'
        end
    end
end

function __mq-tail_tokens
    if test (string split -m 1 -f 1 -- . "$FISH_VERSION") -gt 3
        commandline --tokens-raw $argv
    else
        commandline -o $argv
    end
end

function __mq-tail_parse_subcommand -S -a positional_count
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

function __mq-tail_complete_directories
    set -l token (commandline -t)
    string match -- '*/' $token
    set -l subdirs $token*/
    printf %s\n $subdirs
end

function __mq-tail_custom_completion
    set -x SAP_SHELL fish
    set -x SAP_SHELL_VERSION $FISH_VERSION
    set -l tokens (__mq-tail_tokens -p)
    if test -z "$(__mq-tail_tokens -t)"
        set -l index (count (__mq-tail_tokens -pc))
        set tokens $tokens[..$index] \'\' $tokens[(math $index + 1)..]
    end
    command $tokens[1] $argv $tokens
end

complete -c 'mq-tail' -f
complete -c 'mq-tail' -n '__mq-tail_should_offer_completions_for_flags_or_options "mq-tail" dir' -l 'dir' -d 'The log directory (default: $MQ_DIR, else $XDG_DATA_HOME/mq, else ~/.local/share/mq).' -rfka ''
complete -c 'mq-tail' -n '__mq-tail_should_offer_completions_for_positional "mq-tail" -ge 1' -fka '(__mq-tail_custom_completion ---completion -- positional@0 (count (__mq-tail_tokens -pc)) (__mq-tail_tokens -tC))'
complete -c 'mq-tail' -n '__mq-tail_should_offer_completions_for_flags_or_options "mq-tail" lines n' -s 'n' -l 'lines' -d 'Print the last N messages, or with +N each partition from its Nth message (+1: the first).' -rfka ''
complete -c 'mq-tail' -n '__mq-tail_should_offer_completions_for_flags_or_options "mq-tail" from' -l 'from' -d 'Start at beginning, end, an offset, or a time (ISO-8601, or relative like -10m).' -rfka ''
complete -c 'mq-tail' -n '__mq-tail_should_offer_completions_for_flags_or_options "mq-tail" o' -s 'o' -d 'Start as kcat -o does: beginning, end, an offset N, -N (the last N of each partition), or s@MS (a time in ms since the epoch).' -rfka ''
complete -c 'mq-tail' -n '__mq-tail_should_offer_completions_for_flags_or_options "mq-tail" c count' -s 'c' -l 'count' -d 'Stop after N messages.' -rfka ''
complete -c 'mq-tail' -n '__mq-tail_should_offer_completions_for_flags_or_options "mq-tail" f follow' -s 'f' -l 'follow' -d 'Keep printing messages as they are appended.'
complete -c 'mq-tail' -n '__mq-tail_should_offer_completions_for_flags_or_options "mq-tail" read-uncommitted' -l 'read-uncommitted' -d 'Also show records of transactions still open or aborted (default: committed only).'
complete -c 'mq-tail' -n '__mq-tail_should_offer_completions_for_flags_or_options "mq-tail" p partition' -s 'p' -l 'partition' -d 'Read only this partition.' -rfka ''
complete -c 'mq-tail' -n '__mq-tail_should_offer_completions_for_flags_or_options "mq-tail" D d delimiter' -s 'd' -s 'D' -l 'delimiter' -d 'Write this after each value instead of a newline (-D as kcat).' -rfka ''
complete -c 'mq-tail' -n '__mq-tail_should_offer_completions_for_flags_or_options "mq-tail" 0 null' -s '0' -l 'null' -d 'End each value with a NUL byte.'
complete -c 'mq-tail' -n '__mq-tail_should_offer_completions_for_flags_or_options "mq-tail" format' -l 'format' -d 'Print with kcat tokens: %t %p %o %k %s %T %h %K %S, \\n \\t.' -rfka ''
complete -c 'mq-tail' -n '__mq-tail_should_offer_completions_for_flags_or_options "mq-tail" J json' -s 'J' -l 'json' -d 'Print one JSON envelope per message.'
complete -c 'mq-tail' -n '__mq-tail_should_offer_completions_for_flags_or_options "mq-tail" version' -l 'version' -d 'Show the version.'
complete -c 'mq-tail' -n '__mq-tail_should_offer_completions_for_flags_or_options "mq-tail" h help' -s 'h' -l 'help' -d 'Show help information.'
