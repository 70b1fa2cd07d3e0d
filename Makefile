# mq: build, test and install. GNU make.
#
#   make                  release build (swift build -c release)
#   make test             setup, release build, unit tests, then the Python suites (Python from .build/venv)
#   make demo             build setup (no Python), release build, sample data in and out of the default log
#   make goals            release build, then the performance goals side by side (bench/goals.sh)
#   make partitions       release build, then cost against partitions beside the file system's floor (bench/partitions.sh)
#   make compare          release build, then mq against Redis Streams and NATS JetStream (bench/compare.sh)
#   make install          PREFIX=/usr/local DESTDIR= : binaries, man pages, completions
#   make completions      regenerate completions/ from the release binaries
#   make lint-man         mandoc -Tlint on man/
#   make fuzz             FUZZ_TIME=300 FUZZ_JOBS=1 : the libFuzzer target (Fuzz/, docs/TESTING.md); not part of test
#   make torture          TORTURE_TRIALS=1000 : random kill -9 trials over every tool (Tests/torture, docs/TESTING.md); not part of test

PREFIX ?= /usr/local
DESTDIR ?=
SWIFT ?= swift
# The tests' Python: a virtual environment made by scripts/setup.sh, never the system's.
VENV ?= .build/venv
PYTHON ?= $(VENV)/bin/python
# Commands run with the venv's bin first, so that the Swift tests' `python3` is the venv's too.
WITH_VENV = PATH="$(abspath $(VENV))/bin:$$PATH" MQ_VENV="$(abspath $(VENV))"

BINDIR = $(DESTDIR)$(PREFIX)/bin
MANDIR = $(DESTDIR)$(PREFIX)/share/man
BASHDIR = $(DESTDIR)$(PREFIX)/share/bash-completion/completions
ZSHDIR = $(DESTDIR)$(PREFIX)/share/zsh/site-functions
FISHDIR = $(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d

TOOLS = mq-produce mq-tail mq-topic mq-consume mq-stat mq-bench mq-replay mq-dlq mq-compact mq-group mq-mirror
RELEASE = .build/release
BINARIES = $(addprefix $(RELEASE)/,$(TOOLS))
MAN1 = $(wildcard man/*.1)
MAN5 = $(wildcard man/*.5)
MAN7 = $(wildcard man/*.7)
PYTESTS = $(wildcard Tests/interop Tests/blackbox)
FUZZ_TIME ?= 300
FUZZ_JOBS ?= 1
TORTURE_TRIALS ?= 1000
TORTURE_ARGS ?=

.PHONY: all build setup setup-build test demo bench goals partitions compare install uninstall completions lint-man fuzz torture clean

all: build

build:
	$(SWIFT) build -c release


setup:
	MQ_VENV="$(abspath $(VENV))" scripts/setup.sh

setup-build:
	scripts/setup.sh build

# Both suites run even when the first fails; the status is non-zero if either did.
test: setup
	$(MAKE) build
	@status=0; \
	$(WITH_VENV) $(SWIFT) test || status=1; \
	$(WITH_VENV) MQ_BIN="$(CURDIR)/$(RELEASE)" $(PYTHON) -m pytest -q $(PYTESTS) || status=1; \
	exit $$status

demo: setup-build
	$(MAKE) build
	seq 1 100000 | sed 's/^/event /' | $(RELEASE)/mq-produce demo
	$(RELEASE)/mq-tail -n 5 demo
	$(RELEASE)/mq-topic describe demo

bench: build
	@if [ -x bench/run.sh ]; then bench/run.sh $(RELEASE); else echo "make bench: no bench/run.sh yet"; fi

# The performance goals of docs/BENCHMARKS.md side by side in one run (medians of ROUNDS=3).
goals: build
	bench/goals.sh $(RELEASE)

# Cost against partitions beside the file system's own (bench/partitions_floor.c), medians of ROUNDS=3.
partitions: build
	bench/partitions.sh $(RELEASE)

# Installs redis-server, nats-server and their Python clients when missing
# (apt through sudo unless root), runs its own servers on 127.0.0.1.
compare: build
	bench/compare.sh $(RELEASE)

# Builds only when a binary is missing, so that `make && sudo make install`
# does not build as root.
install:
	@for b in $(BINARIES); do [ -x $$b ] || { $(SWIFT) build -c release; break; }; done
	install -d $(BINDIR) $(MANDIR)/man1 $(MANDIR)/man5 $(MANDIR)/man7 $(BASHDIR) $(ZSHDIR) $(FISHDIR)
	install -m 755 $(BINARIES) $(BINDIR)/
	install -m 644 $(MAN1) $(MANDIR)/man1/
	install -m 644 $(MAN5) $(MANDIR)/man5/
	install -m 644 $(MAN7) $(MANDIR)/man7/
	for t in $(TOOLS); do \
		install -m 644 completions/bash/$$t $(BASHDIR)/$$t && \
		install -m 644 completions/zsh/_$$t $(ZSHDIR)/_$$t && \
		install -m 644 completions/fish/$$t.fish $(FISHDIR)/$$t.fish || exit 1; \
	done

uninstall:
	for t in $(TOOLS); do \
		rm -f $(BINDIR)/$$t $(BASHDIR)/$$t $(ZSHDIR)/_$$t $(FISHDIR)/$$t.fish; \
	done
	rm -f $(addprefix $(MANDIR)/man1/,$(notdir $(MAN1))) $(addprefix $(MANDIR)/man5/,$(notdir $(MAN5))) \
		$(addprefix $(MANDIR)/man7/,$(notdir $(MAN7)))

completions: build
	scripts/generate-completions.sh $(RELEASE)

# "referenced manual not found" depends on which pages this machine has
# installed (ours are not, before `make install`), so it is not counted.
# stdbuf: mandoc's stdout (lint) and stderr (mandoc.db notes) share the pipe,
# and a block-buffered stdout would let a note cut a lint line in two.
lint-man:
	@out=$$(stdbuf -oL mandoc -Tlint $(MAN1) $(MAN5) $(MAN7) 2>&1 | grep -v -e 'referenced manual not found' -e 'mandoc.db'); \
	if [ -n "$$out" ]; then echo "$$out"; exit 1; fi; \
	echo "man pages: lint clean"

# Builds Fuzz/ with -sanitize=fuzzer,address, makes the seed corpus with the
# release tools, fuzzes for FUZZ_TIME seconds with FUZZ_JOBS (at most 2)
# processes; crashes go to Fuzz/.build/crashes/ (exit status 1 if any).
fuzz: setup
	$(WITH_VENV) SWIFT="$(SWIFT)" Fuzz/run.sh $(FUZZ_TIME) $(FUZZ_JOBS)

# Random kill -9 trials over every tool at once (Tests/torture/torture.py, docs/TESTING.md);
# not part of test. Needs root (tmpfs mounts, setpriv). MQ_BIN=DIR uses those binaries
# instead of building; TORTURE_ARGS adds options (--seed S, -v, --keep, --max-minutes M).
torture: setup
	@if [ -z "$(MQ_BIN)" ]; then $(MAKE) build; fi
	$(WITH_VENV) $(PYTHON) Tests/torture/torture.py --trials $(TORTURE_TRIALS) \
		--bin "$(if $(MQ_BIN),$(MQ_BIN),$(CURDIR)/$(RELEASE))" $(TORTURE_ARGS)

clean:
	rm -rf .build Fuzz/.build
