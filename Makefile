# Two entry points: `make run` serves the API on the embedded database, `make test` runs the suite.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test bench-lineage bench-psi bench-soak clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/trustfabric serve --seed-demo

test: $(STAMP)
	$(BIN)/python -m pytest -q

BENCH := $(VENV)/.bench-installed
$(BENCH): $(STAMP)
	$(BIN)/pip install --quiet -e '.[bench]'
	touch $(BENCH)

bench-lineage: $(BENCH)
	$(BIN)/python -m bench.lineage $(ARGS)

bench-psi: $(BENCH)
	$(BIN)/python -m bench.psi_latency $(ARGS)

bench-soak: $(BENCH)
	$(BIN)/python -m bench.soak $(ARGS)

clean:
	rm -rf $(VENV) .data
