# kontext-mock: `make serve` runs the mock, `make test` passes the tests.
# Both set everything up first (a virtual environment in .venv) on a fresh clone.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
ARGS   ?=

.PHONY: install serve test quick lint typecheck clean bench spec-cache

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP) ## set up .venv with the project and its dev tools

serve: $(STAMP) ## run the mock on http://127.0.0.1:8080 (ARGS="--seed 7 --frozen ...")
	$(BIN)/kontext-mock serve $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .

# mypy reads no install-time name mapping: it checks kontext_mock through a tree of links
# laid out as the wheel installs it (mock_server/ as kontext_mock, with contracts/ and
# fixtures/ inside).
TYPECHECK := build/typecheck

typecheck: $(STAMP) ## mypy --strict over kontext_mock (the mock, the contract kit, the plugin)
	rm -rf $(TYPECHECK) && mkdir -p $(TYPECHECK)/kontext_mock
	for entry in mock_server/*; do ln -s "$(CURDIR)/$$entry" $(TYPECHECK)/kontext_mock/; done
	ln -s "$(CURDIR)/contracts" "$(CURDIR)/fixtures" $(TYPECHECK)/kontext_mock/
	cd $(TYPECHECK) && $(CURDIR)/$(BIN)/mypy --config-file $(CURDIR)/pyproject.toml -p kontext_mock

test: $(STAMP) lint typecheck ## lint, types, the whole test suite, then the example project from a fresh venv
	$(BIN)/pytest -n 2 $(ARGS)
	PYTHON=$(PYTHON) examples/run-in-fresh-venv.sh

quick: $(STAMP) ## the fast tier: every test not marked slow (no soak, kill loops, browser, fuzzing)
	$(BIN)/pytest -n 2 -m "not slow" $(ARGS)

spec-cache: $(STAMP) ## rewrite mock_server/spec_cache.json (the specs' JSON form) after editing a spec
	$(BIN)/python -m kontext_mock.http.specfile

bench: $(STAMP) ## the mock beside Prism and a bare-Flask ceiling; writes bench/RESULTS.md (ARGS="--quick")
	$(BIN)/python bench/run.py $(ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache .hypothesis build dist *.egg-info
