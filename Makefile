# sagaworks: the README's two commands are `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install mcp-servers demo stop test test-long docs lint mypy format bench chaos histories clean

install: $(STAMP)

# Reinstall whenever the dependencies change. Every built-in family's extra (`all`): the demo
# and the tests run them all.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[all,test,docs]'
	$(MAKE) mcp-servers
	touch $@

# The registry MCP servers of mcp_servers/servers.toml and the sample database they serve.
# mcp-server-sqlite breaks on the MCP SDK v2 we use, so it gets its own environment with mcp 1.x.
mcp-servers:
	test -x .venv-mcp-sqlite/bin/python || $(PYTHON) -m venv .venv-mcp-sqlite
	.venv-mcp-sqlite/bin/python -m pip install -q 'mcp-server-sqlite==2025.4.25' 'mcp==1.30.0'
	rm -f samples/support/support.db
	$(BIN)/python -c "import sqlite3, pathlib; sqlite3.connect('samples/support/support.db').executescript(pathlib.Path('samples/support/support.sql').read_text())"
	if command -v npm >/dev/null; then cd mcp_servers && npm ci --no-audit --no-fund --silent; \
	else echo "npm not found: the filesystem MCP server is unavailable (its tests are skipped)"; fi

# Starts the embedded Temporal (UI on :8233) and a worker in the background, runs the
# demo workflows and leaves both running so the printed links work; `make stop` ends them.
demo: install
	$(BIN)/saga dev up
	$(BIN)/saga demo

stop:
	@if [ -x $(BIN)/saga ]; then $(BIN)/saga dev down; fi

# Every test but the long runs (marked `long`), kept under 20 minutes on 2 cores.
test: install
	$(BIN)/python -m pytest -q -ra -m "not long"

# The long runs: every family at its documented limits, the API fuzzed from its OpenAPI
# schema, a batch over a real document corpus, a 1,000-chunk document. CI runs both.
test-long: install
	$(BIN)/python -m pytest -q -ra -m long

# The documentation site (docs/, mkdocs.yml) into site/. --strict: a broken link, a page
# missing from the nav or an API reference that no longer resolves fails the build.
docs: install
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet

# Every finding fails: ruff's rules and formatting, then mypy (pyproject.toml configures all three).
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(MAKE) mypy

# mypy cannot follow the editable install's import hook that maps the repository folders to
# `sagaworks.contracts`, `sagaworks.workflows`...: .mypy-tree/ lays them out as installed, as
# symbolic links to the files themselves, and mypy runs there (its paths read
# `sagaworks/contracts/...` for `contracts/...`). The examples' packages, the docs generator
# `_gen` and the tutorial's `shop` package sit at its top, importable as the tests import them
# (from sys.path entries they add). Rebuilt every run (its cache kept), so a new module is
# checked at once.
MYPY_TREE := .mypy-tree
mypy: install
	mkdir -p $(MYPY_TREE)
	find $(MYPY_TREE) -mindepth 1 -maxdepth 1 ! -name .mypy_cache -exec rm -rf {} +
	mkdir $(MYPY_TREE)/sagaworks
	for f in sagaworks/*; do ln -s ../../$$f $(MYPY_TREE)/sagaworks/; done
	for d in contracts workflows activities client mcp_servers; do ln -s ../../$$d $(MYPY_TREE)/sagaworks/$$d; done
	for d in tests bench worker.py pyproject.toml; do ln -s ../$$d $(MYPY_TREE)/$$d; done
	ln -s ../examples/trip-booking/trip_booking ../examples/langgraph/sagaworks_graphs $(MYPY_TREE)/
	ln -s ../docs/_gen.py ../docs/tutorial/shop/shop $(MYPY_TREE)/
	cd $(MYPY_TREE) && ../$(BIN)/mypy

# Rewrites the tree in ruff's format (what `make lint` checks).
format: install
	$(BIN)/ruff check --select I --fix .
	$(BIN)/ruff format .

# Every benchmark; the peers (LangGraph, DBOS) come from the optional `bench` extra.
bench: install
	$(BIN)/python -m pip install -q -e '.[all,test,bench]'
	$(BIN)/python -m bench.order_saga
	$(BIN)/python -m bench.peers
	$(BIN)/python -m bench.documents
	$(BIN)/python -m bench.plans
	$(BIN)/python -m bench.mcp
	$(BIN)/python -m bench.news_memory
	$(BIN)/python -m bench.langgraph

# 200 order sagas and a 20-document batch while workers are SIGKILLed and the server
# restarts; checks every invariant. (`make test` runs it at a small size.)
chaos: install
	$(BIN)/python -m tests.chaos --sagas 200 --kills 20 --server-restarts 3 --documents 20 --copies 2

# Re-record tests/histories/ (only for a deliberate, patched workflow change).
histories: install
	$(BIN)/python -m tests.record_histories
	$(BIN)/python -m tests.record_pattern_histories
	$(BIN)/python -m tests.record_query_histories

clean: stop
	rm -rf $(VENV) site .venv-mcp-sqlite mcp_servers/node_modules .temporal .sagaworks .pytest_cache *.egg-info

	rm -rf $(VENV) .venv-mcp-sqlite $(MYPY_TREE) .mypy_cache .ruff_cache mcp_servers/node_modules .temporal .sagaworks .pytest_cache *.egg-info
