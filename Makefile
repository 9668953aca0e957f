# Set-up and the two everyday commands. `make demo` and `make test` create
# the virtual environment on first use (torch pinned by constraints.txt).
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin

.PHONY: demo test tables assets clean

$(BIN)/modelspec: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[test,lsp,export,serve]"
	touch $@

demo: $(BIN)/modelspec
	$(BIN)/modelspec examples
	$(BIN)/modelspec check specs/*.nnspec specs/tutorials/*.nnspec
	$(BIN)/modelspec summary specs/cnn.nnspec
	$(BIN)/modelspec codegen specs/cnn.nnspec
	$(BIN)/modelspec run specs/cnn.nnspec --batch 8
	$(BIN)/modelspec train specs/linear_regression.nnspec --out runs/linear_regression  # ends with the learned w and b

test: $(BIN)/modelspec
	$(BIN)/python -m pytest -q -n auto --dist loadfile

# After an edit of grammar/nnspec.lark: regenerate the LALR tables shipped beside it (the tests check them).
tables: $(BIN)/modelspec
	$(BIN)/python -c "from modelspec.parse import write_tables; print(write_tables())"

# After an edit of web/ (the editor's source, or a version in web/package.json): rebuild the page's editor,
# modelspec/assets/editor.js, with the packages package-lock.json pins (needs node and npm).
assets:
	cd web && npm ci --no-audit --no-fund && npm run build

clean:
	rm -rf $(VENV) build dist *.egg-info fuzz-failures
