/*
 * kv_proto — memcached's classic text commands; see kv_proto.h.  The meta
 * commands are in kv_meta.c.
 */
#include "kv_proto.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define KV_VERSION "1.6.18-usnet-kv"

/* ---- output ------------------------------------------------------------- */

void kv_out_put(struct kv_out *o, const void *p, size_t n)
{
	if (o->len + n > o->cap) {
		size_t cap = o->cap ? o->cap : 4096;
		while (cap < o->len + n)
			cap *= 2;
		char *b = realloc(o->buf, cap);
		if (!b) {
			o->failed = 1;
			return;
		}
		o->buf = b;
		o->cap = cap;
	}
	memcpy(o->buf + o->len, p, n);
	o->len += n;
}

void kv_out_str(struct kv_out *o, const char *s)
{
	kv_out_put(o, s, strlen(s));
}

void kv_out_free(struct kv_out *o)
{
	free(o->buf);
	memset(o, 0, sizeof *o);
}

void kv_reply(struct kv_session *s, struct kv_out *out, const char *line)
{
	if (s->noreply)
		return;
	kv_out_str(out, line);
	kv_out_put(out, "\r\n", 2);
}

void kv_session_init(struct kv_session *s, struct kv_store *store)
{
	memset(s, 0, sizeof *s);
	s->store = store;
}

/* ---- parsing ------------------------------------------------------------ */

size_t kv_tokenize(char *command, struct kv_token *tokens, size_t max)
{
	size_t n = 0;
	char *s = command, *e = command;
	size_t len = strlen(command);

	for (size_t i = 0; i < len; i++, e++) {
		if (*e != ' ')
			continue;
		if (s != e) {
			tokens[n].value = s;
			tokens[n].length = (size_t)(e - s);
			n++;
			*e = '\0';
			if (n == max - 1) {
				/* Leave the rest for the caller (long multi-key gets). */
				e++;
				s = e;
				goto done;
			}
		}
		s = e + 1;
	}
	if (s != e) {
		tokens[n].value = s;
		tokens[n].length = (size_t)(e - s);
		n++;
	}
done:
	tokens[n].value = *e == '\0' ? NULL : e;
	tokens[n].length = 0;
	return n + 1;
}

static int ends_number(const char *start, const char *end)
{
	return isspace((unsigned char)*end) || (*end == '\0' && end != start);
}

int kv_parse_u64(const char *s, uint64_t *out)
{
	char *end;
	errno = 0;
	*out = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno == ERANGE || end == s)
		return 0;
	if (!ends_number(s, end))
		return 0;
	/* A huge value with a minus sign was a negative number. */
	if ((long long)v < 0 && memchr(s, '-', (size_t)(end - s)))
		return 0;
	*out = v;
	return 1;
}

int kv_parse_u32(const char *s, uint32_t *out)
{
	char *end;
	errno = 0;
	*out = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (errno == ERANGE || end == s)
		return 0;
	if (!ends_number(s, end))
		return 0;
	if ((long)v < 0 && memchr(s, '-', (size_t)(end - s)))
		return 0;
	*out = (uint32_t)v;  /* memcached keeps the low 32 bits */
	return 1;
}

int kv_parse_i32(const char *s, int32_t *out)
{
	char *end;
	errno = 0;
	*out = 0;
	long v = strtol(s, &end, 10);
	if (errno == ERANGE || end == s)
		return 0;
	if (!ends_number(s, end))
		return 0;
	/* memcached keeps the low 32 bits: 4000000000 is a negative time. */
	*out = (int32_t)(uint32_t)(unsigned long)v;
	return 1;
}

static int is_noreply(struct kv_token *t, size_t ntokens)
{
	const char *v = t[ntokens - 2].value;
	return v && strcmp(v, "noreply") == 0;
}

/* ---- commands ----------------------------------------------------------- */

static void append_value(struct kv_out *out, struct kv_item *it, int with_cas)
{
	char hdr[96];
	kv_out_put(out, "VALUE ", 6);
	kv_out_put(out, kv_item_key(it), it->nkey);
	int n = with_cas
		? snprintf(hdr, sizeof hdr, " %" PRIu32 " %" PRIu32 " %" PRIu64 "\r\n", it->flags, it->nbytes, it->cas)
		: snprintf(hdr, sizeof hdr, " %" PRIu32 " %" PRIu32 "\r\n", it->flags, it->nbytes);
	kv_out_put(out, hdr, (size_t)n);
	kv_out_put(out, kv_item_value(it), it->nbytes);
	kv_out_put(out, "\r\n", 2);
}

/* get/gets/gat/gats: keys from tokens[first] on, re-tokenizing the rest of a
 * line longer than the token table. */
static void cmd_get(struct kv_session *s, struct kv_token *tokens, size_t ntokens,
		    int with_cas, int touch, struct kv_out *out)
{
	struct kv_store *st = s->store;
	struct kv_token *key = &tokens[1];
	uint32_t exptime = 0;

	if (touch) {
		int32_t e;
		if (!kv_parse_i32(tokens[1].value, &e)) {
			kv_reply(s, out, "CLIENT_ERROR invalid exptime argument");
			return;
		}
		exptime = kv_store_exptime(st, e);
		key++;
	}
	(void)ntokens;
	kv_store_lock(st);
	for (;;) {
		while (key->length != 0) {
			if (key->length > KV_KEY_MAX) {
				kv_store_unlock(st);
				/* memcached drops every reply it has not sent yet,
				 * not only this command's. */
				out->len = out->off > out->keep ? out->off : out->keep;
				kv_reply(s, out, "CLIENT_ERROR bad command line format");
				return;
			}
			struct kv_item *it = kv_lookup(st, key->value, key->length, 1);
			st->stats.cmd_get++;
			if (touch)
				st->stats.cmd_touch++;
			if (it) {
				st->stats.get_hits++;
				if (touch) {
					it->exptime = exptime;
					st->stats.touch_hits++;
				}
				append_value(out, it, with_cas);
			} else {
				st->stats.get_misses++;
				if (touch)
					st->stats.touch_misses++;
			}
			key++;
		}
		if (key->value == NULL)
			break;
		kv_tokenize(key->value, tokens, KV_MAX_TOKENS);
		key = tokens;
	}
	kv_store_unlock(st);
	kv_out_put(out, "END\r\n", 5);
	out->keep = out->len;
}

/* set/add/replace/append/prepend/cas.  Returns the data bytes used or -1
 * when the value has not fully arrived. */
static long cmd_update(struct kv_session *s, struct kv_token *tokens, size_t ntokens,
		       enum kv_update_mode mode, const char *data, size_t avail, struct kv_out *out)
{
	struct kv_store *st = s->store;
	uint32_t flags;
	int32_t exptime, vlen;
	uint64_t cas = 0;

	s->noreply = is_noreply(tokens, ntokens);
	if (tokens[1].length > KV_KEY_MAX) {
		kv_reply(s, out, "CLIENT_ERROR bad command line format");
		return 0;
	}
	if (!(kv_parse_u32(tokens[2].value, &flags) && kv_parse_i32(tokens[3].value, &exptime) &&
	      kv_parse_i32(tokens[4].value, &vlen))) {
		kv_reply(s, out, "CLIENT_ERROR bad command line format");
		return 0;
	}
	if (mode == KV_CAS && !kv_parse_u64(tokens[5].value, &cas)) {
		kv_reply(s, out, "CLIENT_ERROR bad command line format");
		return 0;
	}
	if (vlen < 0 || vlen > INT_MAX - 2) {
		kv_reply(s, out, "CLIENT_ERROR bad command line format");
		return 0;
	}
	size_t need = (size_t)vlen + 2;
	if (!kv_store_size_ok(st, tokens[1].length, (size_t)vlen)) {
		kv_reply(s, out, "SERVER_ERROR object too large for cache");
		if (mode == KV_SET) {
			/* A failed set must not leave the old value behind. */
			kv_store_lock(st);
			struct kv_item *old = kv_lookup(st, tokens[1].value, tokens[1].length, 0);
			if (old)
				kv_unlink(st, old);
			kv_store_unlock(st);
		}
		s->swallow = need;
		return 0;
	}
	if (avail < need)
		return -1;
	if (data[vlen] != '\r' || data[vlen + 1] != '\n') {
		kv_reply(s, out, "CLIENT_ERROR bad data chunk");
		return (long)need;
	}
	kv_store_lock(st);
	enum kv_result r = kv_update(st, mode, tokens[1].value, tokens[1].length, flags,
				     kv_store_exptime(st, exptime), data, (size_t)vlen, cas, NULL);
	kv_store_unlock(st);
	switch (r) {
	case KV_STORED: kv_reply(s, out, "STORED"); break;
	case KV_EXISTS: kv_reply(s, out, "EXISTS"); break;
	case KV_NOT_FOUND: kv_reply(s, out, "NOT_FOUND"); break;
	case KV_NOT_STORED:
	case KV_TOO_LARGE: kv_reply(s, out, "NOT_STORED"); break;
	default: kv_reply(s, out, "SERVER_ERROR out of memory storing object"); break;
	}
	return (long)need;
}

static void cmd_arith(struct kv_session *s, struct kv_token *tokens, size_t ntokens, int incr,
		      struct kv_out *out)
{
	uint64_t delta, value;
	s->noreply = is_noreply(tokens, ntokens);
	if (tokens[1].length > KV_KEY_MAX) {
		kv_reply(s, out, "CLIENT_ERROR bad command line format");
		return;
	}
	if (!kv_parse_u64(tokens[2].value, &delta)) {
		kv_reply(s, out, "CLIENT_ERROR invalid numeric delta argument");
		return;
	}
	kv_store_lock(s->store);
	enum kv_result r = kv_arith(s->store, tokens[1].value, tokens[1].length, incr, delta, 0, &value, NULL);
	kv_store_unlock(s->store);
	char num[32];
	switch (r) {
	case KV_OK:
		snprintf(num, sizeof num, "%" PRIu64, value);
		kv_reply(s, out, num);
		break;
	case KV_NOT_FOUND: kv_reply(s, out, "NOT_FOUND"); break;
	case KV_NON_NUMERIC: kv_reply(s, out, "CLIENT_ERROR cannot increment or decrement non-numeric value"); break;
	default: kv_reply(s, out, "SERVER_ERROR out of memory"); break;
	}
}

static void cmd_delete(struct kv_session *s, struct kv_token *tokens, size_t ntokens, struct kv_out *out)
{
	if (ntokens > 3) {
		int hold_is_zero = strcmp(tokens[2].value, "0") == 0;
		int sets_noreply = is_noreply(tokens, ntokens);
		s->noreply = sets_noreply;
		int valid = (ntokens == 4 && (hold_is_zero || sets_noreply)) ||
			    (ntokens == 5 && hold_is_zero && sets_noreply);
		if (!valid) {
			kv_reply(s, out, "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]");
			return;
		}
	}
	if (tokens[1].length > KV_KEY_MAX) {
		kv_reply(s, out, "CLIENT_ERROR bad command line format");
		return;
	}
	kv_store_lock(s->store);
	enum kv_result r = kv_delete(s->store, tokens[1].value, tokens[1].length, 0);
	kv_store_unlock(s->store);
	kv_reply(s, out, r == KV_DELETED ? "DELETED" : "NOT_FOUND");
}

static void cmd_touch(struct kv_session *s, struct kv_token *tokens, size_t ntokens, struct kv_out *out)
{
	int32_t e;
	s->noreply = is_noreply(tokens, ntokens);
	if (tokens[1].length > KV_KEY_MAX) {
		kv_reply(s, out, "CLIENT_ERROR bad command line format");
		return;
	}
	if (!kv_parse_i32(tokens[2].value, &e)) {
		kv_reply(s, out, "CLIENT_ERROR invalid exptime argument");
		return;
	}
	kv_store_lock(s->store);
	enum kv_result r = kv_touch(s->store, tokens[1].value, tokens[1].length, kv_store_exptime(s->store, e));
	kv_store_unlock(s->store);
	kv_reply(s, out, r == KV_TOUCHED ? "TOUCHED" : "NOT_FOUND");
}

static void cmd_flush_all(struct kv_session *s, struct kv_token *tokens, size_t ntokens, struct kv_out *out)
{
	int32_t delay = 0;
	s->noreply = is_noreply(tokens, ntokens);
	if (ntokens != (s->noreply ? 3u : 2u)) {
		if (!kv_parse_i32(tokens[1].value, &delay)) {
			kv_reply(s, out, "CLIENT_ERROR invalid exptime argument");
			return;
		}
	}
	kv_store_lock(s->store);
	kv_flush(s->store, delay);
	kv_store_unlock(s->store);
	kv_reply(s, out, "OK");
}

static void cmd_verbosity(struct kv_session *s, struct kv_token *tokens, size_t ntokens, struct kv_out *out)
{
	uint32_t level;
	s->noreply = is_noreply(tokens, ntokens);
	if (!kv_parse_u32(tokens[1].value, &level)) {
		kv_reply(s, out, "CLIENT_ERROR bad command line format");
		return;
	}
	kv_reply(s, out, "OK");
}

static void stat_u64(struct kv_out *out, const char *name, uint64_t v)
{
	char line[128];
	int n = snprintf(line, sizeof line, "STAT %s %" PRIu64 "\r\n", name, v);
	kv_out_put(out, line, (size_t)n);
}

static void cmd_stats(struct kv_session *s, struct kv_token *tokens, size_t ntokens, struct kv_out *out)
{
	struct kv_store *st = s->store;
	if (ntokens > 2) {
		if (strcmp(tokens[1].value, "reset") == 0) {
			kv_store_lock(st);
			uint64_t ci = st->stats.curr_items, by = st->stats.bytes, cc = st->stats.curr_connections;
			memset(&st->stats, 0, sizeof st->stats);
			st->stats.curr_items = ci;
			st->stats.bytes = by;
			st->stats.curr_connections = cc;
			kv_store_unlock(st);
			kv_reply(s, out, "RESET");
			return;
		}
		const char *g = tokens[1].value;
		if (strcmp(g, "detail") == 0) {
			kv_reply(s, out, "CLIENT_ERROR usage: stats detail on|off|dump");
			return;
		}
		/* memcached's other groups are answered empty here; anything
		 * else is an unknown command. */
		if (strcmp(g, "items") == 0 || strcmp(g, "slabs") == 0 || strcmp(g, "sizes") == 0 ||
		    strcmp(g, "settings") == 0 || strcmp(g, "conns") == 0)
			kv_out_str(out, "END\r\n");
		else
			kv_reply(s, out, "ERROR");
		return;
	}
	kv_store_lock(st);
	struct kv_stats x = st->stats;
	uint32_t now = kv_store_now(st);
	size_t limit = st->mem_limit;
	int64_t started = st->process_started;
	kv_store_unlock(st);
	char line[128];
	int n;
	stat_u64(out, "pid", (uint64_t)getpid());
	stat_u64(out, "uptime", now);
	stat_u64(out, "time", (uint64_t)(started + now));
	n = snprintf(line, sizeof line, "STAT version %s\r\n", KV_VERSION);
	kv_out_put(out, line, (size_t)n);
	stat_u64(out, "pointer_size", sizeof(void *) * 8);
	stat_u64(out, "curr_connections", x.curr_connections);
	stat_u64(out, "total_connections", x.total_connections);
	stat_u64(out, "cmd_get", x.cmd_get);
	stat_u64(out, "cmd_set", x.cmd_set);
	stat_u64(out, "cmd_flush", x.cmd_flush);
	stat_u64(out, "cmd_touch", x.cmd_touch);
	stat_u64(out, "get_hits", x.get_hits);
	stat_u64(out, "get_misses", x.get_misses);
	stat_u64(out, "delete_misses", x.delete_misses);
	stat_u64(out, "delete_hits", x.delete_hits);
	stat_u64(out, "incr_misses", x.incr_misses);
	stat_u64(out, "incr_hits", x.incr_hits);
	stat_u64(out, "decr_misses", x.decr_misses);
	stat_u64(out, "decr_hits", x.decr_hits);
	stat_u64(out, "cas_misses", x.cas_misses);
	stat_u64(out, "cas_hits", x.cas_hits);
	stat_u64(out, "cas_badval", x.cas_badval);
	stat_u64(out, "touch_hits", x.touch_hits);
	stat_u64(out, "touch_misses", x.touch_misses);
	stat_u64(out, "limit_maxbytes", limit);
	stat_u64(out, "bytes", x.bytes);
	stat_u64(out, "curr_items", x.curr_items);
	stat_u64(out, "total_items", x.total_items);
	stat_u64(out, "reclaimed", x.reclaimed);
	stat_u64(out, "evictions", x.evictions);
	kv_out_str(out, "END\r\n");
}

#define WANT(cond) do { if (!(cond)) { kv_reply(s, out, "ERROR"); return 0; } } while (0)

/* One command line (NUL-terminated, writable).  Returns the data bytes used
 * after it, or -1 when more bytes are needed. */
static long process_command(struct kv_session *s, char *command, const char *data, size_t avail,
			    struct kv_out *out)
{
	struct kv_token tokens[KV_MAX_TOKENS];
	size_t ntokens = kv_tokenize(command, tokens, KV_MAX_TOKENS);
	s->noreply = 0;
	if (ntokens < 2 || tokens[0].length < 2) {
		kv_reply(s, out, "ERROR");
		return 0;
	}
	const char *cmd = tokens[0].value;
	char first = cmd[0];

	if (first == 'm' && tokens[0].length == 2)
		return kv_meta_command(s, tokens, ntokens, data, avail, out);
	if (first == 'g') {
		WANT(ntokens >= 3);
		if (strcmp(cmd, "get") == 0) cmd_get(s, tokens, ntokens, 0, 0, out);
		else if (strcmp(cmd, "gets") == 0) cmd_get(s, tokens, ntokens, 1, 0, out);
		else if (strcmp(cmd, "gat") == 0) cmd_get(s, tokens, ntokens, 0, 1, out);
		else if (strcmp(cmd, "gats") == 0) cmd_get(s, tokens, ntokens, 1, 1, out);
		else kv_reply(s, out, "ERROR");
		return 0;
	}
	struct { const char *name; enum kv_update_mode mode; } updates[] = {
		{ "set", KV_SET }, { "add", KV_ADD }, { "replace", KV_REPLACE },
		{ "append", KV_APPEND }, { "prepend", KV_PREPEND }, { "cas", KV_CAS },
	};
	for (size_t i = 0; i < sizeof updates / sizeof updates[0]; i++) {
		if (strcmp(cmd, updates[i].name) != 0)
			continue;
		if (updates[i].mode == KV_CAS)
			WANT(ntokens == 7 || ntokens == 8);
		else
			WANT(ntokens == 6 || ntokens == 7);
		return cmd_update(s, tokens, ntokens, updates[i].mode, data, avail, out);
	}
	if (strcmp(cmd, "incr") == 0 || strcmp(cmd, "decr") == 0) {
		WANT(ntokens == 4 || ntokens == 5);
		cmd_arith(s, tokens, ntokens, cmd[0] == 'i', out);
	} else if (strcmp(cmd, "delete") == 0) {
		WANT(ntokens >= 3 && ntokens <= 5);
		cmd_delete(s, tokens, ntokens, out);
	} else if (strcmp(cmd, "touch") == 0) {
		WANT(ntokens == 4 || ntokens == 5);
		cmd_touch(s, tokens, ntokens, out);
	} else if (strcmp(cmd, "stats") == 0) {
		cmd_stats(s, tokens, ntokens, out);
	} else if (strcmp(cmd, "flush_all") == 0) {
		WANT(ntokens >= 2 && ntokens <= 4);
		cmd_flush_all(s, tokens, ntokens, out);
	} else if (strcmp(cmd, "version") == 0) {
		kv_out_str(out, "VERSION " KV_VERSION "\r\n");
	} else if (strcmp(cmd, "quit") == 0) {
		s->closing = 1;
	} else if (strcmp(cmd, "verbosity") == 0) {
		WANT(ntokens == 3 || ntokens == 4);
		cmd_verbosity(s, tokens, ntokens, out);
	} else if (ntokens >= 3 && tokens[ntokens - 2].value &&
		   strncmp(tokens[ntokens - 2].value, "HTTP/", 5) == 0) {
		s->closing = 1;  /* an HTTP request: memcached hangs up */
	} else {
		kv_reply(s, out, "ERROR");
	}
	return 0;
}

/* Whether a line without its newline yet may still grow (only multi-key
 * gets are allowed past 2048 bytes, as in memcached). */
static int long_line_allowed(const char *p, size_t n)
{
	size_t sp = 0;
	while (sp < n && p[sp] == ' ')
		sp++;
	if (sp > 100)
		return 0;
	p += sp;
	n -= sp;
	return (n >= 4 && memcmp(p, "get ", 4) == 0) || (n >= 5 && memcmp(p, "gets ", 5) == 0);
}

size_t kv_session_input(struct kv_session *s, const char *buf, size_t len, struct kv_out *out)
{
	size_t pos = 0;
	char small[2048 + 8];

	while (pos < len && !s->closing) {
		if (s->swallow) {
			size_t take = len - pos < s->swallow ? len - pos : (size_t)s->swallow;
			pos += take;
			s->swallow -= take;
			continue;
		}
		const char *line = buf + pos;
		const char *nl = memchr(line, '\n', len - pos);
		if (!nl) {
			size_t n = len - pos;
			if ((n > 2048 && !long_line_allowed(line, n)) || n > KV_LINE_MAX)
				s->closing = 1;
			break;
		}
		size_t linelen = (size_t)(nl - line);
		size_t next = pos + linelen + 1;
		if (linelen > 1 && line[linelen - 1] == '\r')
			linelen--;
		char *cmd = linelen < sizeof small ? small : malloc(linelen + 1);
		if (!cmd) {
			s->closing = 1;
			break;
		}
		memcpy(cmd, line, linelen);
		cmd[linelen] = '\0';
		long used = process_command(s, cmd, buf + next, len - next, out);
		if (cmd != small)
			free(cmd);
		if (used < 0)
			break;  /* the value has not all arrived: keep the line */
		pos = next + (size_t)used;
	}
	return pos;
}
