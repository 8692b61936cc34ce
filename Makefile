# Inkwell: the commands a user and CI run. Every target bootstraps what it needs first.
SWIFT ?= swift
PYTHON := .venv/bin/python
FIXTURE_SCRIPTS := $(wildcard reference/fixtures/[a-z]*.py)
FIXTURES := $(patsubst reference/fixtures/%.py,.fixtures/%/.done,$(FIXTURE_SCRIPTS))

.PHONY: all bootstrap build release test fixtures demo demo-model bench bench-load bench-stencil gpu-bundle gpu-check gpu-check-cpu clean

all: build

bootstrap:
	@scripts/bootstrap.sh

build: bootstrap
	$(SWIFT) build

release: bootstrap
	$(SWIFT) build -c release --product inkwell

# Parity fixtures: made live by the reference libraries from fixed seeds, never committed.
.fixtures/%/.done: reference/fixtures/%.py reference/fixtures/_common.py reference/requirements.txt
	@mkdir -p $(@D)
	$(PYTHON) $< $(@D)
	@touch $@

# The pipeline fixture reuses the real CLIP tokenizer folder the tokenizer fixture writes; VAE tiling, img2img and
# inpainting use its model.
.fixtures/pipeline/.done .fixtures/clip_model/.done: .fixtures/clip_tokenizer/.done
.fixtures/vae_tiling/.done .fixtures/hub_cache/.done .fixtures/hub_repo/.done .fixtures/img2img/.done .fixtures/inpaint/.done: .fixtures/pipeline/.done
# The demo model's fixture is what diffusers draws with the committed demo-model/: remade when the model changes.
.fixtures/demo_model/.done: $(wildcard demo-model/*.json demo-model/*/*.safetensors demo-model/*/*.json)

fixtures:
	@scripts/bootstrap.sh --test
	@$(MAKE) --no-print-directory $(FIXTURES)

test: fixtures
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build --no-parallel
	@$(MAKE) --no-print-directory gpu-check-cpu

# The GPU machine's check (README, "GPU check"): gpu-bundle here, then gpu-check there (no build, no network).
# gpu-check-cpu, part of test: the same bundle-and-check path with the debug binaries, on the CPU, tiny models.
gpu-bundle: bootstrap
	$(SWIFT) build -c release --product inkwell
	$(SWIFT) build -c release --product inkwell-bench
	scripts/gpu-bundle.sh

gpu-check:
	scripts/gpu-check.sh

gpu-check-cpu:
	scripts/gpu-bundle.sh --debug
	INKWELL_DEVICE=cpu GPU_BUNDLE_DIR=.build/gpu-bundle-debug scripts/gpu-check.sh

# The demo's time is the `inkwell demo` line it prints (bootstrap and build are timed apart). A rerun does nothing.
demo:
	@start=$$(date +%s); $(MAKE) --no-print-directory release; echo "bootstrap + build time: $$(( $$(date +%s) - start )) s"
	.build/release/inkwell demo --root demo --base-model demo-model

# The committed demo base model (demo-model/): its recipe is BaseModelRecipe's defaults, one thread, so the
# same libtorch makes the same weights. About 35 minutes on one core; skipped when the folder has this recipe.
demo-model: release
	.build/release/inkwell train-base --output demo-model --threads 1

# SD15=0 leaves out the SD1.5-shape training rows (a 4 GB random-weight model; minutes per row on a CPU):
# only the two training rows at 512 px, 1 warm-up and 3 timed calls.
# CUDA=1 runs on the GPU: the tiny and small rows, then every SD1.5-shape row at 512 px in bf16 with batch 1
# and batch 4 (steps/s, images/s, peak memory).
BENCH_SD15 := sd15=benchmarks/.models/sd15:512:20:train,warmup=1,calls=3,seconds=0
BENCH_SD15_CUDA := --model sd15-bf16-b1=benchmarks/.models/sd15:512:30:dtype=bf16 \
  --model sd15-bf16-b4=benchmarks/.models/sd15:512:30:dtype=bf16,batch=4
bench: fixtures
	$(SWIFT) build -c release --product inkwell-bench
	$(PYTHON) benchmarks/make_models.py benchmarks/.models .fixtures/clip_tokenizer/sd15 small $(if $(filter 0,$(SD15)),,sd15)
	$(PYTHON) benchmarks/bench.py --bench .build/release/inkwell-bench $(if $(filter 1,$(CUDA)),--cuda) \
	  --model tiny=.fixtures/pipeline/model:32:20 --model small=benchmarks/.models/small:256:10 \
	  $(if $(filter 0,$(SD15)),,$(if $(filter 1,$(CUDA)),$(BENCH_SD15_CUDA),--model $(BENCH_SD15)))
	$(SWIFT) build -c release --product inkwell
	$(PYTHON) benchmarks/ranks.py --inkwell .build/release/inkwell --model benchmarks/.models/small --size 256 --steps 6 --batch 4

# A 20-step generation (the tiny test pipeline at 32 px, the demo model at 64 px) in PyTorch and in Inkwell, each
# on a quiet machine and with a process spinning on one core beside it: the four figures and the slowdowns.
bench-load: fixtures
	$(SWIFT) build -c release --product inkwell-bench
	$(PYTHON) benchmarks/load.py --bench .build/release/inkwell-bench

# Stencils: seconds per image (threshold and clean-up; tracing), SVG node counts, file sizes, peak memory.
bench-stencil: .fixtures/stencil_inputs/.done
	$(SWIFT) build -c release --product stencil-bench
	.build/release/stencil-bench .fixtures/stencil_inputs

clean:
	rm -rf .build .fixtures .gpu
