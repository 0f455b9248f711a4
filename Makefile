# The two commands of the README call `make quickstart` and `make test`; both build .venv/ first.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install quickstart test lint constraints clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade "pip>=24" "setuptools>=68"
	$(BIN)/pip install --quiet --constraint constraints.txt --editable ".[dev]"
	touch $(STAMP)

# The main job: the quickstart search on the synthetic benchmark (generated on first use) on a
# local Ray, tracked in ./mlflow.db (one parent run, one child run per trial).
quickstart: install
	$(BIN)/reid search experiments/quickstart.yaml --space search_spaces/quickstart.yaml

test: install
	$(BIN)/pytest -q

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

constraints: install
	$(BIN)/pip freeze --exclude-editable | LC_ALL=C sort -f > constraints.txt.new && mv constraints.txt.new constraints.txt

clean:
	rm -rf $(VENV) datasets/synthetic outputs mlflow.db
