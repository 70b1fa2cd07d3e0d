function __mq-bench_should_offer_completions_for_flags_or_options -a expected_commands
    set -l non_repeating_flags_or_options $argv[2..]
    set -l non_repeating_flags_or_options_absent 0
    set -l positional_index 0
    set -l commands
    __mq-bench_parse_tokens
    test "$commands" = "$expected_commands"; and return $non_repeating_flags_or_options_absent
end

function __mq-bench_should_offer_completions_for_positional -a expected_commands positional_index_comparison expected_positional_index
    set -l non_repeating_flags_or_options
    set -l non_repeating_flags_or_options_absent 0
    set -l positional_index 0
    set -l commands
    __mq-bench_parse_tokens
    test "$commands" = "$expected_commands" -a \( "$positional_index" "$positional_index_comparison" "$expected_positional_index" \)
end

function __mq-bench_parse_tokens -S
    set -l unparsed_tokens (__mq-bench_tokens -pc)
    switch $unparsed_tokens[1]
    case 'mq-bench'
        __mq-bench_parse_subcommand -r 1 'dir=' 'n/messages=' 's/size=' 'producers=' 'partitions=' 'z/compression=' 'sync=' 'batch-bytes=' 'plain' 'rate=' 'workers=' 'handler-batch=' 'keys=' 'J/json' 'csv' 'version' 'h/help'
        switch $unparsed_tokens[1]
        case 'help'
            __mq-bench_parse_subcommand -r 1 'version'
        end
    end
end

function __mq-bench_tokens
    if test (string split -m 1 -f 1 -- . "$FISH_VERSION") -gt 3
        commandline --tokens-raw $argv
    else
        commandline -o $argv
    end
end

function __mq-bench_parse_subcommand -S -a positional_count
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

function __mq-bench_complete_directories
    set -l token (commandline -t)
    string match -- '*/' $token
    set -l subdirs $token*/
    printf %s\n $subdirs
end

function __mq-bench_custom_completion
    set -x SAP_SHELL fish
    set -x SAP_SHELL_VERSION $FISH_VERSION
    set -l tokens (__mq-bench_tokens -p)
    if test -z "$(__mq-bench_tokens -t)"
        set -l index (count (__mq-bench_tokens -pc))
        set tokens $tokens[..$index] \'\' $tokens[(math $index + 1)..]
    end
    command $tokens[1] $argv $tokens
end

complete -c 'mq-bench' -f
complete -c 'mq-bench' -n '__mq-bench_should_offer_completions_for_flags_or_options "mq-bench" dir' -l 'dir' -d 'Run in a directory made inside DIR instead of a temporary one.' -rfka ''
complete -c 'mq-bench' -n '__mq-bench_should_offer_completions_for_flags_or_options "mq-bench" messages n' -s 'n' -l 'messages' -d 'Messages per scenario (e2e: default 5000).' -rfka ''
complete -c 'mq-bench' -n '__mq-bench_should_offer_completions_for_flags_or_options "mq-bench" s size' -s 's' -l 'size' -d 'Bytes per message, newline included.' -rfka ''
complete -c 'mq-bench' -n '__mq-bench_should_offer_completions_for_flags_or_options "mq-bench" producers' -l 'producers' -d 'produce: producer processes.' -rfka ''
complete -c 'mq-bench' -n '__mq-bench_should_offer_completions_for_flags_or_options "mq-bench" partitions' -l 'partitions' -d 'Partitions of the benchmark topic; a comma-separated list runs each scenario once per count (partitions: default 1,10,100,1000).' -rfka ''
complete -c 'mq-bench' -n '__mq-bench_should_offer_completions_for_flags_or_options "mq-bench" compression z' -s 'z' -l 'compression' -d 'Compression codec for producers (default: none).' -rfka 'none gzip snappy lz4 zstd'
complete -c 'mq-bench' -n '__mq-bench_should_offer_completions_for_flags_or_options "mq-bench" sync' -l 'sync' -d 'Producers\' --sync policy: exit, batch or none.' -rfka 'exit batch none'
complete -c 'mq-bench' -n '__mq-bench_should_offer_completions_for_flags_or_options "mq-bench" batch-bytes' -l 'batch-bytes' -d 'Producers\' --batch-bytes.' -rfka ''
complete -c 'mq-bench' -n '__mq-bench_should_offer_completions_for_flags_or_options "mq-bench" plain' -l 'plain' -d 'consume: read with mq-tail instead of a consumer group.'
complete -c 'mq-bench' -n '__mq-bench_should_offer_completions_for_flags_or_options "mq-bench" rate' -l 'rate' -d 'e2e: messages a second: N, N/s, N/m or N/h.' -rfka ''
complete -c 'mq-bench' -n '__mq-bench_should_offer_completions_for_flags_or_options "mq-bench" workers' -l 'workers' -d 'queue: worker processes.' -rfka ''
complete -c 'mq-bench' -n '__mq-bench_should_offer_completions_for_flags_or_options "mq-bench" handler-batch' -l 'handler-batch' -d 'queue: messages per handler run (1: one run of \'true\' per message).' -rfka ''
complete -c 'mq-bench' -n '__mq-bench_should_offer_completions_for_flags_or_options "mq-bench" keys' -l 'keys' -d 'compact: distinct keys the messages cycle through.' -rfka ''
complete -c 'mq-bench' -n '__mq-bench_should_offer_completions_for_flags_or_options "mq-bench" J json' -s 'J' -l 'json' -d 'Print one JSON object per scenario.'
complete -c 'mq-bench' -n '__mq-bench_should_offer_completions_for_flags_or_options "mq-bench" csv' -l 'csv' -d 'Print CSV with a header line.'
complete -c 'mq-bench' -n '__mq-bench_should_offer_completions_for_flags_or_options "mq-bench" version' -l 'version' -d 'Show the version.'
complete -c 'mq-bench' -n '__mq-bench_should_offer_completions_for_flags_or_options "mq-bench" h help' -s 'h' -l 'help' -d 'Show help information.'
