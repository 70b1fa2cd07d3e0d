"""Drift checks between the built tools and their hand-written docs.

The man pages (man/*.1) and the committed shell completions (completions/)
are written or generated once and then kept; these tests fail when a tool's
flags or exit statuses change and its docs do not.

Binaries come from $MQ_BIN, else .build/release (build with `make build`).
"""

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BIN = Path(os.environ.get("MQ_BIN") or REPO / ".build" / "release")
TOOLS = ["mq-produce", "mq-tail", "mq-topic", "mq-consume", "mq-stat", "mq-bench", "mq-replay", "mq-dlq", "mq-compact",
         "mq-mirror"]
REGENERATE = "scripts/generate-completions.sh .build/release"

# Every exit status each tool can end with, from Sources/MQLog/Errors/ExitStatus.swift
# and the code paths that reach it. ArgumentParser itself exits 64 (EX_USAGE) for
# a bad command line, and 1 only for an error no tool throws. Every tool ends with
# 70 (EX_SOFTWARE) for an error it did not expect (a bug; ErrorReport.classify).
#   64  command line; invalid topic name or partition; bad topic pattern (mq-tail,
#       mq-consume); invalid group name or --grep expression (mq-consume)
#   65  bad input (mq-produce); corrupt data found while reading
#   66  topic does not exist (mq-consume: only with -e, or deleted while opening)
#   73  cannot create a file or directory; mq-topic create: topic exists
#   74  I/O error, disk full, a failed write to standard output (mq-consume ignores
#       SIGPIPE and ends with 0 when its output is closed)
#   1   mq-produce --atomic -- COMMAND: the command failed (transaction aborted)
#   75  mq-produce: the topic's backlog bound rejected a message (mq.backlog.policy=reject);
#       mq-produce --atomic: fenced (aborted by another process after its timeout);
#       mq-topic delete: topic in use; mq-replay: --reset-to while a member holds a
#       lease, --into --no-wait while the same replay runs; mq-dlq redrive/purge
#       --no-wait: the copy is held; mq-compact --no-wait: another run holds the lock
#   77  permission denied, read-only file system
#   78  invalid topic.properties; unknown or bad --config (mq-topic)
#   130, 143  mq-produce stopped by SIGINT, SIGTERM after committing its input;
#             mq-consume likewise, after committing what it delivered; mq-replay
#             --into and mq-dlq redrive, after settling what they copied; mq-compact
#             between two steps, the log consistent
#   65 also: mq-compact --check/--repair found problems
#   69  mq-mirror: the server did not answer or accept a chunk within --timeout
#   75 also: mq-mirror: a mirror of the same name is running
#   77 also: mq-mirror: the server refused the credentials
#   76  mq-mirror: the Kafka producer was fenced (another of the same transactional.id)
#       or hit another fatal error
#   71  mq-consume handler, mq-produce --atomic -- COMMAND: could not be started
#       for another reason than not found (66) or not permitted (77)
EXIT_STATUSES = {
    "mq-produce": {0, 1, 64, 65, 66, 70, 71, 73, 74, 75, 77, 78, 130, 143},
    "mq-tail": {0, 64, 65, 66, 70, 73, 74, 77, 78},
    "mq-topic": {0, 64, 65, 66, 70, 73, 74, 75, 77, 78},
    "mq-consume": {0, 64, 65, 66, 70, 71, 73, 74, 77, 78, 130, 143},
    "mq-stat": {0, 64, 65, 66, 70, 73, 74, 77, 78},
    "mq-bench": {0, 64, 66, 69, 70, 73, 74, 130, 143},
    "mq-replay": {0, 64, 65, 66, 70, 73, 74, 75, 77, 78, 130, 143},
    "mq-dlq": {0, 64, 65, 66, 70, 73, 74, 75, 77, 78, 130, 143},
    "mq-compact": {0, 64, 65, 66, 70, 73, 74, 75, 77, 78, 130, 143},
    "mq-mirror": {0, 64, 65, 66, 69, 70, 73, 74, 75, 76, 77, 78, 130, 143},
}


def binary(tool):
    path = BIN / tool
    if not path.exists():
        pytest.fail(f"{path} does not exist: build first (make build), or set MQ_BIN")
    return path


def dump_help(tool):
    out = subprocess.run([binary(tool), "--experimental-dump-help"], check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out)["command"]


def commands(command):
    """The command and its subcommands, depth first, without ArgumentParser's `help`."""
    yield command
    for sub in command.get("subcommands") or []:
        if sub["commandName"] != "help":
            yield from commands(sub)


def spelled(name):
    return {"long": "--", "short": "-", "longWithSingleDash": "-"}[name["kind"]] + name["name"]


def displayed_options(tool):
    """Spellings of each displayed flag or option, e.g. {"-d", "--delimiter"}, per argument."""
    found = []
    for command in commands(dump_help(tool)):
        for argument in command.get("arguments") or []:
            if argument.get("kind") == "positional" or not argument.get("shouldDisplay", True):
                continue
            names = {spelled(n) for n in argument.get("names") or []}
            if names and names not in found:
                found.append(names)
    return found


def man_page(tool, section=1):
    path = REPO / "man" / f"{tool}.{section}"
    assert path.exists(), f"{path.relative_to(REPO)} is missing"
    return path.read_text()


def section(page, title):
    match = re.search(rf"^\.Sh {re.escape(title)}\n(.*?)(?=^\.Sh |\Z)", page, re.M | re.S)
    assert match, f"no .Sh {title} section"
    return match.group(1)


def fl_spellings(line):
    """Flags a macro line shows with Fl: `.It Fl d , Fl -delimiter Ar delim` -> {"-d", "--delimiter"}."""
    return {"-" + arg for arg in re.findall(r"(?:^\.|\s)Fl\s+(\S+)", line)}


@pytest.mark.parametrize("tool", TOOLS)
def test_every_displayed_flag_is_documented(tool):
    items = [fl_spellings(line) for line in section(man_page(tool), "OPTIONS").splitlines()
             if line.startswith(".It ")]
    for names in displayed_options(tool):
        assert any(names <= item for item in items), (
            f"man/{tool}.1 OPTIONS has no '.It' entry showing {' and '.join(sorted(names))} "
            f"as '.Fl' (e.g. '.It Fl x , Fl -long Ar value')")


@pytest.mark.parametrize("tool", TOOLS)
def test_no_documented_flag_is_gone(tool):
    known = set().union(*displayed_options(tool))
    for line in section(man_page(tool), "OPTIONS").splitlines():
        if line.startswith(".It "):
            stale = fl_spellings(line) - known
            assert not stale, f"man/{tool}.1 documents {sorted(stale)}, which {tool} no longer has"


@pytest.mark.parametrize("tool", TOOLS)
def test_exit_statuses_are_documented(tool):
    listed = {int(n) for n in re.findall(r"^\.It (\d+)\s*$", section(man_page(tool), "EXIT STATUS"), re.M)}
    defined = {int(n) for n in re.findall(r"case \w+ = (\d+)",
                                          (REPO / "Sources/MQLog/Errors/ExitStatus.swift").read_text())}
    assert EXIT_STATUSES[tool] <= defined | {1}, "the expected set names a status ExitStatus.swift lacks"
    assert listed == EXIT_STATUSES[tool], (
        f"man/{tool}.1 EXIT STATUS lists {sorted(listed)}; {tool} can exit with {sorted(EXIT_STATUSES[tool])}")


@pytest.mark.parametrize("tool", TOOLS)
def test_environment_is_documented(tool):
    listed = set(re.findall(r"^\.It Ev (\S+)", section(man_page(tool), "ENVIRONMENT"), re.M))
    assert {"MQ_DIR", "XDG_DATA_HOME", "HOME"} <= listed
    if tool in ("mq-tail", "mq-consume"):  # the tools that wait for changes read MQ_POLL
        assert "MQ_POLL" in listed


@pytest.mark.parametrize("tool", TOOLS)
def test_page_names_its_tool(tool):
    page = man_page(tool)
    assert re.search(rf"^\.Nm {re.escape(tool)}$", page, re.M)
    assert re.search(rf"^\.Dt {re.escape(tool.upper())} 1$", page, re.M)


def test_man_pages_are_lint_clean():
    mandoc = shutil.which("mandoc")
    if mandoc is None:
        pytest.fail("mandoc is not installed: run scripts/setup.sh")
    pages = sorted(str(p) for p in (REPO / "man").glob("*.[15]"))
    assert len(pages) == len(TOOLS) + 1, f"expected a page per tool and mq-format.5, found {pages}"
    result = subprocess.run([mandoc, "-Tlint", *pages], capture_output=True, text=True)
    # Whether a cross-referenced page is installed (ours are not, before
    # `make install`) says nothing about the page itself.
    problems = [line for line in (result.stdout + result.stderr).splitlines()
                if "referenced manual not found" not in line and "mandoc.db" not in line]
    assert not problems, "mandoc -Tlint:\n" + "\n".join(problems)


COMPLETIONS = [(tool, shell, path)
               for tool in TOOLS
               for shell, path in [("bash", f"completions/bash/{tool}"),
                                   ("zsh", f"completions/zsh/_{tool}"),
                                   ("fish", f"completions/fish/{tool}.fish")]]


@pytest.mark.parametrize("tool,shell,path", COMPLETIONS)
def test_committed_completions_are_current(tool, shell, path):
    fresh = subprocess.run([binary(tool), "--generate-completion-script", shell], check=True,
                           capture_output=True, text=True).stdout
    committed = REPO / path
    assert committed.exists(), f"{path} is missing: run {REGENERATE}"
    assert committed.read_text() == fresh, f"{path} is out of date: run {REGENERATE}"
