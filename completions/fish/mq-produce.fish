function __mq-produce_should_offer_completions_for_flags_or_options -a expected_commands
    set -l non_repeating_flags_or_options $argv[2..]
    set -l non_repeating_flags_or_options_absent 0
    set -l positional_index 0
    set -l commands
    __mq-produce_parse_tokens
    test "$commands" = "$expected_commands"; and return $non_repeating_flags_or_options_absent
end

function __mq-produce_should_offer_completions_for_positional -a expected_commands positional_index_comparison expected_positional_index
    set -l non_repeating_flags_or_options
    set -l non_repeating_flags_or_options_absent 0
    set -l positional_index 0
    set -l commands
    __mq-produce_parse_tokens
    test "$commands" = "$expected_commands" -a \( "$positional_index" "$positional_index_comparison" "$expected_positional_index" \)
end

function __mq-produce_parse_tokens -S
    set -l unparsed_tokens (__mq-produce_tokens -pc)
    switch $unparsed_tokens[1]
    case 'mq-produce'
        __mq-produce_parse_subcommand 1 'dir=' 'd/delimiter=' '0/null' 'whole' 'J/json' 'K/key-delimiter=' 'k/key=' 'H/header=+' 'p/partition=' 'partitions=' 'no-create' 'z/compression=' 'batch-messages=' 'batch-bytes=' 'linger=' 'sync=' 'print-offsets' 'skip-bad' 'rate=' 'v/verbose' 'delay=' 'at=' 'id-header=' 'dedup-window=' 'producer=' 'atomic' 'abort-on-status=' 'transaction-timeout=' 'version' 'h/help'
        switch $unparsed_tokens[1]
        case 'help'
            __mq-produce_parse_subcommand -r 1 'version'
        end
    end
end

function __mq-produce_tokens
    if test (string split -m 1 -f 1 -- . "$FISH_VERSION") -gt 3
        commandline --tokens-raw $argv
    else
        commandline -o $argv
    end
end

function __mq-produce_parse_subcommand -S -a positional_count
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

function __mq-produce_complete_directories
    set -l token (commandline -t)
    string match -- '*/' $token
    set -l subdirs $token*/
    printf %s\n $subdirs
end

function __mq-produce_custom_completion
    set -x SAP_SHELL fish
    set -x SAP_SHELL_VERSION $FISH_VERSION
    set -l tokens (__mq-produce_tokens -p)
    if test -z "$(__mq-produce_tokens -t)"
        set -l index (count (__mq-produce_tokens -pc))
        set tokens $tokens[..$index] \'\' $tokens[(math $index + 1)..]
    end
    command $tokens[1] $argv $tokens
end

complete -c 'mq-produce' -f
complete -c 'mq-produce' -n '__mq-produce_should_offer_completions_for_flags_or_options "mq-produce" dir' -l 'dir' -d 'The log directory (default: $MQ_DIR, else $XDG_DATA_HOME/mq, else ~/.local/share/mq).' -rfka ''
complete -c 'mq-produce' -n '__mq-produce_should_offer_completions_for_positional "mq-produce" -eq 1' -fka '(__mq-produce_custom_completion ---completion -- positional@0 (count (__mq-produce_tokens -pc)) (__mq-produce_tokens -tC))'
complete -c 'mq-produce' -n '__mq-produce_should_offer_completions_for_flags_or_options "mq-produce" D d delimiter' -s 'd' -s 'D' -l 'delimiter' -d 'Message delimiter, -D as kcat (escapes: \\n \\t \\r \\0 \\\\ \\xHH).' -rfka ''
complete -c 'mq-produce' -n '__mq-produce_should_offer_completions_for_flags_or_options "mq-produce" 0 null' -s '0' -l 'null' -d 'Messages are NUL-separated, as with xargs -0.'
complete -c 'mq-produce' -n '__mq-produce_should_offer_completions_for_flags_or_options "mq-produce" whole' -l 'whole' -d 'All of standard input is one message.'
complete -c 'mq-produce' -n '__mq-produce_should_offer_completions_for_flags_or_options "mq-produce" J json' -s 'J' -l 'json' -d 'Read one JSON envelope per line: key, value, headers, partition, timestamp.'
complete -c 'mq-produce' -n '__mq-produce_should_offer_completions_for_flags_or_options "mq-produce" K key-delimiter' -s 'K' -l 'key-delimiter' -d 'Split each message into key and value at the first DELIM.' -rfka ''
complete -c 'mq-produce' -n '__mq-produce_should_offer_completions_for_flags_or_options "mq-produce" k key' -s 'k' -l 'key' -d 'Give every message this key.' -rfka ''
complete -c 'mq-produce' -n '__mq-produce_should_offer_completions_for_flags_or_options "mq-produce"' -s 'H' -l 'header' -d 'Add a header to every message (repeatable).' -rfka ''
complete -c 'mq-produce' -n '__mq-produce_should_offer_completions_for_flags_or_options "mq-produce" p partition' -s 'p' -l 'partition' -d 'Write every message to this partition.' -rfka ''
complete -c 'mq-produce' -n '__mq-produce_should_offer_completions_for_flags_or_options "mq-produce" partitions' -l 'partitions' -d 'Partition count when the topic is created (default 1).' -rfka ''
complete -c 'mq-produce' -n '__mq-produce_should_offer_completions_for_flags_or_options "mq-produce" no-create' -l 'no-create' -d 'Fail if the topic does not exist instead of creating it.'
complete -c 'mq-produce' -n '__mq-produce_should_offer_completions_for_flags_or_options "mq-produce" compression z' -s 'z' -l 'compression' -d 'Compression codec (default: the topic\'s compression.type, else none).' -rfka 'none gzip snappy lz4 zstd'
complete -c 'mq-produce' -n '__mq-produce_should_offer_completions_for_flags_or_options "mq-produce" batch-messages' -l 'batch-messages' -d 'Most messages in one batch.' -rfka ''
complete -c 'mq-produce' -n '__mq-produce_should_offer_completions_for_flags_or_options "mq-produce" batch-bytes' -l 'batch-bytes' -d 'Most bytes in one batch before compression (default 1MiB, at most max.message.bytes).' -rfka ''
complete -c 'mq-produce' -n '__mq-produce_should_offer_completions_for_flags_or_options "mq-produce" linger' -l 'linger' -d 'Longest a message waits for its batch to fill when input pauses.' -rfka ''
complete -c 'mq-produce' -n '__mq-produce_should_offer_completions_for_flags_or_options "mq-produce" sync' -l 'sync' -d 'When to fsync: exit (before exiting), batch (every batch), none.' -rfka 'exit batch none'
complete -c 'mq-produce' -n '__mq-produce_should_offer_completions_for_flags_or_options "mq-produce" print-offsets' -l 'print-offsets' -d 'Print \'partition offset\' for each message once it is written.'
complete -c 'mq-produce' -n '__mq-produce_should_offer_completions_for_flags_or_options "mq-produce" skip-bad' -l 'skip-bad' -d 'Report bad input lines on standard error and go on.'
complete -c 'mq-produce' -n '__mq-produce_should_offer_completions_for_flags_or_options "mq-produce" rate' -l 'rate' -d 'Accept at most this many messages a second: N, N/s, N/m or N/h.' -rfka ''
complete -c 'mq-produce' -n '__mq-produce_should_offer_completions_for_flags_or_options "mq-produce" v verbose' -s 'v' -l 'verbose' -d 'Print a summary line on standard error at the end, and report waits for the topic\'s backlog bound (mq.max.backlog.*).'
complete -c 'mq-produce' -n '__mq-produce_should_offer_completions_for_flags_or_options "mq-produce" delay' -l 'delay' -d 'Make each message visible to consumers this long after it is accepted (kept in TOPIC.delay until then).' -rfka ''
complete -c 'mq-produce' -n '__mq-produce_should_offer_completions_for_flags_or_options "mq-produce" at' -l 'at' -d 'Make every message visible to consumers at this time (ISO-8601, or @epoch-ms).' -rfka ''
complete -c 'mq-produce' -n '__mq-produce_should_offer_completions_for_flags_or_options "mq-produce" id-header' -l 'id-header' -d 'Write each message id once: the id is this header of each JSON envelope (--json), or the key (-K, also stored in the header).' -rfka ''
complete -c 'mq-produce' -n '__mq-produce_should_offer_completions_for_flags_or_options "mq-produce" dedup-window' -l 'dedup-window' -d 'With --id-header: how long an id is remembered (default 2m).' -rfka ''
complete -c 'mq-produce' -n '__mq-produce_should_offer_completions_for_flags_or_options "mq-produce" producer' -l 'producer' -d 'A named producer: a rerun with the same input writes only the records the last run did not.' -rfka ''
complete -c 'mq-produce' -n '__mq-produce_should_offer_completions_for_flags_or_options "mq-produce" atomic' -l 'atomic' -d 'Write all of the input as one transaction: visible to readers only if it all went in (clean end of input, and with \'-- COMMAND\' its success).'
complete -c 'mq-produce' -n '__mq-produce_should_offer_completions_for_flags_or_options "mq-produce" abort-on-status' -l 'abort-on-status' -d 'With \'--atomic -- COMMAND\': the command\'s exit statuses that abort (default: any but 0).' -rfka ''
complete -c 'mq-produce' -n '__mq-produce_should_offer_completions_for_flags_or_options "mq-produce" transaction-timeout' -l 'transaction-timeout' -d 'With --atomic: how long others wait for this transaction before they may abort it (default 15m).' -rfka ''
complete -c 'mq-produce' -n '__mq-produce_should_offer_completions_for_flags_or_options "mq-produce" version' -l 'version' -d 'Show the version.'
complete -c 'mq-produce' -n '__mq-produce_should_offer_completions_for_flags_or_options "mq-produce" h help' -s 'h' -l 'help' -d 'Show help information.'
