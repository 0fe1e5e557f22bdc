# Real programs on the usnet stack (tests/apps/run.sh): root, namespaces,
# TAP; the Go server is built by the suite itself (it needs golang-go).
TEST_SUITES += tests/apps/run.sh
