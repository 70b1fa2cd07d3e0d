"""Shell completions that know the log: the committed bash scripts, run as bash runs them
on TAB, complete topic names, groups, dead-letter topics and settings from the log
directory the command line points at, and offer no `help` word where a topic goes."""

import shlex
import subprocess

import pytest

import mqtest

REPO = mqtest.REPO


def complete(mq, tool, words, env_dir=False):
    """COMPREPLY of the committed bash completion of `tool` for the command line `words`
    (the last word is the one being completed; '' for a new word)."""
    argv0 = str(mq.bin / tool)
    line = " ".join([argv0] + [shlex.quote(w) if w else "" for w in words])
    cur = words[-1]
    prev = words[-2] if len(words) > 1 else argv0
    script = (f"source {shlex.quote(str(REPO / 'completions' / 'bash' / tool))}\n"
              f"COMP_WORDS=({shlex.quote(argv0)} {' '.join(shlex.quote(w) for w in words)})\n"
              f"COMP_CWORD={len(words)}\n"
              f"COMP_LINE={shlex.quote(line)}\nCOMP_POINT=${{#COMP_LINE}}\n"
              f"_{tool} {shlex.quote(argv0)} {shlex.quote(cur)} {shlex.quote(prev)}\n"
              "printf '%s\\n' \"${COMPREPLY[@]}\"\n")
    env = mq.env(use_env=env_dir)
    p = subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=env, timeout=60)
    assert p.returncode == 0, p.stderr
    return sorted(w for w in p.stdout.split("\n") if w)


@pytest.fixture
def log(mq):
    mq.create("orders", 2)
    mq.create("ops")
    mq.produce("billing", b"x\n")
    mq.produce("orders", b"bad\n")
    mq.run("mq-consume", "-g", "shipping", "-e", "orders", "--format", "", check=0)
    mq.run("mq-consume", "-g", "shop", "-e", "--dlq-on", "3", "orders", "--", "sh", "-c", "exit 3", check=0)
    return mq


def test_topics_from_the_dir_on_the_command_line(log):
    d = str(log.dir)
    assert complete(log, "mq-tail", ["--dir", d, "o"]) == ["ops", "orders", "orders.dlq"]
    assert complete(log, "mq-tail", ["--dir=" + d, "b"]) == ["billing"]
    assert complete(log, "mq-produce", ["--dir", d, "or"]) == ["orders", "orders.dlq"]
    assert complete(log, "mq-consume", ["--dir", d, "-g", "shipping", "op"]) == ["ops"]
    assert complete(log, "mq-topic", ["describe", "--dir", d, "bi"]) == ["billing"]
    assert complete(log, "mq-replay", ["--dir", d, "orders", "--into", "o"]) == ["ops", "orders", "orders.dlq"]
    # Another directory, empty: nothing.
    assert complete(log, "mq-tail", ["--dir", d + "/nowhere", "o"]) == []


def test_topics_from_mq_dir(log):
    assert complete(log, "mq-stat", ["o"], env_dir=True) == ["ops", "orders", "orders.dlq"]


def test_groups_dead_letter_topics_and_reasons(log):
    d = str(log.dir)
    assert complete(log, "mq-consume", ["--dir", d, "-g", "sh"]) == ["shipping", "shop"]
    assert complete(log, "mq-group", ["describe", "--dir", d, ""]) == ["shipping", "shop"]
    assert complete(log, "mq-stat", ["--dir", d, "-g", "shi"]) == ["shipping"]
    assert complete(log, "mq-dlq", ["redrive", "--dir", d, ""]) == ["orders.dlq"]
    assert complete(log, "mq-dlq", ["show", "--dir", d, "orders.dlq", "--reason", "t"]) == ["timeout"]


def test_settings(log):
    d = str(log.dir)
    names = complete(log, "mq-topic", ["alter", "--dir", d, "orders", "--config", "seg"])
    assert "segment.bytes=" in names and "segment.ms=" in names and all(n.startswith("seg") for n in names)
    assert complete(log, "mq-topic", ["alter", "--dir", d, "orders", "--config", "cleanup.policy="]) == \
        ["cleanup.policy=compact", "cleanup.policy=delete", "cleanup.policy=delete,compact"]
    assert "retention.ms" in complete(log, "mq-topic", ["alter", "--dir", d, "orders", "--delete-config", "ret"])


@pytest.mark.parametrize("tool", ["mq-tail", "mq-produce", "mq-consume", "mq-stat", "mq-compact", "mq-replay", "mq-bench"])
def test_no_help_word_where_a_topic_goes(mq, tool):
    assert "help" not in complete(mq, tool, ["--dir", str(mq.dir), ""])
    assert "help" not in complete(mq, tool, ["--dir", str(mq.dir), "he"])
    for shell, path in (("zsh", f"completions/zsh/_{tool}"), ("fish", f"completions/fish/{tool}.fish")):
        text = (REPO / path).read_text()
        assert "Show subcommand help information" not in text, f"{path} offers a help subcommand"


def test_subcommands_keep_their_help(mq):
    assert "help" in complete(mq, "mq-topic", [""])
