/*
 * kv_store — the item store behind usnet-kv: a chained hash table plus one
 * LRU list, under a fixed memory budget (items are evicted from the cold end
 * when a new one does not fit), with memcached's expiry and CAS semantics.
 *
 * Thread safety: every call takes the store's lock, so the threads of a
 * multi-threaded server share one store (as memcached's threads do).
 *
 * Times: the store keeps memcached's "relative time" — seconds since the
 * store started, plus a small offset so that 0 can mean "never".
 */
#ifndef KV_STORE_H
#define KV_STORE_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#define KV_KEY_MAX 250
/* Longest relative expiry; larger values are absolute unix times. */
#define KV_REALTIME_MAXDELTA (60 * 60 * 24 * 30)

/* One stored item: key then value bytes follow the header. */
struct kv_item {
	struct kv_item *hnext;          /* hash chain */
	struct kv_item *prev, *next;    /* LRU: head is most recently used */
	uint64_t cas;
	uint32_t exptime;               /* relative time it expires; 0: never */
	uint32_t time;                  /* relative time of the last store or LRU move */
	uint32_t flags;                 /* client flags */
	uint32_t nbytes;                /* value length */
	uint32_t hash;
	uint8_t  nkey;
	uint8_t  fetched;               /* read since stored (for mg h / me) */
	uint8_t  win_sent;              /* meta: a client was told to recache it (W) */
	uint8_t  stale;                 /* meta: invalidated by md I, still served (X) */
	uint8_t  active;                /* read since it last reached the LRU tail */
	uint8_t  key_binary;            /* meta: stored with a base64 key (b flag) */
	char     data[];                /* key (nkey) then value (nbytes) */
};

static inline char *kv_item_key(struct kv_item *it) { return it->data; }
static inline char *kv_item_value(struct kv_item *it) { return it->data + it->nkey; }

struct kv_stats {
	uint64_t cmd_get, cmd_set, cmd_touch, cmd_flush;
	uint64_t get_hits, get_misses, get_expired, get_flushed;
	uint64_t delete_hits, delete_misses, incr_hits, incr_misses, decr_hits, decr_misses;
	uint64_t cas_hits, cas_misses, cas_badval, touch_hits, touch_misses;
	uint64_t total_items, evictions, expired_unfetched, reclaimed;
	uint64_t curr_items, bytes;
	uint64_t curr_connections, total_connections;
};

struct kv_store {
	pthread_mutex_t lock;
	struct kv_item **buckets;
	uint32_t nbuckets;              /* power of two */
	struct kv_item *lru_head, *lru_tail;
	size_t mem_limit, mem_used;
	size_t item_size_max;           /* -I: largest item (header + key + value) */
	uint64_t next_cas;
	int64_t  process_started;       /* unix time that relative time 0 stands for */
	uint64_t start_mono_ns;
	uint32_t flush_at;              /* delayed flush_all: items stored at or before this
	                                 * relative time are gone once it has come; 0: none */
	uint64_t flush_cas;             /* items with a smaller cas are flushed */
	struct kv_stats stats;
};

/* Outcomes of the update operations (the memcached reply each maps to). */
enum kv_result {
	KV_STORED, KV_NOT_STORED, KV_EXISTS, KV_NOT_FOUND, KV_TOO_LARGE, KV_NO_MEMORY,
	KV_DELETED, KV_TOUCHED, KV_NON_NUMERIC, KV_OK,
};

enum kv_update_mode { KV_SET, KV_ADD, KV_REPLACE, KV_APPEND, KV_PREPEND, KV_CAS };

int kv_store_init(struct kv_store *s, size_t mem_limit, size_t item_size_max);
void kv_store_destroy(struct kv_store *s);
void kv_store_lock(struct kv_store *s);
void kv_store_unlock(struct kv_store *s);

/* The relative time now (locked or not). */
uint32_t kv_store_now(struct kv_store *s);
/* memcached's realtime(): a client exptime (negative: already expired,
 * <= 30 days: relative, else absolute unix time) as relative time. */
uint32_t kv_store_exptime(struct kv_store *s, int64_t client_exptime);
/* Unix time of relative time 0. */
int64_t kv_store_process_started(struct kv_store *s);

/* Whether an item of this key/value size can ever be stored (-I). */
int kv_store_size_ok(const struct kv_store *s, size_t nkey, size_t nbytes);

/* The following need the lock held. */

/* Find a live item (expired or flushed ones are removed); NULL when absent.
 * `bump` moves it to the LRU head and marks it fetched. */
struct kv_item *kv_lookup(struct kv_store *s, const char *key, size_t nkey, int bump);

/* Store a value by mode; `cas_in` is compared for KV_CAS (and, when not 0,
 * for the meta commands).  Returns KV_STORED/NOT_STORED/EXISTS/NOT_FOUND/
 * TOO_LARGE/NO_MEMORY; *cas_out (may be NULL) gets the new item's CAS. */
enum kv_result kv_update(struct kv_store *s, enum kv_update_mode mode, const char *key, size_t nkey,
			 uint32_t flags, uint32_t exptime, const char *val, size_t nval,
			 uint64_t cas_in, uint64_t *cas_out);

/* Remove key (cas_in 0: any).  KV_DELETED, KV_NOT_FOUND or KV_EXISTS. */
enum kv_result kv_delete(struct kv_store *s, const char *key, size_t nkey, uint64_t cas_in);

/* incr/decr with memcached's rules (64-bit wrap for incr, floor 0 for decr,
 * in-place rewrite padded with spaces when the number gets shorter).
 * KV_OK (result in *value, new cas in *cas_out), KV_NOT_FOUND,
 * KV_NON_NUMERIC, KV_EXISTS (cas_in mismatch) or KV_NO_MEMORY. */
enum kv_result kv_arith(struct kv_store *s, const char *key, size_t nkey, int incr,
			uint64_t delta, uint64_t cas_in, uint64_t *value, uint64_t *cas_out);

/* Set a new expiry on a live item: KV_TOUCHED or KV_NOT_FOUND. */
enum kv_result kv_touch(struct kv_store *s, const char *key, size_t nkey, uint32_t exptime);

/* flush_all: now (delay <= 0) or at relative time now + delay. */
void kv_flush(struct kv_store *s, int64_t delay);

/* Unlink an item (meta invalidation replaces items through kv_update). */
void kv_unlink(struct kv_store *s, struct kv_item *it);

#endif /* KV_STORE_H */
