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
TOOLS = ["mq-produce", "mq-tail", "mq-topic", "mq-consume", "mq-stat", "mq-bench", "mq-replay", "mq-dlq", "mq-compact", "mq-group",
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
#       or hit another fatal error; another publisher kept breaking the NATS chain
#   75 also: mq-group delete: the group has a live member or a held lease (without
#       --force); mq-group reset: a member holds a lease of the topic
#   64 also: mq-group reset without --yes when standard input is not a terminal
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
    "mq-group": {0, 64, 65, 66, 70, 73, 74, 75, 77, 78},
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
    assert {"MQ_DIR", "XDG_DATA_HOME", "HOME", "MQ_UMASK"} <= listed
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
    pages = sorted(str(p) for p in (REPO / "man").glob("*.[157]"))
    expected = sorted(str(REPO / "man" / name) for name in [f"{tool}.1" for tool in TOOLS] + ["mq-format.5", "mq.7"])
    assert pages == expected, "expected a page per tool, mq-format.5 and mq.7"
    result = subprocess.run([mandoc, "-Tlint", *pages], capture_output=True, text=True)
    # Whether a cross-referenced page is installed (ours are not, before
    # `make install`) says nothing about the page itself.
    problems = [line for line in (result.stdout + result.stderr).splitlines()
                if "referenced manual not found" not in line and "mandoc.db" not in line]
    assert not problems, "mandoc -Tlint:\n" + "\n".join(problems)


# mq(7), the overview `man mq` shows: it must not drift from the tools.
OVERVIEW = REPO / "man" / "mq.7"


def environment_read_by_sources():
    """The variables the tools read: getenv("X"), or MQLog's environment("X")."""
    names = set()
    for path in (REPO / "Sources").rglob("*.swift"):
        names |= set(re.findall(r'\b(?:getenv|environment)\("([A-Z][A-Z0-9_]*)"\)', path.read_text()))
    return names


def test_overview_names_every_tool_status_and_variable():
    page = OVERVIEW.read_text()
    listed = set(re.findall(r"^\.It Xr (mq-[a-z]+) 1$", section(page, "DESCRIPTION"), re.M))
    assert listed == set(TOOLS), f"man/mq.7's list of tools has {sorted(listed)}, not {sorted(TOOLS)}"
    assert re.search(r"^\.It Xr mq-format 5$", section(page, "DESCRIPTION"), re.M), "man/mq.7 lists no mq-format(5)"
    see_also = set(re.findall(r"^\.Xr (mq-[a-z]+) 1\b", section(page, "SEE ALSO"), re.M))
    assert see_also == set(TOOLS), f"man/mq.7 SEE ALSO names {sorted(see_also)}"
    statuses = {int(n) for n in re.findall(r"^\.It (\d+)\s*$", section(page, "EXIT STATUS"), re.M)}
    every = set().union(*EXIT_STATUSES.values())
    assert statuses == every, f"man/mq.7 EXIT STATUS lists {sorted(statuses)}; the tools end with {sorted(every)}"
    documented = set()
    for line in section(page, "ENVIRONMENT").splitlines():
        if line.startswith(".It Ev "):
            documented |= set(re.findall(r"\b[A-Z][A-Z0-9_]+\b", line[len(".It Ev "):]))
    read = environment_read_by_sources()
    assert {"MQ_DIR", "XDG_DATA_HOME", "HOME", "MQ_POLL", "PATH"} <= read  # the scan finds what it should
    assert read <= documented, f"man/mq.7 ENVIRONMENT lacks {sorted(read - documented)}, which the tools read"
    assert OVERVIEW in PAGES  # so its rendered text is checked for artifacts too


def test_readme_exit_table_lists_every_status():
    table = re.search(r"^## Exit status\n(.*?)(?=^## )", (REPO / "README.md").read_text(), re.M | re.S).group(1)
    listed = {int(n) for row in re.findall(r"^\| ([\d, ]+) \|", table, re.M) for n in row.split(",")}
    every = set().union(*EXIT_STATUSES.values())
    assert listed == every, f"README's exit-status table lists {sorted(listed)}; the tools end with {sorted(every)}"


def test_make_install_puts_the_overview_where_man_finds_it(tmp_path):
    """`make install` into a DESTDIR (the tools of MQ_BIN, never a build) puts mq.7 in
    man7, where `man mq` finds it; `make uninstall` removes every page it installed."""
    make = shutil.which("make")
    if make is None:
        pytest.fail("make is not installed")
    for tool in TOOLS:
        binary(tool)
    args = [make, "-s", "-C", str(REPO), f"DESTDIR={tmp_path}", "PREFIX=/usr", f"RELEASE={BIN.resolve()}", "SWIFT=false"]
    subprocess.run([*args, "install"], check=True, capture_output=True)
    mandir = tmp_path / "usr" / "share" / "man"
    assert (mandir / "man7" / "mq.7").is_file(), "make install did not put mq.7 in share/man/man7"
    man = shutil.which("man")
    if man is not None:
        shown = subprocess.run([man, "-M", str(mandir), "mq"], capture_output=True, text=True,
                               env=dict(os.environ, MANPAGER="cat", MANWIDTH="80"))
    else:
        shown = subprocess.run([shutil.which("mandoc") or "mandoc", "-Tutf8", str(mandir / "man7" / "mq.7")],
                               capture_output=True, text=True)
    text = re.sub(r".\x08", "", shown.stdout)
    assert shown.returncode == 0 and text.lstrip().startswith("MQ(7)"), f"man -M {mandir} mq: {shown.stderr}{text[:200]}"
    assert all(f"{tool}(1)" in text for tool in TOOLS)
    subprocess.run([*args, "uninstall"], check=True, capture_output=True)
    left = sorted(str(p.relative_to(mandir)) for p in mandir.rglob("*") if p.is_file())
    assert not left, f"make uninstall left {left}"


def test_format_page_names_every_state_file_and_magic():
    """mq-format(5) names each file name and magic number MQLog declares (mover.journal, MQQUEUE1, ...)."""
    declared = set()
    for path in (REPO / "Sources" / "MQLog").rglob("*.swift"):
        text = path.read_text()
        declared |= set(re.findall(r'static let \w*[nN]ame = "([^"]+)"', text))
        declared |= set(re.findall(r'static let magic = Array\("([^"]+)"\.utf8\)', text))
    assert {"mover.journal", "MQQUEUE1", "head"} <= declared  # the scan finds what it should
    page = man_page("mq-format", 5)
    missing = sorted(name for name in declared if not re.search(rf"(?<![\w.]){re.escape(name)}(?![\w])", page))
    assert not missing, f"man/mq-format.5 does not name {missing}"


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


# What a page looks like to its reader: macro mistakes that lint accepts show
# only in the rendered text (`.Fl n +N` renders "-n -+N", `.Fl -from 10 -to 19`
# "--from -10 --to -19", a quote macro given too many words quotes all of them).
PAGES = sorted((REPO / "man").glob("*.[157]"))


def rendered(page):
    """The page as `man` shows it: mandoc -Tutf8, bold and underline removed."""
    mandoc = shutil.which("mandoc")
    if mandoc is None:
        pytest.fail("mandoc is not installed: run scripts/setup.sh")
    out = subprocess.run([mandoc, "-Tutf8", "-Owidth=78", str(page)], check=True,
                         capture_output=True, text=True).stdout
    return re.sub(r".\x08", "", out)


def rendered_section(text, title):
    match = re.search(rf"^{re.escape(title)}\n(.*?)(?=^\S|\Z)", text, re.M | re.S)
    return match.group(1) if match else ""


def rendering_artifacts(text):
    """Each artifact found in rendered page text, as 'line N: why: the line'."""
    found = []
    lines = text.splitlines()
    for number, line in enumerate(lines, 1):
        def report(why):
            found.append(f"line {number}: {why}: {line.strip()}")
        if re.search(r"(?<![\w-])-\+", line):
            report("a flag followed by '+' (an argument given to Fl)")
        if re.search(r"--[\w-]+ -\d+ --[\w-]+ -\d+\b", line):
            report("both ends of a range turned into flags (numbers given to Fl)")
        if line.count('"') % 2 and (line.strip().startswith('"') or line.rstrip().endswith('"')):
            report("a stray '\"' at the start or end of a line")
        if re.search(r"‘[^\w\s‘’][\s][^’]*’", line):
            report("a quote that runs on past its one-character literal (Ql/Sq given several words)")
        if "’’" in line or "‘‘" in line or re.search(r'\w""', line):
            report("quotes doubled up")
    # Quotes macros open and close (‘…’) must pair up within each paragraph.
    for paragraph in re.split(r"\n\s*\n", text):
        depth = 0
        for ch in paragraph:
            depth += (ch == "‘") - (ch == "’")
            if depth < 0 or depth > 1:
                break
        if depth != 0:
            first = paragraph.strip().splitlines()[0].strip()
            found.append(f"unbalanced ‘ ’ quotes in the paragraph beginning: {first}")
    synopsis = rendered_section(text, "SYNOPSIS")
    for usage in re.split(r"\n(?=\s{5}\S)", synopsis):
        depth = 0
        for ch in usage:
            depth += (ch == "[") - (ch == "]")
            if depth < 0:
                break
        if depth != 0:
            found.append(f"unbalanced [ ] in the SYNOPSIS: {' '.join(usage.split())}")
        if re.search(r"\.\.\.[^\]\s]", usage):
            found.append(f"text after '...' inside brackets in the SYNOPSIS (Op runs to the end of "
                         f"its line): {' '.join(usage.split())}")
    return found


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_rendered_page_has_no_artifacts(page):
    problems = rendering_artifacts(rendered(page))
    assert not problems, f"man/{page.name} as mandoc -Tutf8 renders it:\n" + "\n".join(problems)


def test_artifact_checks_catch_known_mistakes():
    """Each check finds the mistake it was written for (texts the pages once rendered)."""
    assert rendering_artifacts("     -n -+N and --from offset use the same offset")
    assert rendering_artifacts("     offset ranges.  --from -10 --to -19 replays ten messages")
    assert rendering_artifacts("     the committed offset before (‘- for none’), NEW, the")
    assert rendering_artifacts("     letters, digits, ‘., ‘_ and ‘- is an extended\n     regular expression’’’):")
    assert rendering_artifacts("SYNOPSIS\n     mq-x [--a n [--b n]\n")
    assert rendering_artifacts('     "orders is the topic\n')
    assert rendering_artifacts('     mode ("group or "queue""), topic\n')
    assert rendering_artifacts("SYNOPSIS\n     mq-x nats://host[:port[,host[:port.../stream]]]\n")
    assert not rendering_artifacts("     the committed offset before (‘-’ for none), NEW, the\n"
                                   "SYNOPSIS\n     mq-x [-n [+]n] nats://host[:port][,host[:port]...]/stream\n")


# A SYNOPSIS that nests `[--a x [--b y]]` says --b goes with --a. The tool is
# asked: each nested flag, given with the flags its brackets sit in, must not be
# a usage error (64). (`[--id-header name [--dedup-window d | --producer n]]` said
# --producer went with --id-header, which mq-produce refuses.)
PLACEHOLDER_VALUES = {"duration": "1m", "n": "2", "file": "/dev/null", "name": "x", "group": "g", "list": "2",
                      "topic": "t", "dest": "t2", "position": "0", "command": "true", "partition": "0",
                      "NATS": "nats://127.0.0.1:9/S", "KAFKA": "kafka://127.0.0.1:9/k"}
# Flags that need a flag of another group, which the brackets cannot show.
ALSO_NEEDS = {("mq-consume", "--dedup"): ["-g", "g"], ("mq-produce", "--id-header"): ["-J"]}
NESTING_TOOLS = ["mq-produce", "mq-consume", "mq-stat", "mq-tail", "mq-replay", "mq-compact", "mq-mirror"]


def bracket_tree(usage):
    """`mq-x [--a n [--b m]] t` -> ["mq-x", ["--a", "n", ["--b", "m"]], "t"]."""
    stack = [[]]
    for token in re.findall(r"\[|\]|\||[^\s\[\]|]+", usage):
        if token == "[":
            stack.append([])
        elif token == "]":
            group = stack.pop()
            stack[-1].append(group)
        else:
            stack[-1].append(token)
    assert len(stack) == 1, f"unbalanced brackets: {usage}"
    return stack[0]


def flag_words(node):
    """The flags of a group, each with its value placeholder (or None), outside nested groups."""
    for i, item in enumerate(node):
        if isinstance(item, str) and item.startswith("-"):
            following = node[i + 1] if i + 1 < len(node) else None
            value = following if isinstance(following, str) and re.fullmatch(r"[a-z]+", following) else None
            yield item, value


def nested_flags(tree, around=()):
    """(flags around, flag, value) for each flag in a group nested in a group that holds flags.

    The flags around are those before the nested group in each enclosing group,
    from the last `|` on: `[--a x [--b y] | --c z]` gives (((--a, x),), --b, y)."""
    for i, item in enumerate(tree):
        if not isinstance(item, list):
            continue
        before = tree[:i]
        if "|" in before:
            before = before[len(before) - before[::-1].index("|"):]
        inside = around + tuple(flag_words(before))
        if inside:
            for flag, value in flag_words(item):
                yield inside, flag, value
        yield from nested_flags(item, inside)


def synopsis_usages(tool):
    synopsis = rendered_section(rendered(REPO / "man" / f"{tool}.1"), "SYNOPSIS")
    return [" ".join(u.split()) for u in re.split(r"\n(?=\s{5}\S)", synopsis) if u.strip()]


def argv_of(flags):
    return [word for flag, value in flags for word in [flag] + ([PLACEHOLDER_VALUES.get(value, "1")] if value else [])]


def required_words(tree):
    """The words a usage requires, placeholders given values: the first of top-level alternatives."""
    words, skip = [], False
    for token in tree[1:]:
        if token == "|":
            skip = True
        elif skip:
            skip = False
        elif isinstance(token, str) and token != "...":
            words.append(token if token.startswith("-") else PLACEHOLDER_VALUES.get(token, token))
    return words


@pytest.mark.parametrize("tool", NESTING_TOOLS)
def test_nested_synopsis_flags_are_accepted_together(tool, tmp_path):
    for topic in ("t", "t2"):
        subprocess.run([binary("mq-topic"), "create", "--dir", str(tmp_path), topic], check=True, capture_output=True)
    for usage in synopsis_usages(tool):
        usage = re.sub(r"\b(nats|kafka)://\S+", lambda m: m.group(1).upper(), usage)
        tree = bracket_tree(usage)
        for around, flag, value in nested_flags(tree):
            flags = argv_of(around + ((flag, value),))
            for (needing_tool, needing), needed in ALSO_NEEDS.items():
                if tool == needing_tool and needing in flags and needed[0] not in flags:
                    flags += needed
            argv = ["--dir", str(tmp_path), *flags, *required_words(tree)]
            process = subprocess.Popen([binary(tool), *argv], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                       stderr=subprocess.PIPE, text=True)
            try:
                status = process.wait(timeout=1.5)  # a usage error comes at once; still running: accepted
            except subprocess.TimeoutExpired:
                process.kill()
                status = process.wait()
            stderr = process.stderr.read()
            process.stderr.close()
            assert status != 64, (
                f"man/{tool}.1 SYNOPSIS puts {flag} inside the brackets of {' '.join(f for f, _ in around)}, "
                f"but '{tool} {' '.join(argv)}' is a usage error: {stderr.strip()[:200]}")


def test_nested_flags_reading():
    old = bracket_tree("mq-produce [--id-header name [--dedup-window duration | --producer name]] topic")
    assert set(nested_flags(old)) == {((("--id-header", "name"),), "--dedup-window", "duration"),
                                      ((("--id-header", "name"),), "--producer", "name")}
    new = bracket_tree("mq-produce [--id-header name [--dedup-window duration] | --producer name] topic")
    assert set(nested_flags(new)) == {((("--id-header", "name"),), "--dedup-window", "duration")}
    deep = bracket_tree("mq-consume [-g group [--queue [--lease duration]]] t")
    assert set(nested_flags(deep)) == {((("-g", "group"),), "--queue", None),
                                       ((("-g", "group"), ("--queue", None)), "--lease", "duration")}


@pytest.mark.parametrize("tool", TOOLS)
def test_help_defaults_are_values_the_option_takes(tool):
    """An option with a list of values shows one of them as its default (mq-bench -z showed '0')."""
    for command in commands(dump_help(tool)):
        for argument in command.get("arguments") or []:
            values, default = argument.get("allValues"), argument.get("defaultValue")
            if values and default is not None and argument.get("shouldDisplay", True):
                names = "/".join(spelled(n) for n in argument.get("names") or [])
                assert default in values, f"{tool} --help shows {names} '(default: {default})', not one of {values}"


def test_compact_dry_run_prints_what_its_help_says(tmp_path):
    """mq-compact -n prints the summary line by itself, as its help says (it said "with -v")."""
    help_text = subprocess.run([binary("mq-compact"), "--help"], check=True, capture_output=True, text=True).stdout
    dry_run_help = " ".join(re.search(r"--dry-run\s+(.*?)(?=\n  -|\n\n)", help_text, re.S).group(1).split())
    assert "print" in dry_run_help and "-v" not in dry_run_help, dry_run_help
    subprocess.run([binary("mq-topic"), "create", "--dir", str(tmp_path), "t"], check=True, capture_output=True)
    out = subprocess.run([binary("mq-compact"), "--dir", str(tmp_path), "-n", "t"], check=True,
                         capture_output=True, text=True).stdout
    assert "would be" in out, out


def json_keys(value):
    if isinstance(value, dict):
        for key, member in value.items():
            yield key
            yield from json_keys(member)
    elif isinstance(value, list):
        for member in value:
            yield from json_keys(member)


def json_option_text(tool):
    """The text of the page's `-J, --json` item, macros left out."""
    options = section(man_page(tool), "OPTIONS")
    item = re.search(r"^\.It Fl J , Fl -json\n(.*?)(?=^\.It Fl )", options, re.M | re.S).group(1)
    return re.sub(r"\\\(dq", '"', item)


@pytest.mark.parametrize("tool,args", [("mq-stat", ["--json"]), ("mq-tail", ["--json", "--from", "beginning", "t"]),
                                       ("mq-group", ["list", "--json"]), ("mq-group", ["describe", "--json"]),
                                       ("mq-group", ["reset", "g", "t", "--to", "beginning", "-n", "--json"]),
                                       ("mq-group", ["delete", "g", "-n", "--json"])])
def test_every_json_member_is_documented(tool, args, tmp_path):
    """Each member the tool prints with --json is named in its page's -J item."""
    def mq(*argv, **kwargs):
        return subprocess.run([binary(argv[0]), *argv[1:]], check=True, capture_output=True,
                              env=dict(os.environ, MQ_DIR=str(tmp_path)), **kwargs)
    mq("mq-topic", "create", "t", "--partitions", "2")
    mq("mq-produce", "-K", ":", "-H", "h=v", "t", input=b"k:plain\nk2:\xff\xfe\n")
    mq("mq-consume", "-g", "g", "-e", "t")
    printed = set()
    for line in mq(tool, *args).stdout.decode().splitlines():
        printed |= set(json_keys(json.loads(line)))
    text = json_option_text(tool)
    missing = sorted(key for key in printed if not re.search(rf"(?<![\w.]){re.escape(key)}(?![\w])", text))
    assert not missing, f"man/{tool}.1 -J, --json does not name {missing}, which {tool} {' '.join(args)} prints"
