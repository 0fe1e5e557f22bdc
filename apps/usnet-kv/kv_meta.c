/*
 * kv_meta — memcached's meta commands: mg (get), ms (set), md (delete),
 * ma (arithmetic), mn (no-op) and me (debug).  Each takes a key and
 * one-letter flags, some with a value ("T30", "Oopaque"); return flags are
 * echoed in the order they were asked for.
 */
#include "kv_proto.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#define META_MAX_TOKENS 20     /* more tokens than this: "flags too long" */
#define META_OPAQUE_MAX 32

/* Flags as parsed before a command runs. */
struct meta_flags {
	int value, no_reply, no_update, vivify, new_ttl, has_cas, set_stale;
	uint32_t exptime, autoviv_exptime, recache_time, client_flags;
	uint64_t cas, initial, delta;
	char mode;
	const char *err;  /* first error met, or NULL */
	/* The key: the token itself, or with b its base64 decoding. */
	const char *key;
	size_t nkey;
	int key_binary;
	char keybuf[KV_KEY_MAX];
};

/* Standard base64 with padding, as memcached's meta commands take binary
 * keys.  Returns the decoded length, or -1 when `in` is not valid base64. */
static long b64_decode(const char *in, size_t n, char *out, size_t max)
{
	static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t o = 0;
	if (n == 0 || n % 4 != 0)
		return -1;
	for (size_t i = 0; i < n; i += 4) {
		uint32_t v = 0;
		int pad = 0;
		for (int j = 0; j < 4; j++) {
			char c = in[i + j];
			const char *p = c ? strchr(alphabet, c) : NULL;
			if (c == '=' && i + 4 == n && j >= 2) {
				pad++;
				v <<= 6;
				continue;
			}
			if (!p || pad)
				return -1;
			v = (v << 6) | (uint32_t)(p - alphabet);
		}
		char b[3] = { (char)(v >> 16), (char)(v >> 8), (char)v };
		for (int j = 0; j < 3 - pad; j++) {
			if (o == max)
				return -1;
			out[o++] = b[j];
		}
	}
	return (long)o;
}

static void b64_put(struct kv_out *out, const char *in, size_t n)
{
	static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	char b[4];
	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)(uint8_t)in[i] << 16;
		if (i + 1 < n) v |= (uint32_t)(uint8_t)in[i + 1] << 8;
		if (i + 2 < n) v |= (uint8_t)in[i + 2];
		b[0] = alphabet[(v >> 18) & 63];
		b[1] = alphabet[(v >> 12) & 63];
		b[2] = i + 1 < n ? alphabet[(v >> 6) & 63] : '=';
		b[3] = i + 2 < n ? alphabet[v & 63] : '=';
		kv_out_put(out, b, 4);
	}
}

/* Check flags tokens[start..ntokens-2]: duplicates and unknown letters end
 * parsing at once; bad values are noted and parsing goes on (so ms can still
 * learn how many bytes to discard). */
static int meta_preparse(struct kv_store *st, struct kv_token *tokens, size_t ntokens, size_t start,
			 struct meta_flags *f)
{
	unsigned char seen[128] = { 0 };
	memset(f, 0, sizeof *f);
	f->delta = 1;
	f->key = tokens[1].value;
	f->nkey = tokens[1].length;
	for (size_t i = start; i < ntokens - 1; i++) {
		const char *v = tokens[i].value;
		unsigned char o = (unsigned char)v[0];
		int32_t t;
		if (o >= 127 || seen[o]) {
			f->err = "CLIENT_ERROR duplicate flag";
			return -1;
		}
		seen[o] = 1;
		switch (o) {
		case 'N':
			f->vivify = 1;
			if (!kv_parse_i32(v + 1, &t)) f->err = f->err ? f->err : "CLIENT_ERROR bad token in command line format";
			else f->autoviv_exptime = kv_store_exptime(st, t);
			break;
		case 'T':
			if (!kv_parse_i32(v + 1, &t)) f->err = f->err ? f->err : "CLIENT_ERROR bad token in command line format";
			else { f->exptime = kv_store_exptime(st, t); f->new_ttl = 1; }
			break;
		case 'R':
			if (!kv_parse_i32(v + 1, &t)) f->err = f->err ? f->err : "CLIENT_ERROR bad token in command line format";
			else f->recache_time = kv_store_exptime(st, t);
			break;
		case 'b':
			f->key_binary = 1;  /* decoded once every flag is known good */
			break;
		case 'l': case 'O': case 'P': case 'L': case 'k': case 's': case 't': case 'c':
		case 'f': case 'h':
			break;
		case 'v': f->value = 1; break;
		case 'u': f->no_update = 1; break;
		case 'q': f->no_reply = 1; break;
		case 'F':
			if (!kv_parse_u32(v + 1, &f->client_flags)) f->err = f->err ? f->err : "CLIENT_ERROR bad token in command line format";
			break;
		case 'C':
			if (!kv_parse_u64(v + 1, &f->cas)) f->err = f->err ? f->err : "CLIENT_ERROR bad token in command line format";
			else f->has_cas = 1;
			break;
		case 'M':
			if (tokens[i].length != 2) f->err = f->err ? f->err : "CLIENT_ERROR incorrect length for M token";
			else f->mode = v[1];
			break;
		case 'J':
			if (!kv_parse_u64(v + 1, &f->initial)) f->err = f->err ? f->err : "CLIENT_ERROR invalid numeric initial value";
			break;
		case 'D':
			if (!kv_parse_u64(v + 1, &f->delta)) f->err = f->err ? f->err : "CLIENT_ERROR invalid numeric delta value";
			break;
		case 'I':
			f->set_stale = 1;
			break;
		default:
			f->err = "CLIENT_ERROR invalid flag";
			return -1;
		}
	}
	if (f->err)
		return -1;
	if (f->key_binary) {
		long n = b64_decode(tokens[1].value, tokens[1].length, f->keybuf, sizeof f->keybuf);
		if (n <= 0) {
			f->err = "CLIENT_ERROR error decoding key";
			return -1;
		}
		f->key = f->keybuf;
		f->nkey = (size_t)n;
	}
	return 0;
}

static void put_err(struct kv_out *out, const char *err)
{
	kv_out_str(out, err);
	kv_out_put(out, "\r\n", 2);
}

static void put_flag_u64(struct kv_out *out, char flag, uint64_t v)
{
	char b[32];
	int n = snprintf(b, sizeof b, " %c%" PRIu64, flag, v);
	kv_out_put(out, b, (size_t)n);
}

static void put_ttl(struct kv_out *out, struct kv_store *st, struct kv_item *it)
{
	if (it->exptime == 0) {
		kv_out_put(out, " t-1", 4);
		return;
	}
	uint32_t now = kv_store_now(st);
	put_flag_u64(out, 't', it->exptime > now ? it->exptime - now : 0);
}

/* The O and k flags, which every meta reply echoes (a binary key goes back
 * in base64, marked " b").  Returns -1 when an opaque token is too long. */
static int put_opaque_key(struct kv_out *out, struct kv_token *t, const char *key, size_t nkey, int binary)
{
	char o = t->value[0];
	if (o == 'O') {
		if (t->length > META_OPAQUE_MAX)
			return -1;
		kv_out_put(out, " ", 1);
		kv_out_put(out, t->value, t->length);
	} else if (o == 'k') {
		kv_out_put(out, " k", 2);
		if (binary) {
			b64_put(out, key, nkey);
			kv_out_put(out, " b", 2);
		} else {
			kv_out_put(out, key, nkey);
		}
	}
	return 0;
}

/* The checks mg, md and ma begin with: the key's length, the token count
 * (`too_long`: memcached's words for it, which differ between commands), then
 * the flags from token 2 into *f (`flag_err`: the reply to a bad flag, NULL
 * for the flag's own message).  0, or -1 once the error is in `out`. */
static int meta_begin(struct kv_store *st, struct kv_token *tokens, size_t ntokens,
		      const char *too_long, const char *flag_err, struct meta_flags *f,
		      struct kv_out *out)
{
	if (tokens[1].length > KV_KEY_MAX) {
		put_err(out, "CLIENT_ERROR bad command line format");
		return -1;
	}
	if (ntokens > META_MAX_TOKENS) {
		put_err(out, too_long);
		return -1;
	}
	if (meta_preparse(st, tokens, ntokens, 2, f) < 0) {
		put_err(out, flag_err ? flag_err : f->err);
		return -1;
	}
	return 0;
}

static void meta_get(struct kv_session *s, struct kv_token *tokens, size_t ntokens, struct kv_out *out)
{
	struct kv_store *st = s->store;
	struct meta_flags f;
	size_t mark = out->len;

	if (meta_begin(st, tokens, ntokens, "CLIENT_ERROR options flags are too long", NULL, &f, out) < 0)
		return;
	const char *key = f.key;
	size_t nkey = f.nkey;
	kv_store_lock(st);
	st->stats.cmd_get++;
	struct kv_item *it = kv_lookup(st, key, nkey, 0);
	int created = 0, won = 0;
	if (!it && f.vivify) {
		/* N: create an empty item and tell this client to fill it (W). */
		if (kv_update(st, KV_ADD, key, nkey, 0, 0, "", 0, 0, NULL) == KV_STORED) {
			st->stats.cmd_set--;
			it = kv_lookup(st, key, nkey, 0);
			created = it != NULL;
			if (it)
				it->key_binary = (uint8_t)f.key_binary;
		}
	}
	if (!it) {
		st->stats.get_misses++;
		kv_store_unlock(st);
		if (f.no_reply)
			return;
		kv_out_put(out, "EN", 2);
		for (size_t i = 2; i < ntokens - 1; i++)
			if (put_opaque_key(out, &tokens[i], key, nkey, f.key_binary) < 0) {
				out->len = mark;
				put_err(out, "CLIENT_ERROR opaque token too long");
				return;
			}
		kv_out_put(out, "\r\n", 2);
		return;
	}
	if (created)
		won = 1;
	else if (!it->win_sent && f.recache_time && it->exptime != 0 && it->exptime < f.recache_time)
		won = 1;  /* R: about to expire, this client recaches it */
	st->stats.get_hits++;
	uint32_t now = kv_store_now(st);
	int fetched_before = it->fetched;
	uint32_t last_access = it->time;
	if (f.new_ttl) {
		st->stats.cmd_touch++;
		st->stats.touch_hits++;
	}
	if (f.value) {
		char b[32];
		int n = snprintf(b, sizeof b, "VA %" PRIu32, it->nbytes);
		kv_out_put(out, b, (size_t)n);
	} else {
		kv_out_put(out, "HD", 2);
	}
	for (size_t i = 2; i < ntokens - 1; i++) {
		switch (tokens[i].value[0]) {
		case 's': put_flag_u64(out, 's', it->nbytes); break;
		case 't': put_ttl(out, st, it); break;
		case 'c': put_flag_u64(out, 'c', it->cas); break;
		case 'f': put_flag_u64(out, 'f', it->flags); break;
		case 'l': put_flag_u64(out, 'l', now - last_access); break;
		case 'h': put_flag_u64(out, 'h', fetched_before ? 1 : 0); break;
		/* T and N take effect where they stand: a t before them shows
		 * the old TTL, as memcached does. */
		case 'T': it->exptime = f.exptime; break;
		case 'N': if (created) it->exptime = f.autoviv_exptime; break;
		default:
			if (put_opaque_key(out, &tokens[i], key, nkey, it->key_binary) < 0) {
				kv_store_unlock(st);
				out->len = mark;
				put_err(out, "CLIENT_ERROR opaque token too long");
				return;
			}
		}
	}
	/* Z: another client already holds the recache token; X: stale. */
	if (it->win_sent)
		kv_out_put(out, " Z", 2);
	if (it->stale) {
		kv_out_put(out, " X", 2);
		if (!it->win_sent)
			won = 1;
	}
	if (won) {
		kv_out_put(out, " W", 2);
		it->win_sent = 1;
	}
	kv_out_put(out, "\r\n", 2);
	if (f.value) {
		kv_out_put(out, kv_item_value(it), it->nbytes);
		kv_out_put(out, "\r\n", 2);
	}
	if (!f.no_update) {
		kv_lookup(st, key, nkey, 1);  /* LRU bump + fetched mark */
		it->time = now;
	}
	kv_store_unlock(st);
}

static long meta_set(struct kv_session *s, struct kv_token *tokens, size_t ntokens,
		     const char *data, size_t avail, struct kv_out *out)
{
	struct kv_store *st = s->store;
	struct meta_flags f;
	const char *key = tokens[1].value;
	size_t nkey = tokens[1].length;
	int32_t vlen;

	if (nkey > KV_KEY_MAX || ntokens == 3) {
		put_err(out, "CLIENT_ERROR bad command line format");
		return 0;
	}
	if (ntokens > META_MAX_TOKENS) {
		put_err(out, "CLIENT_ERROR options flags too long");
		return 0;
	}
	if (!kv_parse_i32(tokens[2].value, &vlen) || vlen < 0 || vlen > INT32_MAX - 2) {
		put_err(out, "CLIENT_ERROR bad command line format");
		return 0;
	}
	size_t need = (size_t)vlen + 2;
	const char *err = NULL;
	enum kv_update_mode mode = KV_SET;
	if (meta_preparse(st, tokens, ntokens, 3, &f) < 0) {
		err = f.err;
	} else {
		key = f.key;
		nkey = f.nkey;
		switch (f.mode) {
		case 0: case 'S': case 's': mode = KV_SET; break;
		case 'E': case 'e': mode = KV_ADD; break;
		case 'A': case 'a': mode = KV_APPEND; break;
		case 'P': case 'p': mode = KV_PREPEND; break;
		case 'R': case 'r': mode = KV_REPLACE; break;
		default: err = "CLIENT_ERROR invalid mode for ms M token"; break;
		}
		if (!err && f.has_cas && (mode == KV_SET || mode == KV_REPLACE))
			mode = KV_CAS;
		if (!err && !kv_store_size_ok(st, nkey, (size_t)vlen)) {
			err = "SERVER_ERROR object too large for cache";
			kv_store_lock(st);
			struct kv_item *old = kv_lookup(st, key, nkey, 0);
			if (old)
				kv_unlink(st, old);
			kv_store_unlock(st);
		}
	}
	if (err) {
		put_err(out, err);
		s->swallow = need;
		return 0;
	}
	if (avail < need)
		return -1;
	if (data[vlen] != '\r' || data[vlen + 1] != '\n') {
		put_err(out, "CLIENT_ERROR bad data chunk");
		return (long)need;
	}
	uint64_t newcas = 0;
	kv_store_lock(st);
	enum kv_result r = kv_update(st, mode, key, nkey, f.client_flags, f.new_ttl ? f.exptime : 0,
				     data, (size_t)vlen, f.has_cas ? f.cas : 0, &newcas);
	if (r == KV_STORED && f.key_binary) {
		struct kv_item *it = kv_lookup(st, key, nkey, 0);
		if (it)
			it->key_binary = 1;
	}
	kv_store_unlock(st);
	const char *code;
	switch (r) {
	case KV_STORED: code = "HD"; break;
	case KV_EXISTS: code = "EX"; break;
	case KV_NOT_FOUND: code = "NF"; break;
	case KV_NOT_STORED: case KV_TOO_LARGE: code = "NS"; break;
	default:
		put_err(out, "SERVER_ERROR out of memory storing object");
		return (long)need;
	}
	if (r == KV_STORED && f.no_reply)
		return (long)need;
	kv_out_put(out, code, 2);
	for (size_t i = 3; i < ntokens - 1; i++) {
		if (tokens[i].value[0] == 'c' && r == KV_STORED)
			put_flag_u64(out, 'c', newcas);
		else
			put_opaque_key(out, &tokens[i], key, nkey, f.key_binary);
	}
	kv_out_put(out, "\r\n", 2);
	return (long)need;
}

static void meta_delete(struct kv_session *s, struct kv_token *tokens, size_t ntokens, struct kv_out *out)
{
	struct kv_store *st = s->store;
	struct meta_flags f;

	/* md and ma report every flag problem with one message. */
	if (meta_begin(st, tokens, ntokens, "CLIENT_ERROR options flags too long",
		       "CLIENT_ERROR invalid or duplicate flag", &f, out) < 0)
		return;
	const char *key = f.key;
	size_t nkey = f.nkey;
	const char *code;
	kv_store_lock(st);
	struct kv_item *it = kv_lookup(st, key, nkey, 0);
	if (!it) {
		code = "NF";
	} else if (f.has_cas && it->cas != f.cas) {
		code = "EX";
	} else if (f.set_stale) {
		/* Invalidate: keep the item but give it a new CAS (and TTL). */
		if (f.new_ttl)
			it->exptime = f.exptime;
		it->cas = st->next_cas++;
		it->stale = 1;
		it->win_sent = 0;  /* the next reader wins the recache token */
		code = "HD";
	} else {
		kv_unlink(st, it);
		st->stats.delete_hits++;
		code = "HD";
	}
	kv_store_unlock(st);
	if (code[0] == 'H' && f.no_reply)
		return;
	kv_out_put(out, code, 2);
	for (size_t i = 2; i < ntokens - 1; i++)
		put_opaque_key(out, &tokens[i], key, nkey, f.key_binary);
	kv_out_put(out, "\r\n", 2);
}

static void meta_arith(struct kv_session *s, struct kv_token *tokens, size_t ntokens, struct kv_out *out)
{
	struct kv_store *st = s->store;
	struct meta_flags f;
	int incr = 1;

	if (meta_begin(st, tokens, ntokens, "CLIENT_ERROR options flags too long",
		       "CLIENT_ERROR invalid or duplicate flag", &f, out) < 0)
		return;
	const char *key = f.key;
	size_t nkey = f.nkey;
	switch (f.mode) {
	case 0: case 'I': case 'i': case '+': incr = 1; break;
	case 'D': case 'd': case '-': incr = 0; break;
	default:
		put_err(out, "CLIENT_ERROR invalid mode for ma M token");
		return;
	}
	uint64_t value = 0, cas = 0;
	const char *code = NULL;
	int have_item = 0, created = 0;
	kv_store_lock(st);
	enum kv_result r = kv_arith(st, key, nkey, incr, f.delta, f.has_cas ? f.cas : 0, &value, &cas);
	switch (r) {
	case KV_OK:
		have_item = 1;
		break;
	case KV_NON_NUMERIC:
		kv_store_unlock(st);
		put_err(out, "CLIENT_ERROR cannot increment or decrement non-numeric value");
		return;
	case KV_NOT_FOUND:
		if (f.vivify) {
			char num[32];
			int n = snprintf(num, sizeof num, "%" PRIu64, f.initial);
			if (kv_update(st, KV_ADD, key, nkey, 0, 0, num, (size_t)n, 0, &cas) == KV_STORED) {
				value = f.initial;
				have_item = created = 1;
				struct kv_item *it = kv_lookup(st, key, nkey, 0);
				if (it)
					it->key_binary = (uint8_t)f.key_binary;
			} else {
				code = "NS";
			}
		} else {
			code = "NF";
		}
		break;
	case KV_EXISTS:
		code = "EX";
		break;
	default:
		kv_store_unlock(st);
		put_err(out, "SERVER_ERROR out of memory");
		return;
	}
	if (have_item) {
		struct kv_item *it = kv_lookup(st, key, nkey, 0);
		if (!it) {
			kv_store_unlock(st);
			put_err(out, "SERVER_ERROR out of memory");
			return;
		}
		if (f.no_reply && !created) {
			if (f.new_ttl)
				it->exptime = f.exptime;
			kv_store_unlock(st);
			return;
		}
		char num[32];
		int vlen = snprintf(num, sizeof num, "%" PRIu64, value);
		if (f.value) {
			char b[32];
			int n = snprintf(b, sizeof b, "VA %d", vlen);
			kv_out_put(out, b, (size_t)n);
		} else {
			kv_out_put(out, "HD", 2);
		}
		for (size_t i = 2; i < ntokens - 1; i++) {
			switch (tokens[i].value[0]) {
			case 'c': put_flag_u64(out, 'c', it->cas); break;
			case 't': put_ttl(out, st, it); break;
			case 'T': it->exptime = f.exptime; break;
			case 'N': if (created) it->exptime = f.autoviv_exptime; break;
			default: put_opaque_key(out, &tokens[i], key, nkey, it->key_binary); break;
			}
		}
		kv_out_put(out, "\r\n", 2);
		if (f.value) {
			kv_out_put(out, num, (size_t)vlen);
			kv_out_put(out, "\r\n", 2);
		}
		kv_store_unlock(st);
		return;
	}
	kv_store_unlock(st);
	kv_out_put(out, code, 2);
	for (size_t i = 2; i < ntokens - 1; i++)
		put_opaque_key(out, &tokens[i], key, nkey, f.key_binary);
	kv_out_put(out, "\r\n", 2);
}

static void meta_debug(struct kv_session *s, struct kv_token *tokens, size_t ntokens, struct kv_out *out)
{
	struct kv_store *st = s->store;
	if (ntokens < 3 || tokens[1].length > KV_KEY_MAX) {
		put_err(out, "CLIENT_ERROR bad command line format");
		return;
	}
	const char *key = tokens[1].value;
	size_t nkey = tokens[1].length;
	char keybuf[KV_KEY_MAX];
	if (ntokens > 3 && strcmp(tokens[2].value, "b") == 0) {  /* me KEY b: base64 key */
		long n = b64_decode(key, nkey, keybuf, sizeof keybuf);
		if (n <= 0) {
			put_err(out, "CLIENT_ERROR bad command line format");
			return;
		}
		key = keybuf;
		nkey = (size_t)n;
	}
	kv_store_lock(st);
	struct kv_item *it = kv_lookup(st, key, nkey, 0);
	if (!it) {
		kv_store_unlock(st);
		kv_out_str(out, "EN\r\n");
		return;
	}
	uint32_t now = kv_store_now(st);
	char line[160];
	kv_out_put(out, "ME ", 3);
	if (it->key_binary)
		b64_put(out, kv_item_key(it), it->nkey);
	else
		kv_out_put(out, kv_item_key(it), it->nkey);
	int n = snprintf(line, sizeof line, " exp=%d la=%" PRIu32 " cas=%" PRIu64 " fetch=%s cls=1 size=%zu\r\n",
			 /* memcached prints the time left negated */
			 it->exptime == 0 ? -1 : (int)(now - it->exptime), now - it->time, it->cas,
			 it->fetched ? "yes" : "no", (size_t)(48 + 8 + it->nkey + 1 + it->nbytes + 2));
	kv_store_unlock(st);
	kv_out_put(out, line, (size_t)n);
}

long kv_meta_command(struct kv_session *s, struct kv_token *tokens, size_t ntokens,
		     const char *data, size_t avail, struct kv_out *out)
{
	char c = tokens[0].value[1];
	if ((c == 'g' || c == 's' || c == 'd' || c == 'a') && ntokens < 3) {
		kv_out_str(out, "ERROR\r\n");
		return 0;
	}
	switch (c) {
	case 'g': meta_get(s, tokens, ntokens, out); return 0;
	case 's': return meta_set(s, tokens, ntokens, data, avail, out);
	case 'd': meta_delete(s, tokens, ntokens, out); return 0;
	case 'a': meta_arith(s, tokens, ntokens, out); return 0;
	case 'n':
		kv_out_str(out, "MN\r\n");
		out->keep = out->len;  /* mn: memcached sends what is queued */
		return 0;
	case 'e': meta_debug(s, tokens, ntokens, out); return 0;
	default: kv_out_str(out, "ERROR\r\n"); return 0;
	}
}
