# Two entry points: `make demo` and `make test`. Both create .venv on first use and install the
# versions in constraints.txt (what CI tested); `make test-latest` tries the newest releases.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test
PIP_FLAGS := --quiet --disable-pip-version-check

.PHONY: demo test test-latest bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install $(PIP_FLAGS) --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml constraints.txt
	$(BIN)/python -m pip install $(PIP_FLAGS) -c constraints.txt -e .
	touch $@

$(TEST_STAMP): $(STAMP)
	$(BIN)/python -m pip install $(PIP_FLAGS) -c constraints.txt -e '.[test]'
	touch $@

# The plan as a table, then the same plan as a report to open in a browser (report/report.html).
demo: $(STAMP)
	$(BIN)/budget allocate $$($(BIN)/python -c "import scenarios; print(scenarios.example_path('quarterly.toml'))")
	$(BIN)/budget report $$($(BIN)/python -c "import scenarios; print(scenarios.example_path('quarterly.toml'))") --out report
	@echo "report: $(CURDIR)/report/report.html"

test: $(TEST_STAMP)
	$(BIN)/python -m pytest -q

# The newest versions pip resolves today, in a venv of their own (.venv-latest).
test-latest:
	$(PYTHON) -m venv .venv-latest
	.venv-latest/bin/python -m pip install $(PIP_FLAGS) --upgrade pip
	.venv-latest/bin/python -m pip install $(PIP_FLAGS) --upgrade --upgrade-strategy eager -e '.[test]'
	.venv-latest/bin/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python benchmarks/optimizer.py

clean:
	rm -rf $(VENV) .venv-latest build *.egg-info
