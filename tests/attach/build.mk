# The attach model end to end (tests/attach/run.sh): sockets shared between
# processes, as real servers share them.  Its programs are python scripts.
TEST_SUITES += tests/attach/run.sh
