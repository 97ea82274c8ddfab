# The two commands of the README: `make demo` and `make test`. Each creates .venv itself.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
DEMO_CLIP := out/demo-input.mp4

.PHONY: demo test lint venv clean eval

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[cpu,dev]'
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

venv: $(STAMP)

# The demo clip is generated (never committed): 10 s of the synthetic world, seed 3.
$(DEMO_CLIP): | $(STAMP)
	$(PY) -m sources.synthetic --out $(DEMO_CLIP) --gt out/demo-input.gt.json --frames 300 --seed 3

demo: $(STAMP) $(DEMO_CLIP)
	$(VENV)/bin/vidpipe run configs/demo.yaml --summary out/demo-summary.json
	@echo "results: out/demo.jsonl ($$(wc -l < out/demo.jsonl) lines)"

# The model card's accuracy figures: held-out seed 7 through the whole pipeline.
eval: $(STAMP)
	$(PY) -m sources.synthetic --out out/heldout.mp4 --gt out/heldout.gt.json --frames 300 --seed 7
	$(VENV)/bin/vidpipe run configs/heldout.yaml
	$(VENV)/bin/vidpipe eval --results out/heldout.jsonl --gt out/heldout.gt.json

test: $(STAMP)
	$(PY) -m pytest -q -ra

lint: $(STAMP)
	$(VENV)/bin/ruff check .

clean:
	rm -rf out .pytest_cache
