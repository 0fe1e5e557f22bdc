/*
 * kv_proto — memcached's text protocol (classic and meta commands) as a
 * transport-free engine: bytes in, reply bytes out.  The server feeds each
 * connection's received bytes to kv_session_input() and sends what it appends
 * to the output buffer, so the same engine serves kernel sockets and usnet.
 *
 * Replies, including every error, are the ones memcached 1.6 gives.
 */
#ifndef KV_PROTO_H
#define KV_PROTO_H

#include <stddef.h>
#include <stdint.h>
#include "kv_store.h"

/* A growable output buffer; `off` bytes at the front are already sent.
 * memcached sends its queued replies after every get and mn; an error in a
 * later get takes back only what was queued after that point, so `keep`
 * marks it.  Whoever empties the buffer sets all three to 0. */
struct kv_out {
	char *buf;
	size_t len, cap, off, keep;
	int failed;           /* a reply was lost for want of memory */
};

/* Append n bytes (grows the buffer; on allocation failure the bytes are
 * dropped and `failed` is set so the connection can be closed). */
void kv_out_put(struct kv_out *o, const void *p, size_t n);
void kv_out_str(struct kv_out *o, const char *s);
void kv_out_free(struct kv_out *o);

/* Per-connection protocol state. */
struct kv_session {
	struct kv_store *store;
	uint64_t swallow;     /* bytes of a refused value still to discard */
	int noreply;          /* the current command asked for no reply */
	int closing;          /* close after sending what is queued */
};

void kv_session_init(struct kv_session *s, struct kv_store *store);

/* Process the complete requests at the start of buf[0..len), appending the
 * replies to out.  Returns how many bytes were used; the caller keeps the
 * rest and calls again with more bytes appended.  Sets s->closing when the
 * connection must be closed (quit, or a request memcached would drop). */
size_t kv_session_input(struct kv_session *s, const char *buf, size_t len, struct kv_out *out);

/* The longest request line accepted before the connection is dropped (a get
 * with many keys may be long; anything else over 2048 bytes is dropped, as
 * memcached does). */
#define KV_LINE_MAX (1u << 20)

/* ---- shared between the classic and the meta command files ------------- */

#define KV_MAX_TOKENS 24

struct kv_token {
	char *value;          /* NULL for the terminal token */
	size_t length;
};

/* Split a NUL-terminated command on spaces into at most max tokens; the last
 * token is a terminal one whose value is the unparsed rest (or NULL). */
size_t kv_tokenize(char *command, struct kv_token *tokens, size_t max);

/* memcached's number parsers (digits then a space or the end). */
int kv_parse_u32(const char *s, uint32_t *out);
int kv_parse_i32(const char *s, int32_t *out);
int kv_parse_u64(const char *s, uint64_t *out);

/* Append a reply line (adds "\r\n") unless the command asked for no reply. */
void kv_reply(struct kv_session *s, struct kv_out *out, const char *line);

/* Meta commands (mg, ms, md, ma, mn, me): `data`/`avail` are the bytes after
 * the command line (for ms).  Return the data bytes used, or -1 when ms needs
 * more bytes than are there. */
long kv_meta_command(struct kv_session *s, struct kv_token *tokens, size_t ntokens,
		     const char *data, size_t avail, struct kv_out *out);

#endif /* KV_PROTO_H */
