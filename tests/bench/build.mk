# tests/bench: bench/run's parsers and report on recorded outputs of the
# benchmark scripts (no root, no network, a second or two).
TEST_SUITES += tests/bench/run.sh
