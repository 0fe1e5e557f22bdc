# Benchmarks (bench/): one fragment per benchmark, bench/<name>/build.mk.
# Benchmarks are built by `make` but never run by `make test`.
include $(sort $(wildcard bench/*/build.mk))
