# Two entry points: `make run` serves the API on the embedded database, `make test` runs the suite.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test promtool chromium bench-lineage bench-psi bench-shedding bench-soak bench-audit bench-jobs clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

# a stop request (SIGTERM) ends `serve` with status 143 after a clean shutdown: that is how
# it should end, so make does not report it as an error
run: $(STAMP)
	$(BIN)/trustfabric serve --seed-demo || [ $$? -eq 143 ]

# promtool checks the alert rules; Debian ships it in the prometheus package, installed here
# with apt-get, which needs root and the package registry. Without it the alert tests
# cannot run, so make stops and says so rather than leave them out.
promtool:
	@command -v promtool >/dev/null || { apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null; } ; \
	command -v promtool >/dev/null || { echo "make test needs promtool, from Debian's prometheus package:" \
	  "run 'apt-get install prometheus' as root (with the package registry reachable), or put promtool on PATH" >&2; exit 1; }

# the browser tests drive Debian's chromium (Playwright's own browser download is not used)
chromium:
	@command -v chromium >/dev/null || { apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null; } || \
	  { echo "make test needs Debian's chromium for the browser tests: run 'apt-get install chromium' as root"; exit 1; }

# the layers' import contracts (pyproject.toml) and the type check come first: both are quick
test: $(STAMP) promtool chromium
	$(BIN)/lint-imports
	$(BIN)/mypy trustfabric
	$(BIN)/python -m pytest -q

BENCH := $(VENV)/.bench-installed
$(BENCH): $(STAMP)
	$(BIN)/pip install --quiet -e '.[bench]'
	touch $(BENCH)

bench-lineage: $(BENCH)
	$(BIN)/python -m bench.lineage $(ARGS)

bench-psi: $(BENCH)
	$(BIN)/python -m bench.psi_latency $(ARGS)

bench-shedding: $(BENCH)
	$(BIN)/python -m bench.shedding $(ARGS)

bench-audit: $(BENCH)
	$(BIN)/python -m bench.audit_pages $(ARGS)

bench-jobs: $(BENCH)
	$(BIN)/python -m bench.job_pages $(ARGS)

bench-soak: $(BENCH)
	$(BIN)/python -m bench.soak $(ARGS)

clean:
	rm -rf $(VENV) .data
