function __mq-dlq_should_offer_completions_for_flags_or_options -a expected_commands
    set -l non_repeating_flags_or_options $argv[2..]
    set -l non_repeating_flags_or_options_absent 0
    set -l positional_index 0
    set -l commands
    __mq-dlq_parse_tokens
    test "$commands" = "$expected_commands"; and return $non_repeating_flags_or_options_absent
end

function __mq-dlq_should_offer_completions_for_positional -a expected_commands positional_index_comparison expected_positional_index
    set -l non_repeating_flags_or_options
    set -l non_repeating_flags_or_options_absent 0
    set -l positional_index 0
    set -l commands
    __mq-dlq_parse_tokens
    test "$commands" = "$expected_commands" -a \( "$positional_index" "$positional_index_comparison" "$expected_positional_index" \)
end

function __mq-dlq_parse_tokens -S
    set -l unparsed_tokens (__mq-dlq_tokens -pc)
    switch $unparsed_tokens[1]
    case 'mq-dlq'
        __mq-dlq_parse_subcommand 0 'version' 'h/help'
        switch $unparsed_tokens[1]
        case 'list'
            __mq-dlq_parse_subcommand -r 1 'dir=' 'J/json' 'version' 'h/help'
        case 'show'
            __mq-dlq_parse_subcommand 1 'dir=' 'reason=' 'status=' 'original-topic=' 'grep=' 'key=' 'header=+' 'older-than=' 'newer-than=' 'n/limit=' 'all' 'J/json' 'version' 'h/help'
        case 'redrive'
            __mq-dlq_parse_subcommand 1 'dir=' 'reason=' 'status=' 'original-topic=' 'grep=' 'key=' 'header=+' 'older-than=' 'newer-than=' 'n/limit=' 'into=' 'rate=' 'no-wait' 'dry-run' 'q/quiet' 'version' 'h/help'
        case 'purge'
            __mq-dlq_parse_subcommand 1 'dir=' 'reason=' 'status=' 'original-topic=' 'grep=' 'key=' 'header=+' 'older-than=' 'newer-than=' 'n/limit=' 'y/yes' 'no-wait' 'dry-run' 'q/quiet' 'version' 'h/help'
        case 'help'
            __mq-dlq_parse_subcommand -r 1 'version'
        end
    end
end

function __mq-dlq_tokens
    if test (string split -m 1 -f 1 -- . "$FISH_VERSION") -gt 3
        commandline --tokens-raw $argv
    else
        commandline -o $argv
    end
end

function __mq-dlq_parse_subcommand -S -a positional_count
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

function __mq-dlq_complete_directories
    set -l token (commandline -t)
    string match -- '*/' $token
    set -l subdirs $token*/
    printf %s\n $subdirs
end

function __mq-dlq_custom_completion
    set -x SAP_SHELL fish
    set -x SAP_SHELL_VERSION $FISH_VERSION
    set -l tokens (__mq-dlq_tokens -p)
    if test -z "$(__mq-dlq_tokens -t)"
        set -l index (count (__mq-dlq_tokens -pc))
        set tokens $tokens[..$index] \'\' $tokens[(math $index + 1)..]
    end
    command $tokens[1] $argv $tokens
end

complete -c 'mq-dlq' -f
complete -c 'mq-dlq' -n '__mq-dlq_should_offer_completions_for_flags_or_options "mq-dlq" version' -l 'version' -d 'Show the version.'
complete -c 'mq-dlq' -n '__mq-dlq_should_offer_completions_for_flags_or_options "mq-dlq" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'mq-dlq' -n '__mq-dlq_should_offer_completions_for_positional "mq-dlq" -eq 1' -fa 'list' -d 'Count the dead letters not yet redriven or purged, per topic.'
complete -c 'mq-dlq' -n '__mq-dlq_should_offer_completions_for_positional "mq-dlq" -eq 1' -fa 'show' -d 'Print dead letters with their failure headers.'
complete -c 'mq-dlq' -n '__mq-dlq_should_offer_completions_for_positional "mq-dlq" -eq 1' -fa 'redrive' -d 'Move dead letters back to their original topic, each exactly once.'
complete -c 'mq-dlq' -n '__mq-dlq_should_offer_completions_for_positional "mq-dlq" -eq 1' -fa 'purge' -d 'Drop dead letters from view without moving them.'
complete -c 'mq-dlq' -n '__mq-dlq_should_offer_completions_for_positional "mq-dlq" -eq 1' -fa 'help' -d 'Show subcommand help information.'
complete -c 'mq-dlq' -n '__mq-dlq_should_offer_completions_for_flags_or_options "mq-dlq list" dir' -l 'dir' -d 'The log directory (default: $MQ_DIR, else $XDG_DATA_HOME/mq, else ~/.local/share/mq).' -rfka ''
complete -c 'mq-dlq' -n '__mq-dlq_should_offer_completions_for_positional "mq-dlq list" -ge 1' -fka '(__mq-dlq_custom_completion ---completion list -- positional@0 (count (__mq-dlq_tokens -pc)) (__mq-dlq_tokens -tC))'
complete -c 'mq-dlq' -n '__mq-dlq_should_offer_completions_for_flags_or_options "mq-dlq list" J json' -s 'J' -l 'json' -d 'Print one JSON object per topic.'
complete -c 'mq-dlq' -n '__mq-dlq_should_offer_completions_for_flags_or_options "mq-dlq list" version' -l 'version' -d 'Show the version.'
complete -c 'mq-dlq' -n '__mq-dlq_should_offer_completions_for_flags_or_options "mq-dlq list" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'mq-dlq' -n '__mq-dlq_should_offer_completions_for_flags_or_options "mq-dlq show" dir' -l 'dir' -d 'The log directory (default: $MQ_DIR, else $XDG_DATA_HOME/mq, else ~/.local/share/mq).' -rfka ''
complete -c 'mq-dlq' -n '__mq-dlq_should_offer_completions_for_positional "mq-dlq show" -eq 1' -fka '(__mq-dlq_custom_completion ---completion show -- positional@0 (count (__mq-dlq_tokens -pc)) (__mq-dlq_tokens -tC))'
complete -c 'mq-dlq' -n '__mq-dlq_should_offer_completions_for_flags_or_options "mq-dlq show" reason' -l 'reason' -d 'Only letters with this mq.dlq.reason (failed, permanent, timeout, expired).' -rfka 'failed permanent timeout expired'
complete -c 'mq-dlq' -n '__mq-dlq_should_offer_completions_for_flags_or_options "mq-dlq show" status' -l 'status' -d 'Only letters whose handler exited with this status.' -rfka ''
complete -c 'mq-dlq' -n '__mq-dlq_should_offer_completions_for_flags_or_options "mq-dlq show" original-topic' -l 'original-topic' -d 'Only letters that came from this topic.' -rfka ''
complete -c 'mq-dlq' -n '__mq-dlq_should_offer_completions_for_flags_or_options "mq-dlq show" grep' -l 'grep' -d 'Only messages whose value matches this extended regular expression.' -rfka ''
complete -c 'mq-dlq' -n '__mq-dlq_should_offer_completions_for_flags_or_options "mq-dlq show" key' -l 'key' -d 'Only messages with this key.' -rfka ''
complete -c 'mq-dlq' -n '__mq-dlq_should_offer_completions_for_flags_or_options "mq-dlq show"' -l 'header' -d 'Only messages with this header (repeatable; all must match).' -rfka ''
complete -c 'mq-dlq' -n '__mq-dlq_should_offer_completions_for_flags_or_options "mq-dlq show" older-than' -l 'older-than' -d 'Only letters dead-lettered at least this long ago (a duration like 1h, or a time).' -rfka ''
complete -c 'mq-dlq' -n '__mq-dlq_should_offer_completions_for_flags_or_options "mq-dlq show" newer-than' -l 'newer-than' -d 'Only letters dead-lettered at most this long ago (a duration like 10m, or a time).' -rfka ''
complete -c 'mq-dlq' -n '__mq-dlq_should_offer_completions_for_flags_or_options "mq-dlq show" limit n' -s 'n' -l 'limit' -d 'At most this many letters.' -rfka ''
complete -c 'mq-dlq' -n '__mq-dlq_should_offer_completions_for_flags_or_options "mq-dlq show" all' -l 'all' -d 'Also letters already redriven or purged.'
complete -c 'mq-dlq' -n '__mq-dlq_should_offer_completions_for_flags_or_options "mq-dlq show" J json' -s 'J' -l 'json' -d 'Print one JSON envelope per letter, as mq-tail --json.'
complete -c 'mq-dlq' -n '__mq-dlq_should_offer_completions_for_flags_or_options "mq-dlq show" version' -l 'version' -d 'Show the version.'
complete -c 'mq-dlq' -n '__mq-dlq_should_offer_completions_for_flags_or_options "mq-dlq show" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'mq-dlq' -n '__mq-dlq_should_offer_completions_for_flags_or_options "mq-dlq redrive" dir' -l 'dir' -d 'The log directory (default: $MQ_DIR, else $XDG_DATA_HOME/mq, else ~/.local/share/mq).' -rfka ''
complete -c 'mq-dlq' -n '__mq-dlq_should_offer_completions_for_positional "mq-dlq redrive" -eq 1' -fka '(__mq-dlq_custom_completion ---completion redrive -- positional@0 (count (__mq-dlq_tokens -pc)) (__mq-dlq_tokens -tC))'
complete -c 'mq-dlq' -n '__mq-dlq_should_offer_completions_for_flags_or_options "mq-dlq redrive" reason' -l 'reason' -d 'Only letters with this mq.dlq.reason (failed, permanent, timeout, expired).' -rfka 'failed permanent timeout expired'
complete -c 'mq-dlq' -n '__mq-dlq_should_offer_completions_for_flags_or_options "mq-dlq redrive" status' -l 'status' -d 'Only letters whose handler exited with this status.' -rfka ''
complete -c 'mq-dlq' -n '__mq-dlq_should_offer_completions_for_flags_or_options "mq-dlq redrive" original-topic' -l 'original-topic' -d 'Only letters that came from this topic.' -rfka ''
complete -c 'mq-dlq' -n '__mq-dlq_should_offer_completions_for_flags_or_options "mq-dlq redrive" grep' -l 'grep' -d 'Only messages whose value matches this extended regular expression.' -rfka ''
complete -c 'mq-dlq' -n '__mq-dlq_should_offer_completions_for_flags_or_options "mq-dlq redrive" key' -l 'key' -d 'Only messages with this key.' -rfka ''
complete -c 'mq-dlq' -n '__mq-dlq_should_offer_completions_for_flags_or_options "mq-dlq redrive"' -l 'header' -d 'Only messages with this header (repeatable; all must match).' -rfka ''
complete -c 'mq-dlq' -n '__mq-dlq_should_offer_completions_for_flags_or_options "mq-dlq redrive" older-than' -l 'older-than' -d 'Only letters dead-lettered at least this long ago (a duration like 1h, or a time).' -rfka ''
complete -c 'mq-dlq' -n '__mq-dlq_should_offer_completions_for_flags_or_options "mq-dlq redrive" newer-than' -l 'newer-than' -d 'Only letters dead-lettered at most this long ago (a duration like 10m, or a time).' -rfka ''
complete -c 'mq-dlq' -n '__mq-dlq_should_offer_completions_for_flags_or_options "mq-dlq redrive" limit n' -s 'n' -l 'limit' -d 'At most this many letters.' -rfka ''
complete -c 'mq-dlq' -n '__mq-dlq_should_offer_completions_for_flags_or_options "mq-dlq redrive" into' -l 'into' -d 'Send the letters to this topic instead of their original ones.' -rfka '(__mq-dlq_custom_completion ---completion redrive -- --into (count (__mq-dlq_tokens -pc)) (__mq-dlq_tokens -tC))'
complete -c 'mq-dlq' -n '__mq-dlq_should_offer_completions_for_flags_or_options "mq-dlq redrive" rate' -l 'rate' -d 'Move at most this many letters a second: N, N/s, N/m or N/h.' -rfka ''
complete -c 'mq-dlq' -n '__mq-dlq_should_offer_completions_for_flags_or_options "mq-dlq redrive" no-wait' -l 'no-wait' -d 'Fail with status 75 instead of waiting when another redrive or purge of the topic runs.'
complete -c 'mq-dlq' -n '__mq-dlq_should_offer_completions_for_flags_or_options "mq-dlq redrive" dry-run' -l 'dry-run' -d 'List what would move, and move nothing.'
complete -c 'mq-dlq' -n '__mq-dlq_should_offer_completions_for_flags_or_options "mq-dlq redrive" q quiet' -s 'q' -l 'quiet' -d 'Print no progress and no summary line.'
complete -c 'mq-dlq' -n '__mq-dlq_should_offer_completions_for_flags_or_options "mq-dlq redrive" version' -l 'version' -d 'Show the version.'
complete -c 'mq-dlq' -n '__mq-dlq_should_offer_completions_for_flags_or_options "mq-dlq redrive" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'mq-dlq' -n '__mq-dlq_should_offer_completions_for_flags_or_options "mq-dlq purge" dir' -l 'dir' -d 'The log directory (default: $MQ_DIR, else $XDG_DATA_HOME/mq, else ~/.local/share/mq).' -rfka ''
complete -c 'mq-dlq' -n '__mq-dlq_should_offer_completions_for_positional "mq-dlq purge" -eq 1' -fka '(__mq-dlq_custom_completion ---completion purge -- positional@0 (count (__mq-dlq_tokens -pc)) (__mq-dlq_tokens -tC))'
complete -c 'mq-dlq' -n '__mq-dlq_should_offer_completions_for_flags_or_options "mq-dlq purge" reason' -l 'reason' -d 'Only letters with this mq.dlq.reason (failed, permanent, timeout, expired).' -rfka 'failed permanent timeout expired'
complete -c 'mq-dlq' -n '__mq-dlq_should_offer_completions_for_flags_or_options "mq-dlq purge" status' -l 'status' -d 'Only letters whose handler exited with this status.' -rfka ''
complete -c 'mq-dlq' -n '__mq-dlq_should_offer_completions_for_flags_or_options "mq-dlq purge" original-topic' -l 'original-topic' -d 'Only letters that came from this topic.' -rfka ''
complete -c 'mq-dlq' -n '__mq-dlq_should_offer_completions_for_flags_or_options "mq-dlq purge" grep' -l 'grep' -d 'Only messages whose value matches this extended regular expression.' -rfka ''
complete -c 'mq-dlq' -n '__mq-dlq_should_offer_completions_for_flags_or_options "mq-dlq purge" key' -l 'key' -d 'Only messages with this key.' -rfka ''
complete -c 'mq-dlq' -n '__mq-dlq_should_offer_completions_for_flags_or_options "mq-dlq purge"' -l 'header' -d 'Only messages with this header (repeatable; all must match).' -rfka ''
complete -c 'mq-dlq' -n '__mq-dlq_should_offer_completions_for_flags_or_options "mq-dlq purge" older-than' -l 'older-than' -d 'Only letters dead-lettered at least this long ago (a duration like 1h, or a time).' -rfka ''
complete -c 'mq-dlq' -n '__mq-dlq_should_offer_completions_for_flags_or_options "mq-dlq purge" newer-than' -l 'newer-than' -d 'Only letters dead-lettered at most this long ago (a duration like 10m, or a time).' -rfka ''
complete -c 'mq-dlq' -n '__mq-dlq_should_offer_completions_for_flags_or_options "mq-dlq purge" limit n' -s 'n' -l 'limit' -d 'At most this many letters.' -rfka ''
complete -c 'mq-dlq' -n '__mq-dlq_should_offer_completions_for_flags_or_options "mq-dlq purge" y yes' -s 'y' -l 'yes' -d 'Do not ask for confirmation.'
complete -c 'mq-dlq' -n '__mq-dlq_should_offer_completions_for_flags_or_options "mq-dlq purge" no-wait' -l 'no-wait' -d 'Fail with status 75 instead of waiting when another redrive or purge of the topic runs.'
complete -c 'mq-dlq' -n '__mq-dlq_should_offer_completions_for_flags_or_options "mq-dlq purge" dry-run' -l 'dry-run' -d 'List what would be purged, and purge nothing.'
complete -c 'mq-dlq' -n '__mq-dlq_should_offer_completions_for_flags_or_options "mq-dlq purge" q quiet' -s 'q' -l 'quiet' -d 'Print no summary line.'
complete -c 'mq-dlq' -n '__mq-dlq_should_offer_completions_for_flags_or_options "mq-dlq purge" version' -l 'version' -d 'Show the version.'
complete -c 'mq-dlq' -n '__mq-dlq_should_offer_completions_for_flags_or_options "mq-dlq purge" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'mq-dlq' -n '__mq-dlq_should_offer_completions_for_flags_or_options "mq-dlq help" version' -l 'version' -d 'Show the version.'
