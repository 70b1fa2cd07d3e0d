function __mq-compact_should_offer_completions_for_flags_or_options -a expected_commands
    set -l non_repeating_flags_or_options $argv[2..]
    set -l non_repeating_flags_or_options_absent 0
    set -l positional_index 0
    set -l commands
    __mq-compact_parse_tokens
    test "$commands" = "$expected_commands"; and return $non_repeating_flags_or_options_absent
end

function __mq-compact_should_offer_completions_for_positional -a expected_commands positional_index_comparison expected_positional_index
    set -l non_repeating_flags_or_options
    set -l non_repeating_flags_or_options_absent 0
    set -l positional_index 0
    set -l commands
    __mq-compact_parse_tokens
    test "$commands" = "$expected_commands" -a \( "$positional_index" "$positional_index_comparison" "$expected_positional_index" \)
end

function __mq-compact_parse_tokens -S
    set -l unparsed_tokens (__mq-compact_tokens -pc)
    switch $unparsed_tokens[1]
    case 'mq-compact'
        __mq-compact_parse_subcommand -r 1 'dir=' 'a/all' 'n/dry-run' 'v/verbose' 'no-wait' 'force' 'ignore-consumers' 'check' 'repair' 'group-expiry=' 'version' 'h/help'
        switch $unparsed_tokens[1]
        case 'help'
            __mq-compact_parse_subcommand -r 1 'version'
        end
    end
end

function __mq-compact_tokens
    if test (string split -m 1 -f 1 -- . "$FISH_VERSION") -gt 3
        commandline --tokens-raw $argv
    else
        commandline -o $argv
    end
end

function __mq-compact_parse_subcommand -S -a positional_count
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

function __mq-compact_complete_directories
    set -l token (commandline -t)
    string match -- '*/' $token
    set -l subdirs $token*/
    printf %s\n $subdirs
end

function __mq-compact_custom_completion
    set -x SAP_SHELL fish
    set -x SAP_SHELL_VERSION $FISH_VERSION
    set -l tokens (__mq-compact_tokens -p)
    if test -z "$(__mq-compact_tokens -t)"
        set -l index (count (__mq-compact_tokens -pc))
        set tokens $tokens[..$index] \'\' $tokens[(math $index + 1)..]
    end
    command $tokens[1] $argv $tokens
end

complete -c 'mq-compact' -f
complete -c 'mq-compact' -n '__mq-compact_should_offer_completions_for_flags_or_options "mq-compact" dir' -l 'dir' -d 'The log directory (default: $MQ_DIR, else $XDG_DATA_HOME/mq, else ~/.local/share/mq).' -rfka ''
complete -c 'mq-compact' -n '__mq-compact_should_offer_completions_for_positional "mq-compact" -ge 1' -fka '(__mq-compact_custom_completion ---completion -- positional@0 (count (__mq-compact_tokens -pc)) (__mq-compact_tokens -tC))'
complete -c 'mq-compact' -n '__mq-compact_should_offer_completions_for_flags_or_options "mq-compact" a all' -s 'a' -l 'all' -d 'Process every topic, and expire idle consumer-group state.'
complete -c 'mq-compact' -n '__mq-compact_should_offer_completions_for_flags_or_options "mq-compact" dry-run n' -s 'n' -l 'dry-run' -d 'Change nothing; print the summary line of what would be done.'
complete -c 'mq-compact' -n '__mq-compact_should_offer_completions_for_flags_or_options "mq-compact" v verbose' -s 'v' -l 'verbose' -d 'Print one summary line.'
complete -c 'mq-compact' -n '__mq-compact_should_offer_completions_for_flags_or_options "mq-compact" no-wait' -l 'no-wait' -d 'Exit with status 75 instead of waiting when another mq-compact is running.'
complete -c 'mq-compact' -n '__mq-compact_should_offer_completions_for_flags_or_options "mq-compact" force' -l 'force' -d 'Compact regardless of min.cleanable.dirty.ratio.'
complete -c 'mq-compact' -n '__mq-compact_should_offer_completions_for_flags_or_options "mq-compact" ignore-consumers' -l 'ignore-consumers' -d 'Let retention delete segments that consumer groups have not read yet.'
complete -c 'mq-compact' -n '__mq-compact_should_offer_completions_for_flags_or_options "mq-compact" check' -l 'check' -d 'Only validate every batch and index; change nothing; exit 65 on problems.'
complete -c 'mq-compact' -n '__mq-compact_should_offer_completions_for_flags_or_options "mq-compact" repair' -l 'repair' -d 'Validate, cut torn tails, rebuild indexes; exit 65 on damage it cannot fix.'
complete -c 'mq-compact' -n '__mq-compact_should_offer_completions_for_flags_or_options "mq-compact" group-expiry' -l 'group-expiry' -d 'With --all: expire consumer-group state idle for this long.' -rfka ''
complete -c 'mq-compact' -n '__mq-compact_should_offer_completions_for_flags_or_options "mq-compact" version' -l 'version' -d 'Show the version.'
complete -c 'mq-compact' -n '__mq-compact_should_offer_completions_for_flags_or_options "mq-compact" h help' -s 'h' -l 'help' -d 'Show help information.'
