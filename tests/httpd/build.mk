# usnet-httpd's tests (tests/httpd/run.sh): the ASan/UBSan builds of the
# server (apps/usnet-httpd/build.mk) and the parser's fuzz replay
# (fuzz/build.mk) are built for them.
TEST_SUITES += tests/httpd/run.sh
TEST_DEPS += $(B)/httpd/usnet-httpd-san
ifeq ($(APP_LIBS_READY),yes)
TEST_DEPS += $(B)/httpd/usnet-httpd-usnet-san
endif
