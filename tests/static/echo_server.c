/*
 * A small TCP echo server (and its client), built statically for
 * tests/static: the server answers each connection with the address the
 * connection reached (getsockname: usnet's, when usnet serves it) and the
 * line it got.
 *
 *   echo_server serve PORT N [threads|fork]   N connections (each in a
 *                                        thread, or a forked child), then
 *                                        "served N"
 *   echo_server client ADDR PORT LINE    prints the server's answer
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static void *serve_one(void *arg)
{
	int c = (int)(long)arg;
	struct sockaddr_in local;
	socklen_t len = sizeof local;
	char addr[INET_ADDRSTRLEN] = "?", line[256], out[320];
	if (getsockname(c, (struct sockaddr *)&local, &len) == 0)
		inet_ntop(AF_INET, &local.sin_addr, addr, sizeof addr);
	size_t got = 0;
	while (got < sizeof line - 1) {
		ssize_t n = read(c, line + got, sizeof line - 1 - got);
		if (n <= 0)
			break;
		got += (size_t)n;
		if (memchr(line, '\n', got))
			break;
	}
	line[got] = 0;
	line[strcspn(line, "\n")] = 0;
	int n = snprintf(out, sizeof out, "%s %s\n", addr, line);
	if (write(c, out, (size_t)n) != n)
		perror("write");
	close(c);
	return NULL;
}

static int serve(int port, int count, int threads)
{
	int s = socket(AF_INET, SOCK_STREAM, 0), one = 1;
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((unsigned short)port) };
	setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof a) || listen(s, 16)) {
		perror("echo_server: listen");
		return 1;
	}
	printf("ready\n");
	fflush(stdout);
	pthread_t t[64];
	int nt = 0;
	for (int i = 0; i < count; i++) {
		int c = accept(s, NULL, NULL);
		if (c < 0) {
			perror("echo_server: accept");
			return 1;
		}
		if (threads == 2) {
			pid_t p = fork();
			if (p == 0) {
				close(s);
				serve_one((void *)(long)c);
				_exit(0);
			}
			close(c);
			if (p > 0)
				waitpid(p, NULL, 0);
		} else if (threads && nt < 64 && pthread_create(&t[nt], NULL, serve_one, (void *)(long)c) == 0) {
			nt++;
		} else {
			serve_one((void *)(long)c);
		}
	}
	for (int i = 0; i < nt; i++)
		pthread_join(t[i], NULL);
	printf("served %d\n", count);
	return 0;
}

static int client(const char *addr, int port, const char *msg)
{
	int s = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((unsigned short)port) };
	if (inet_pton(AF_INET, addr, &a.sin_addr) != 1 || connect(s, (struct sockaddr *)&a, sizeof a)) {
		perror("echo_server: connect");
		return 1;
	}
	dprintf(s, "%s\n", msg);
	char buf[512];
	ssize_t n, got = 0;
	while ((n = read(s, buf + got, sizeof buf - 1 - (size_t)got)) > 0)
		got += n;
	buf[got] = 0;
	fputs(buf, stdout);
	return got > 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
	if (argc >= 4 && !strcmp(argv[1], "serve"))
		return serve(atoi(argv[2]), atoi(argv[3]),
			     argc > 4 ? (!strcmp(argv[4], "threads") ? 1 : !strcmp(argv[4], "fork") ? 2 : 0) : 0);
	if (argc == 5 && !strcmp(argv[1], "client"))
		return client(argv[2], atoi(argv[3]), argv[4]);
	fprintf(stderr, "usage: echo_server serve PORT N [threads|fork] | client ADDR PORT LINE\n");
	return 2;
}
