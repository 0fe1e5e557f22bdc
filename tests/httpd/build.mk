# usnet-httpd's tests (tests/httpd/run.sh): the ASan/UBSan build of the
# server on kernel sockets and the parser's fuzz replay are built for them.
TEST_SUITES += tests/httpd/run.sh
TEST_DEPS += $(B)/httpd/usnet-httpd-san
