function __mq-consume_should_offer_completions_for_flags_or_options -a expected_commands
    set -l non_repeating_flags_or_options $argv[2..]
    set -l non_repeating_flags_or_options_absent 0
    set -l positional_index 0
    set -l commands
    __mq-consume_parse_tokens
    test "$commands" = "$expected_commands"; and return $non_repeating_flags_or_options_absent
end

function __mq-consume_should_offer_completions_for_positional -a expected_commands positional_index_comparison expected_positional_index
    set -l non_repeating_flags_or_options
    set -l non_repeating_flags_or_options_absent 0
    set -l positional_index 0
    set -l commands
    __mq-consume_parse_tokens
    test "$commands" = "$expected_commands" -a \( "$positional_index" "$positional_index_comparison" "$expected_positional_index" \)
end

function __mq-consume_parse_tokens -S
    set -l unparsed_tokens (__mq-consume_tokens -pc)
    switch $unparsed_tokens[1]
    case 'mq-consume'
        __mq-consume_parse_subcommand -r 1 'dir=' 'g/group=' 'from=' 'e/exit' 'read-uncommitted' 'c/count=' 'grep=' 'key=' 'header=+' 'commit-interval=' 'd/delimiter=' '0/null' 'format=' 'J/json' 'max-attempts=' 'backoff=' 'backoff-max=' 'timeout=' 'dlq-on=+' 'dlq=' 'max-age=' 'batch=' 'queue' 'lease=' 'P/parallel=' 'dedup' 'id-header=' 'dedup-window=' 'version' 'h/help'
        switch $unparsed_tokens[1]
        case 'help'
            __mq-consume_parse_subcommand -r 1 'version'
        end
    end
end

function __mq-consume_tokens
    if test (string split -m 1 -f 1 -- . "$FISH_VERSION") -gt 3
        commandline --tokens-raw $argv
    else
        commandline -o $argv
    end
end

function __mq-consume_parse_subcommand -S -a positional_count
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

function __mq-consume_complete_directories
    set -l token (commandline -t)
    string match -- '*/' $token
    set -l subdirs $token*/
    printf %s\n $subdirs
end

function __mq-consume_custom_completion
    set -x SAP_SHELL fish
    set -x SAP_SHELL_VERSION $FISH_VERSION
    set -l tokens (__mq-consume_tokens -p)
    if test -z "$(__mq-consume_tokens -t)"
        set -l index (count (__mq-consume_tokens -pc))
        set tokens $tokens[..$index] \'\' $tokens[(math $index + 1)..]
    end
    command $tokens[1] $argv $tokens
end

complete -c 'mq-consume' -f
complete -c 'mq-consume' -n '__mq-consume_should_offer_completions_for_flags_or_options "mq-consume" dir' -l 'dir' -d 'The log directory (default: $MQ_DIR, else $XDG_DATA_HOME/mq, else ~/.local/share/mq).' -rfka ''
complete -c 'mq-consume' -n '__mq-consume_should_offer_completions_for_positional "mq-consume" -ge 1' -fka '(__mq-consume_custom_completion ---completion -- positional@0 (count (__mq-consume_tokens -pc)) (__mq-consume_tokens -tC))'
complete -c 'mq-consume' -n '__mq-consume_should_offer_completions_for_flags_or_options "mq-consume" g group' -s 'g' -l 'group' -d 'The consumer group: resume from its committed offsets and share partitions with its other members.' -rfka '(__mq-consume_custom_completion ---completion -- --group (count (__mq-consume_tokens -pc)) (__mq-consume_tokens -tC))'
complete -c 'mq-consume' -n '__mq-consume_should_offer_completions_for_flags_or_options "mq-consume" from' -l 'from' -d 'Where a partition without a committed offset starts: beginning (default with -g), end (default without), an offset, or a time.' -rfka ''
complete -c 'mq-consume' -n '__mq-consume_should_offer_completions_for_flags_or_options "mq-consume" e exit' -s 'e' -l 'exit' -d 'Exit at the current end of the log instead of waiting for more.'
complete -c 'mq-consume' -n '__mq-consume_should_offer_completions_for_flags_or_options "mq-consume" read-uncommitted' -l 'read-uncommitted' -d 'Also show records of transactions still open or aborted (default: committed only).'
complete -c 'mq-consume' -n '__mq-consume_should_offer_completions_for_flags_or_options "mq-consume" c count' -s 'c' -l 'count' -d 'Exit after delivering N messages.' -rfka ''
complete -c 'mq-consume' -n '__mq-consume_should_offer_completions_for_flags_or_options "mq-consume" grep' -l 'grep' -d 'Only messages whose value matches this extended regular expression.' -rfka ''
complete -c 'mq-consume' -n '__mq-consume_should_offer_completions_for_flags_or_options "mq-consume" key' -l 'key' -d 'Only messages with this key.' -rfka ''
complete -c 'mq-consume' -n '__mq-consume_should_offer_completions_for_flags_or_options "mq-consume"' -l 'header' -d 'Only messages with this header (repeatable; all must match).' -rfka ''
complete -c 'mq-consume' -n '__mq-consume_should_offer_completions_for_flags_or_options "mq-consume" commit-interval' -l 'commit-interval' -d 'Longest time delivered messages wait to be committed.' -rfka ''
complete -c 'mq-consume' -n '__mq-consume_should_offer_completions_for_flags_or_options "mq-consume" D d delimiter' -s 'd' -s 'D' -l 'delimiter' -d 'Write this after each value instead of a newline (-D as kcat).' -rfka ''
complete -c 'mq-consume' -n '__mq-consume_should_offer_completions_for_flags_or_options "mq-consume" 0 null' -s '0' -l 'null' -d 'End each value with a NUL byte.'
complete -c 'mq-consume' -n '__mq-consume_should_offer_completions_for_flags_or_options "mq-consume" format' -l 'format' -d 'Print with kcat tokens: %t %p %o %k %s %T %h %K %S, \\n \\t.' -rfka ''
complete -c 'mq-consume' -n '__mq-consume_should_offer_completions_for_flags_or_options "mq-consume" J json' -s 'J' -l 'json' -d 'Print one JSON envelope per message.'
complete -c 'mq-consume' -n '__mq-consume_should_offer_completions_for_flags_or_options "mq-consume" max-attempts' -l 'max-attempts' -d 'With a handler: runs before a failing message is dead-lettered.' -rfka ''
complete -c 'mq-consume' -n '__mq-consume_should_offer_completions_for_flags_or_options "mq-consume" backoff' -l 'backoff' -d 'With a handler: first retry delay, doubled each attempt, with jitter.' -rfka ''
complete -c 'mq-consume' -n '__mq-consume_should_offer_completions_for_flags_or_options "mq-consume" backoff-max' -l 'backoff-max' -d 'With a handler: longest retry delay.' -rfka ''
complete -c 'mq-consume' -n '__mq-consume_should_offer_completions_for_flags_or_options "mq-consume" timeout' -l 'timeout' -d 'With a handler: stop a run after this long (SIGTERM, then SIGKILL 5 s later); it counts as a failure.' -rfka ''
complete -c 'mq-consume' -n '__mq-consume_should_offer_completions_for_flags_or_options "mq-consume"' -l 'dlq-on' -d 'With a handler: an exit status that is permanent, dead-lettered without retries (repeatable).' -rfka ''
complete -c 'mq-consume' -n '__mq-consume_should_offer_completions_for_flags_or_options "mq-consume" dlq' -l 'dlq' -d 'With a handler: the dead-letter topic (default: TOPIC.dlq).' -rfka ''
complete -c 'mq-consume' -n '__mq-consume_should_offer_completions_for_flags_or_options "mq-consume" max-age' -l 'max-age' -d 'With a handler: dead-letter messages older than this as expired, without running them.' -rfka ''
complete -c 'mq-consume' -n '__mq-consume_should_offer_completions_for_flags_or_options "mq-consume" batch' -l 'batch' -d 'With a handler: feed up to N messages to one run, formatted as on output; acked or failed together.' -rfka ''
complete -c 'mq-consume' -n '__mq-consume_should_offer_completions_for_flags_or_options "mq-consume" queue' -l 'queue' -d 'Work-queue mode: all consumers of the group share every partition message by message (needs -g and a handler).'
complete -c 'mq-consume' -n '__mq-consume_should_offer_completions_for_flags_or_options "mq-consume" lease' -l 'lease' -d 'Work-queue mode: how long a consumer holds a message; a run is stopped before its lease ends, and the message is delivered again.' -rfka ''
complete -c 'mq-consume' -n '__mq-consume_should_offer_completions_for_flags_or_options "mq-consume" P parallel' -s 'P' -l 'parallel' -d 'With a handler: run up to N at once (messages with one key never run at once or out of order).' -rfka ''
complete -c 'mq-consume' -n '__mq-consume_should_offer_completions_for_flags_or_options "mq-consume" dedup' -l 'dedup' -d 'Skip messages whose id (--id-header) the group already processed within --dedup-window (needs -g).'
complete -c 'mq-consume' -n '__mq-consume_should_offer_completions_for_flags_or_options "mq-consume" id-header' -l 'id-header' -d 'With --dedup: the header that holds a message\'s id.' -rfka ''
complete -c 'mq-consume' -n '__mq-consume_should_offer_completions_for_flags_or_options "mq-consume" dedup-window' -l 'dedup-window' -d 'With --dedup: how long the group remembers an id (default 2m).' -rfka ''
complete -c 'mq-consume' -n '__mq-consume_should_offer_completions_for_flags_or_options "mq-consume" version' -l 'version' -d 'Show the version.'
complete -c 'mq-consume' -n '__mq-consume_should_offer_completions_for_flags_or_options "mq-consume" h help' -s 'h' -l 'help' -d 'Show help information.'
