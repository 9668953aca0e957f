# Set-up and the two everyday commands. `make demo` and `make test` create
# the virtual environment on first use (torch pinned by constraints.txt).
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin

.PHONY: demo test clean

$(BIN)/modelspec: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[test]"
	touch $@

demo: $(BIN)/modelspec
	$(BIN)/modelspec check specs/*.nnspec
	$(BIN)/modelspec summary specs/cnn.nnspec
	$(BIN)/modelspec codegen specs/cnn.nnspec
	$(BIN)/modelspec run specs/cnn.nnspec --batch 8

test: $(BIN)/modelspec
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) build dist *.egg-info fuzz-failures
