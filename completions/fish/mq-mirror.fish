function __mq-mirror_should_offer_completions_for_flags_or_options -a expected_commands
    set -l non_repeating_flags_or_options $argv[2..]
    set -l non_repeating_flags_or_options_absent 0
    set -l positional_index 0
    set -l commands
    __mq-mirror_parse_tokens
    test "$commands" = "$expected_commands"; and return $non_repeating_flags_or_options_absent
end

function __mq-mirror_should_offer_completions_for_positional -a expected_commands positional_index_comparison expected_positional_index
    set -l non_repeating_flags_or_options
    set -l non_repeating_flags_or_options_absent 0
    set -l positional_index 0
    set -l commands
    __mq-mirror_parse_tokens
    test "$commands" = "$expected_commands" -a \( "$positional_index" "$positional_index_comparison" "$expected_positional_index" \)
end

function __mq-mirror_parse_tokens -S
    set -l unparsed_tokens (__mq-mirror_tokens -pc)
    switch $unparsed_tokens[1]
    case 'mq-mirror'
        __mq-mirror_parse_subcommand -r 1 'dir=' 'e/exit' 'name=' 'subject-prefix=' 'create' 'shared-stream' 'replicas=' 'partitions=' 'partitioner=' 'z/compression=' 'X=+' 'F=' 'timeout=' 'creds=' 'token-file=' 'tls-ca=' 'tls-cert=' 'tls-key=' 'rate=' 'v/verbose' 'version' 'h/help'
        switch $unparsed_tokens[1]
        case 'help'
            __mq-mirror_parse_subcommand -r 1 'version'
        end
    end
end

function __mq-mirror_tokens
    if test (string split -m 1 -f 1 -- . "$FISH_VERSION") -gt 3
        commandline --tokens-raw $argv
    else
        commandline -o $argv
    end
end

function __mq-mirror_parse_subcommand -S -a positional_count
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

function __mq-mirror_complete_directories
    set -l token (commandline -t)
    string match -- '*/' $token
    set -l subdirs $token*/
    printf %s\n $subdirs
end

function __mq-mirror_custom_completion
    set -x SAP_SHELL fish
    set -x SAP_SHELL_VERSION $FISH_VERSION
    set -l tokens (__mq-mirror_tokens -p)
    if test -z "$(__mq-mirror_tokens -t)"
        set -l index (count (__mq-mirror_tokens -pc))
        set tokens $tokens[..$index] \'\' $tokens[(math $index + 1)..]
    end
    command $tokens[1] $argv $tokens
end

complete -c 'mq-mirror' -f
complete -c 'mq-mirror' -n '__mq-mirror_should_offer_completions_for_flags_or_options "mq-mirror" dir' -l 'dir' -d 'The log directory (default: $MQ_DIR, else $XDG_DATA_HOME/mq, else ~/.local/share/mq).' -rfka ''
complete -c 'mq-mirror' -n '__mq-mirror_should_offer_completions_for_flags_or_options "mq-mirror" e exit' -s 'e' -l 'exit' -d 'Stop when every message there now is forwarded (or pulled), instead of following.'
complete -c 'mq-mirror' -n '__mq-mirror_should_offer_completions_for_flags_or_options "mq-mirror" name' -l 'name' -d 'The mirror\'s name: its consumer group (pushing) or copy (pulling) is mirror.NAME (default: derived from the topics and the cluster).' -rfka ''
complete -c 'mq-mirror' -n '__mq-mirror_should_offer_completions_for_flags_or_options "mq-mirror" subject-prefix' -l 'subject-prefix' -d 'Subjects are PREFIX.TOPIC.PARTITION.' -rfka ''
complete -c 'mq-mirror' -n '__mq-mirror_should_offer_completions_for_flags_or_options "mq-mirror" create' -l 'create' -d 'Create the stream (subjects PREFIX.>) or the Kafka topic when it does not exist; pulling: the local topic.'
complete -c 'mq-mirror' -n '__mq-mirror_should_offer_completions_for_flags_or_options "mq-mirror" shared-stream' -l 'shared-stream' -d 'NATS push: other publishers write to the stream too; publish without chaining each message to the one before (a partition\'s order then holds only while the stream\'s leader does not change mid-chunk).'
complete -c 'mq-mirror' -n '__mq-mirror_should_offer_completions_for_flags_or_options "mq-mirror" replicas' -l 'replicas' -d 'With --create: the stream\'s or Kafka topic\'s replicas (default: 1 for NATS, the cluster\'s default for Kafka).' -rfka ''
complete -c 'mq-mirror' -n '__mq-mirror_should_offer_completions_for_flags_or_options "mq-mirror" partitions' -l 'partitions' -d 'With --create, Kafka: the topic\'s partitions (default: the most of the topics named, else 1); pulling: the local topic\'s (default: the Kafka topic\'s, 1 for NATS).' -rfka ''
complete -c 'mq-mirror' -n '__mq-mirror_should_offer_completions_for_flags_or_options "mq-mirror" partitioner' -l 'partitioner' -d 'Partition P to partition P (same), by murmur2 of the key (murmur2), or same when the destination has enough partitions, else murmur2 (auto).' -rfka 'auto same murmur2'
complete -c 'mq-mirror' -n '__mq-mirror_should_offer_completions_for_flags_or_options "mq-mirror" compression z' -s 'z' -l 'compression' -d 'Kafka: the producer\'s compression codec (compression.codec; default: none).' -rfka 'none gzip snappy lz4 zstd'
complete -c 'mq-mirror' -n '__mq-mirror_should_offer_completions_for_flags_or_options "mq-mirror"' -s 'X' -d 'Kafka: a librdkafka property (repeatable; after -F, so it wins).' -rfka ''
complete -c 'mq-mirror' -n '__mq-mirror_should_offer_completions_for_flags_or_options "mq-mirror" F' -s 'F' -d 'Kafka: librdkafka properties from a file of key=value lines (# comments).' -rfka ''
complete -c 'mq-mirror' -n '__mq-mirror_should_offer_completions_for_flags_or_options "mq-mirror" timeout' -l 'timeout' -d 'Give up with status 69 when the server does not accept a chunk for this long (e.g. 30s, 5m); default: keep trying.' -rfka ''
complete -c 'mq-mirror' -n '__mq-mirror_should_offer_completions_for_flags_or_options "mq-mirror" creds' -l 'creds' -d 'NATS credentials file (user JWT and seed).' -rfka ''
complete -c 'mq-mirror' -n '__mq-mirror_should_offer_completions_for_flags_or_options "mq-mirror" token-file' -l 'token-file' -d 'Read the NATS token from this file (else $NATS_TOKEN, if set).' -rfka ''
complete -c 'mq-mirror' -n '__mq-mirror_should_offer_completions_for_flags_or_options "mq-mirror" tls-ca' -l 'tls-ca' -d 'CA certificates to trust for TLS.' -rfka ''
complete -c 'mq-mirror' -n '__mq-mirror_should_offer_completions_for_flags_or_options "mq-mirror" tls-cert' -l 'tls-cert' -d 'Client certificate for TLS.' -rfka ''
complete -c 'mq-mirror' -n '__mq-mirror_should_offer_completions_for_flags_or_options "mq-mirror" tls-key' -l 'tls-key' -d 'Client key for TLS.' -rfka ''
complete -c 'mq-mirror' -n '__mq-mirror_should_offer_completions_for_flags_or_options "mq-mirror" rate' -l 'rate' -d 'At most this many messages a second: N, N/s, N/m or N/h.' -rfka ''
complete -c 'mq-mirror' -n '__mq-mirror_should_offer_completions_for_flags_or_options "mq-mirror" v verbose' -s 'v' -l 'verbose' -d 'Print a summary line on standard error.'
complete -c 'mq-mirror' -n '__mq-mirror_should_offer_completions_for_flags_or_options "mq-mirror" version' -l 'version' -d 'Show the version.'
complete -c 'mq-mirror' -n '__mq-mirror_should_offer_completions_for_flags_or_options "mq-mirror" h help' -s 'h' -l 'help' -d 'Show help information.'
