# Two entry points: `make run` serves the API on the embedded database, `make test` runs the suite.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test bench-lineage bench-psi clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test,bench]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/trustfabric serve --seed-demo

test: $(STAMP)
	$(BIN)/python -m pytest -q

bench-lineage: $(STAMP)
	$(BIN)/python -m bench.lineage $(ARGS)

bench-psi: $(STAMP)
	$(BIN)/python -m bench.psi_latency $(ARGS)

clean:
	rm -rf $(VENV) .data
