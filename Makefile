# The two commands of the README: `make demo` and `make test`. Each creates .venv itself.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
DEMO_CLIP := out/demo-input.mp4

.PHONY: demo test lint venv clean eval eval-seed7 eval-pose system-deps bench ultralytics-fixtures rfsdk-venv \
        ultralytics-venv rfinference-venv bench-peers

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
# The held-out clips (benchmarks/heldout.py: seeds 7 and 42, and 11 and 23 of the crowded
# world with occluders) through configs/heldout.yaml, `vidpipe eval` on each, classic
# ByteTrack vs the default tracker on the same detections, every tracking figure checked
# against TrackEval; prints the tables and records them in benchmarks/RESULTS.md.
eval: $(STAMP)
	$(VENV)/bin/vidpipe bench heldout

# One clip by hand (seed 7): write it, run the pipeline, score it.
eval-seed7: $(STAMP)
	$(PY) -m sources.synthetic --out out/heldout.mp4 --gt out/heldout.gt.json --frames 300 --seed 7
	$(VENV)/bin/vidpipe run configs/heldout.yaml
	$(VENV)/bin/vidpipe eval --results out/heldout.jsonl --gt out/heldout.gt.json

# The pose model card's figures: the same held-out clip through configs/pose.yaml; keypoint
# OKS mAP (pycocotools, sigma 0.05 for each of the 5 keypoints) by vidpipe eval.
eval-pose: $(STAMP)
	$(PY) -m sources.synthetic --out out/heldout.mp4 --gt out/heldout.gt.json --frames 300 --seed 7
	$(VENV)/bin/vidpipe run configs/pose.yaml
	$(VENV)/bin/vidpipe eval --results out/pose.jsonl --gt out/heldout.gt.json

# The RTSP tests run a real server (gst-rtsp-server) under the system interpreter,
# which has python3-gi; the decode benchmark compares with the ffmpeg CLI. Installed with
# apt when missing (as root, or with sudo).
SYSTEM_PKGS := python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-base \
               gstreamer1.0-plugins-good gstreamer1.0-plugins-bad gstreamer1.0-rtsp ffmpeg
RTSP_CHECK := import gi; gi.require_version('Gst','1.0'); gi.require_version('GstRtspServer','1.0'); \
              from gi.repository import Gst, GstRtspServer; Gst.init(None); \
              assert all(Gst.ElementFactory.find(e) for e in ('appsrc','h264parse','rtph264pay'))

system-deps:
	@if /usr/bin/python3 -c "$(RTSP_CHECK)" 2>/dev/null && command -v ffmpeg >/dev/null 2>&1; then \
		echo "system-deps: gst-rtsp-server and ffmpeg present"; \
	elif command -v apt-get >/dev/null 2>&1; then \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $(SYSTEM_PKGS); \
	else \
		echo "system-deps: no apt here: the RTSP tests will be skipped (never in CI)"; \
	fi

# onnxruntime-gpu beside the CPU build (not importable unless put on PYTHONPATH): the GPU
# tests check, on this CPU-only machine, how it falls back when CUDA cannot load.
ORT_GPU := $(VENV)/ort-gpu
$(ORT_GPU)/.installed: | $(STAMP)
	$(PY) -m pip install -q --no-deps --target $(ORT_GPU) "onnxruntime-gpu>=1.17"
	touch $@

# Roboflow's inference-sdk pins numpy/pillow/supervision/opencv versions ours conflict with:
# its own virtualenv, for the test that runs it against a live `vidpipe serve` (tests/test_serve_rfsdk.py).
RFSDK := .venv-rfsdk
$(RFSDK)/.installed:
	$(PYTHON) -m venv $(RFSDK)
	$(RFSDK)/bin/python -m pip install -q "inference-sdk~=1.8.3"
	touch $@

rfsdk-venv: $(RFSDK)/.installed

test: $(STAMP) system-deps $(ORT_GPU)/.installed $(RFSDK)/.installed
	$(PY) -m pytest -q -ra --durations=20

# The benchmark suite (about 22 minutes on 2 cores): rewrites benchmarks/RESULTS.md and its plots.
bench: $(STAMP) system-deps
	$(VENV)/bin/vidpipe bench

# Style, the layers (import-linter contracts in pyproject.toml) and types (mypy; strict on core and wire).
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy

# Test fixtures from the real Ultralytics exporter and predictor (dev only; never part of
# `make test` or CI, which read the committed files without ultralytics). Its own throwaway
# virtualenv: the CPU build of torch goes in first (here from the local wheel folder) and a
# torchvision pinned to it, so that ultralytics does not pull a multi-GB CUDA build of torch.
UL_VENV := .venv-ultralytics
UL_PY   := $(UL_VENV)/bin/python
UL_PINS := torch==2.13.0 torchvision==0.28.0 ultralytics==8.4.190 onnx onnxslim onnxruntime
$(UL_VENV)/.installed:
	$(PYTHON) -m venv $(UL_VENV)
	$(UL_PY) -m pip install -q --upgrade pip
	$(UL_PY) -m pip install -q torch==2.13.0
	$(UL_PY) -m pip install -q $(UL_PINS)
	touch $@

ultralytics-venv: $(UL_VENV)/.installed

ultralytics-fixtures: $(UL_VENV)/.installed
	YOLO_OFFLINE=1 PYTHONPATH=$(CURDIR) $(UL_PY) -m training.ultralytics_fixtures --out tests/fixtures/ultralytics

# Roboflow's `inference` (InferencePipeline and its model classes) for `vidpipe bench peers`
# (dev only; never part of `make test` or CI). Its own throwaway virtualenv: it pins numpy,
# opencv, onnxruntime and supervision versions ours do not share, and pulls torch (through
# inference-models): the CPU build goes in first, as for Ultralytics (about 2.7 GB in all).
RF_VENV := .venv-rfinference
RF_PY   := $(RF_VENV)/bin/python
RF_PINS := torch==2.13.0 torchvision==0.28.0 inference==1.8.3 onnxruntime==1.21.1
$(RF_VENV)/.installed:
	$(PYTHON) -m venv $(RF_VENV)
	$(RF_PY) -m pip install -q --upgrade pip
	$(RF_PY) -m pip install -q torch==2.13.0
	$(RF_PY) -m pip install -q $(RF_PINS)
	touch $@

rfinference-venv: $(RF_VENV)/.installed

# vidpipe beside Ultralytics and Roboflow InferencePipeline (benchmarks/peers.py; not in the
# default suite): the same clip and model, each peer in its own virtualenv.
bench-peers: $(STAMP) $(UL_VENV)/.installed $(RF_VENV)/.installed
	$(VENV)/bin/vidpipe bench peers

clean:
	rm -rf out .pytest_cache
