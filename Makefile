# Troupe: the two set-up commands are `make run` and `make test` (see README.md).
BUILD ?= build
TROUPE := ./$(BUILD)/cli/troupe
CTEST_JOBS ?= 2

.PHONY: all deps configure build test test-asan test-tsan run run-llama bench bench-tokenizer clean

all: build

deps:
	bash scripts/install-deps.sh

# Unity batches for the torch sources (TROUPE_UNITY): about half the from-scratch build time on 2 cores.
UNITY ?= ON

configure: deps
	cmake -S . -B $(BUILD) -G Ninja -DTROUPE_UNITY=$(UNITY)

build: configure
	cmake --build $(BUILD)

# Every test, every label (unit, multiprocess, python, cli).
test: build
	ctest --test-dir $(BUILD) --output-on-failure -j $(CTEST_JOBS) --timeout 600

# Sanitizer builds (scripts/sanitize.sh; trees build-asan/ and build-tsan/): AddressSanitizer + UndefinedBehavior-
# Sanitizer over the unit and multiprocess suites, ThreadSanitizer over the transport, launcher and communicator tests.
test-asan: deps
	bash scripts/sanitize.sh asan

test-tsan: deps
	bash scripts/sanitize.sh tsan

# The RLHF quickstart end to end: tokenizer -> pretrain -> SFT -> labels -> reward model -> PPO (four worker
# processes) -> DPO -> evaluation table (experiments/quickstart.yaml), then the pipeline's log read back.
run: build
	$(TROUPE) info
	$(TROUPE) run experiments/quickstart.yaml
	$(TROUPE) log runs/quickstart

# The same pipeline with Llama-architecture models from pretraining on (experiments/quickstart_llama.yaml).
run-llama: build
	$(TROUPE) run experiments/quickstart_llama.yaml
	$(TROUPE) log runs/quickstart-llama

bench: build
	$(TROUPE) bench matmul --min-gflops 50
	$(TROUPE) bench decode
	$(TROUPE) bench train --peer-script bench/train_peer.py --work-dir $(BUILD)/bench-train
	bash bench/dp_scaling.sh $(BUILD)/bench-dp
	$(TROUPE) bench transport
	bash bench/ppo_overhead.sh $(BUILD)/bench-ppo
	.venv/bin/python bench/dashboard_load.py --cli $(TROUPE) --helper $(BUILD)/tests/helpers/troupe_dashboard_log_writer_helper

# Troupe's BPE vs native tiktoken, HF tokenizers (the venv) and sentencepiece.
bench-tokenizer: build
	bash bench/tokenizer.sh

clean:
	rm -rf $(BUILD)
