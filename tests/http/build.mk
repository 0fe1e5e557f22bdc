# HTTP serving under usnet (tests/http/run.sh): nginx with php-fpm and python
# upstreams, many short connections and downloads, a Go net/http server
# (built by the suite itself: it needs golang-go).  Root, namespaces, a veth.
TEST_SUITES += tests/http/run.sh
