# Two commands for a newcomer: `make book` and `make test`. Everything else is a helper target.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.norep-installed
STORE  ?= stores/fashion
OUT    ?= book/generated
REPLICATES ?=
PYTEST_ARGS ?=

.PHONY: help venv test test-fast book zoo notebooks html lint constraints clean

help:
	@echo "make book   build the default store (cached), execute the notebooks, build the Jupyter Book"
	@echo "make test   create .venv if needed, install the project with its dev extras, run pytest"
	@echo "make test-fast  the same without the slow end-to-end tests"

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[dev]'
	touch $@

venv: $(STAMP)

test: $(STAMP)
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest $(PYTEST_ARGS)

test-fast: $(STAMP)
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

zoo: $(STAMP)
	$(BIN)/norep zoo train --preset fashion --out $(STORE)

notebooks: zoo
	$(BIN)/norep notebooks run --store $(STORE) --out $(OUT) $(if $(REPLICATES),--replicates $(REPLICATES))

html: $(STAMP)
	$(BIN)/jupyter-book build . -W -n --keep-going

book: notebooks
	$(BIN)/jupyter-book build . -W -n --keep-going
	@echo
	@echo "Book built: $(CURDIR)/_build/html/index.html"

lint: $(STAMP)
	$(BIN)/ruff check lib tests notebooks bench
	$(BIN)/ruff format --check lib tests notebooks bench
	$(BIN)/lint-imports

# Record the exact versions of the current environment (run after changing dependencies).
constraints: $(STAMP)
	$(BIN)/python -m pip freeze --exclude-editable | grep -v '^norep' > constraints.txt

clean:
	rm -rf _build $(OUT)
