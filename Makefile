# make bench: every benchmark scenario, one table (see README "Performance").
# BENCH_FLAGS adds flags (e.g. BENCH_FLAGS="--csv" or "--duration 1h");
# BENCH_SCENARIOS picks scenarios (default all).
BENCH_FLAGS ?=
BENCH_SCENARIOS ?= all

.PHONY: bench
bench:
	scripts/questdb status >/dev/null 2>&1 || scripts/questdb start
	go build -o bin/switchyard ./cmd/switchyard
	bin/switchyard bench $(BENCH_FLAGS) $(BENCH_SCENARIOS)
