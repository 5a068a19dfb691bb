# The two commands a new user needs: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
REQS ?= requirements.txt
STAMP := $(VENV)/.installed
DEMO_DATA := data/demo
DEMO_TRAIN_PEOPLE ?= 400
DEMO_EVAL_PEOPLE ?= 250

.PHONY: demo test test-fast test-gpu mutation venv demo-data clean-demo postgres wheelhouse docs

venv: $(STAMP)

$(STAMP): $(REQS) requirements.txt requirements-test.txt requirements-postgres.txt requirements-onnx.txt requirements-wandb.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r $(REQS) -r requirements-test.txt -r requirements-postgres.txt -r requirements-onnx.txt \
		-r requirements-wandb.txt
	$(PY) -m pip install --quiet --no-deps -e .
	touch $(STAMP)

demo-data: $(STAMP)
	test -f $(DEMO_DATA)/train/train.csv || $(PY) -m tools.synthetic --out $(DEMO_DATA) \
		--train-people $(DEMO_TRAIN_PEOPLE) --eval-people $(DEMO_EVAL_PEOPLE) --seed 0

demo: demo-data
	$(PY) train.py --config configs/demo.yaml
	@run=$$(ls -td saved/demo/2*/ | head -n 1); run=$${run%/}; \
	$(PY) inference.py --ckpt $$run && \
	$(PY) -m tools.score $$run/submission.csv $(DEMO_DATA)/eval_truth.csv && \
	echo "run directory: $$run (config.yaml, swa.pth: the model, best.pth, last.pth, metrics.csv, report.png, submission.csv)" && \
	echo "TensorBoard:   $(VENV)/bin/tensorboard --logdir saved" && \
	echo "final fit:     $(PY) train.py --refit $$run (every person, the epochs this run chose; not run here: it would double the demo's 5-minute budget)"

# The search tests start their own PostgreSQL server (tests/support/postgres_server.py) from Debian's binaries.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
postgres:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null || { \
		echo "installing Debian's postgresql package (server binaries for the search tests)"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq postgresql; }

test: $(STAMP) postgres
	$(PY) -m pytest -q tests

# one process per core, each torch on one thread (tests/conftest.py): about twice as fast on 2 cores
TEST_WORKERS ?= auto
test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not slow" -n $(TEST_WORKERS) tests

# the real training path on a CUDA GPU (skipped elsewhere)
test-gpu: $(STAMP)
	$(PY) -m pytest -q -m gpu tests

# mutation testing of the core modules (mutmut; hours on 2 cores, not in CI; `mutmut run "NAME*"` for some);
# survivors and scores: docs/mutation.md
mutation: $(STAMP)
	$(PY) -m pip install --quiet "mutmut>=3.3"
	rm -rf mutants
	OMP_NUM_THREADS=1 $(PY) -m mutmut run; $(PY) -m mutmut results

clean-demo:
	rm -rf $(DEMO_DATA) saved/demo

# Wheels for an offline GPU server: make wheelhouse PYVER=3.12 [ARCH=x86_64 GLIBC=2.35 WITHOUT_TORCH=1]
PYVER ?= $(shell $(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])')
ARCH ?= x86_64
GLIBC ?= 2.35
WHEELHOUSE ?= wheelhouse
wheelhouse: $(STAMP)
	$(PY) -m tools.wheelhouse --out $(WHEELHOUSE) --python-version $(PYVER) --arch $(ARCH) --glibc $(GLIBC) \
		$(if $(WITHOUT_TORCH),--without-torch)

# docs/config.md from the schema (a test fails when it is stale)
docs: $(STAMP)
	$(PY) -m tools.config_reference --out docs/config.md
