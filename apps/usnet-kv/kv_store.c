/*
 * kv_store — hash table + LRU under a memory budget; see kv_store.h.
 */
#include "kv_store.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* memcached's item header is 48 bytes (plus 8 for the CAS); the -I limit is
 * checked against the same total so the same values are "too large". */
#define MC_ITEM_HEADER 48
/* Seconds between two LRU moves of the same item (memcached's
 * ITEM_UPDATE_INTERVAL). */
#define KV_BUMP_INTERVAL 60

static uint32_t hash_key(const char *key, size_t n)
{
	/* FNV-1a: short keys, good enough spread, no state. */
	uint32_t h = 2166136261u;
	for (size_t i = 0; i < n; i++) {
		h ^= (uint8_t)key[i];
		h *= 16777619u;
	}
	return h;
}

static size_t item_cost(size_t nkey, size_t nbytes)
{
	return sizeof(struct kv_item) + nkey + nbytes;
}

int kv_store_size_ok(const struct kv_store *s, size_t nkey, size_t nbytes)
{
	/* header + key and its NUL + value and its "\r\n" + CAS; client flags
	 * are stored in the header by memcached 1.6 when nonzero (4 bytes) —
	 * ignored here, as the flags are not known for every caller. */
	size_t total = MC_ITEM_HEADER + nkey + 1 + nbytes + 2 + 8;
	return total <= s->item_size_max;
}

static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int kv_store_init(struct kv_store *s, size_t mem_limit, size_t item_size_max)
{
	memset(s, 0, sizeof *s);
	if (pthread_mutex_init(&s->lock, NULL) != 0)
		return -1;
	s->nbuckets = 1u << 16;
	s->buckets = calloc(s->nbuckets, sizeof *s->buckets);
	if (!s->buckets)
		return -1;
	s->mem_limit = mem_limit;
	s->item_size_max = item_size_max;
	s->next_cas = 1;
	/* As memcached: relative time starts a little above 0 so that small
	 * relative times never collide with "0 = never expires". */
	s->process_started = (int64_t)time(NULL) - 2;
	s->start_mono_ns = mono_ns() - 2000000000ull;
	return 0;
}

void kv_store_destroy(struct kv_store *s)
{
	struct kv_item *it = s->lru_head;
	while (it) {
		struct kv_item *n = it->next;
		free(it);
		it = n;
	}
	free(s->buckets);
	pthread_mutex_destroy(&s->lock);
}

void kv_store_lock(struct kv_store *s) { pthread_mutex_lock(&s->lock); }
void kv_store_unlock(struct kv_store *s) { pthread_mutex_unlock(&s->lock); }

uint32_t kv_store_now(struct kv_store *s)
{
	return (uint32_t)((mono_ns() - s->start_mono_ns) / 1000000000ull);
}

int64_t kv_store_process_started(struct kv_store *s)
{
	return s->process_started;
}

uint32_t kv_store_exptime(struct kv_store *s, int64_t exptime)
{
	if (exptime < 0)  /* memcached: "expired immediately" */
		exptime = KV_REALTIME_MAXDELTA + 1;
	if (exptime == 0)
		return 0;
	if (exptime > KV_REALTIME_MAXDELTA) {
		if (exptime <= s->process_started)
			return 1;
		int64_t rel = exptime - s->process_started;
		return rel > UINT32_MAX ? UINT32_MAX : (uint32_t)rel;
	}
	return (uint32_t)(exptime + kv_store_now(s));
}

/* ---- LRU and hash chain ------------------------------------------------- */

static void lru_unlink(struct kv_store *s, struct kv_item *it)
{
	if (it->prev) it->prev->next = it->next; else s->lru_head = it->next;
	if (it->next) it->next->prev = it->prev; else s->lru_tail = it->prev;
	it->prev = it->next = NULL;
}

static void lru_push_head(struct kv_store *s, struct kv_item *it)
{
	it->prev = NULL;
	it->next = s->lru_head;
	if (s->lru_head) s->lru_head->prev = it; else s->lru_tail = it;
	s->lru_head = it;
}

static void grow_table(struct kv_store *s)
{
	uint32_t n = s->nbuckets * 2;
	struct kv_item **b = calloc(n, sizeof *b);
	if (!b)
		return; /* keep the old table: longer chains, still correct */
	for (uint32_t i = 0; i < s->nbuckets; i++) {
		struct kv_item *it = s->buckets[i];
		while (it) {
			struct kv_item *nx = it->hnext;
			uint32_t j = it->hash & (n - 1);
			it->hnext = b[j];
			b[j] = it;
			it = nx;
		}
	}
	free(s->buckets);
	s->buckets = b;
	s->nbuckets = n;
}

void kv_unlink(struct kv_store *s, struct kv_item *it)
{
	struct kv_item **pp = &s->buckets[it->hash & (s->nbuckets - 1)];
	while (*pp && *pp != it)
		pp = &(*pp)->hnext;
	if (*pp)
		*pp = it->hnext;
	lru_unlink(s, it);
	s->mem_used -= item_cost(it->nkey, it->nbytes);
	s->stats.curr_items--;
	s->stats.bytes -= it->nkey + it->nbytes;
	free(it);
}

static void link_item(struct kv_store *s, struct kv_item *it)
{
	uint32_t j = it->hash & (s->nbuckets - 1);
	it->hnext = s->buckets[j];
	s->buckets[j] = it;
	lru_push_head(s, it);
	s->mem_used += item_cost(it->nkey, it->nbytes);
	s->stats.curr_items++;
	s->stats.total_items++;
	s->stats.bytes += it->nkey + it->nbytes;
	if (s->stats.curr_items > (uint64_t)s->nbuckets + s->nbuckets / 2)
		grow_table(s);
}

static int is_dead(struct kv_store *s, struct kv_item *it, uint32_t now)
{
	if (it->exptime != 0 && it->exptime <= now)
		return 1;
	if (it->cas < s->flush_cas)
		return 2;
	if (s->flush_at != 0 && s->flush_at <= now && it->time <= s->flush_at)
		return 2;
	return 0;
}

struct kv_item *kv_lookup(struct kv_store *s, const char *key, size_t nkey, int bump)
{
	uint32_t h = hash_key(key, nkey);
	struct kv_item *it = s->buckets[h & (s->nbuckets - 1)];
	while (it && !(it->hash == h && it->nkey == nkey && memcmp(it->data, key, nkey) == 0))
		it = it->hnext;
	if (!it)
		return NULL;
	uint32_t now = kv_store_now(s);
	int dead = is_dead(s, it, now);
	if (dead) {
		if (dead == 1)
			s->stats.reclaimed++;
		kv_unlink(s, it);
		return NULL;
	}
	if (bump) {
		/* As memcached: move a hot item to the head at most once a
		 * minute, so that reads of popular keys do not all write the
		 * shared list. */
		if (s->lru_head != it && it->time + KV_BUMP_INTERVAL <= now) {
			lru_unlink(s, it);
			lru_push_head(s, it);
			it->time = now;
		}
		it->fetched = 1;
		it->active = 1;
	}
	return it;
}

/* Make room for `need` more bytes by evicting from the cold end (expired
 * items first, as they are found).  0 when it fits. */
static int make_room(struct kv_store *s, size_t need)
{
	uint32_t now = kv_store_now(s);
	int second_chances = 64;
	while (s->mem_used + need > s->mem_limit) {
		struct kv_item *victim = s->lru_tail;
		if (!victim)
			return -1;
		if (victim->active && second_chances-- > 0 && victim != s->lru_head && !is_dead(s, victim, now)) {
			/* Read since it was last moved: keep it, once more. */
			victim->active = 0;
			lru_unlink(s, victim);
			lru_push_head(s, victim);
			continue;
		}
		if (!is_dead(s, victim, now)) {
			s->stats.evictions++;
		} else {
			s->stats.reclaimed++;
		}
		kv_unlink(s, victim);
	}
	return 0;
}

enum kv_result kv_update(struct kv_store *s, enum kv_update_mode mode, const char *key, size_t nkey,
			 uint32_t flags, uint32_t exptime, const char *val, size_t nval,
			 uint64_t cas_in, uint64_t *cas_out)
{
	s->stats.cmd_set++;
	if (!kv_store_size_ok(s, nkey, nval)) {
		/* memcached drops the old value on a failed set so a stale one
		 * cannot outlive it. */
		if (mode == KV_SET) {
			struct kv_item *old = kv_lookup(s, key, nkey, 0);
			if (old)
				kv_unlink(s, old);
		}
		return KV_TOO_LARGE;
	}
	struct kv_item *old = kv_lookup(s, key, nkey, 0);
	switch (mode) {
	case KV_ADD:
		if (old) {
			/* memcached bumps the existing item on a failed add. */
			lru_unlink(s, old);
			lru_push_head(s, old);
			return KV_NOT_STORED;
		}
		break;
	case KV_REPLACE:
	case KV_APPEND:
	case KV_PREPEND:
		if (!old)
			return KV_NOT_STORED;
		if (cas_in && old->cas != cas_in)
			return KV_EXISTS;
		break;
	case KV_CAS:
		if (!old) {
			s->stats.cas_misses++;
			return KV_NOT_FOUND;
		}
		if (old->cas != cas_in) {
			s->stats.cas_badval++;
			return KV_EXISTS;
		}
		s->stats.cas_hits++;
		break;
	case KV_SET:
		if (cas_in) { /* meta set with C<cas> */
			if (!old)
				return KV_NOT_FOUND;
			if (old->cas != cas_in)
				return KV_EXISTS;
		}
		break;
	}
	size_t total = nval;
	if (mode == KV_APPEND || mode == KV_PREPEND) {
		total = (size_t)old->nbytes + nval;
		if (!kv_store_size_ok(s, nkey, total))
			return KV_TOO_LARGE;
	}
	/* The old item's memory is reusable once it is replaced. */
	size_t old_cost = old ? item_cost(old->nkey, old->nbytes) : 0;
	size_t cost = item_cost(nkey, total);
	if (cost > s->mem_limit)
		return KV_NO_MEMORY;
	struct kv_item *it = malloc(cost);
	if (!it)
		return KV_NO_MEMORY;
	memset(it, 0, sizeof *it);
	it->nkey = (uint8_t)nkey;
	it->nbytes = (uint32_t)total;
	it->hash = hash_key(key, nkey);
	memcpy(it->data, key, nkey);
	if (mode == KV_APPEND) {
		memcpy(kv_item_value(it), kv_item_value(old), old->nbytes);
		memcpy(kv_item_value(it) + old->nbytes, val, nval);
	} else if (mode == KV_PREPEND) {
		memcpy(kv_item_value(it), val, nval);
		memcpy(kv_item_value(it) + nval, kv_item_value(old), old->nbytes);
	} else {
		memcpy(kv_item_value(it), val, nval);
	}
	if (mode == KV_APPEND || mode == KV_PREPEND) {
		it->flags = old->flags;
		it->exptime = old->exptime;
	} else {
		it->flags = flags;
		it->exptime = exptime;
	}
	it->time = kv_store_now(s);
	it->cas = s->next_cas++;
	if (old)
		kv_unlink(s, old);
	(void)old_cost;
	if (make_room(s, cost) < 0) {
		free(it);
		return KV_NO_MEMORY;
	}
	link_item(s, it);
	if (cas_out)
		*cas_out = it->cas;
	return KV_STORED;
}

enum kv_result kv_delete(struct kv_store *s, const char *key, size_t nkey, uint64_t cas_in)
{
	struct kv_item *it = kv_lookup(s, key, nkey, 0);
	if (!it) {
		s->stats.delete_misses++;
		return KV_NOT_FOUND;
	}
	if (cas_in && it->cas != cas_in)
		return KV_EXISTS;
	s->stats.delete_hits++;
	kv_unlink(s, it);
	return KV_DELETED;
}

/* memcached's safe_strtoull on the stored value: digits then a space or the
 * end ("\r\n" in memcached's own buffer); no sign. */
static int value_to_u64(const char *p, size_t n, uint64_t *out)
{
	char buf[256];
	if (n == 0 || n >= sizeof buf)
		return 0;  /* longer than any number strtoull accepts without ERANGE */
	memcpy(buf, p, n);
	buf[n] = '\0';
	char *end;
	errno = 0;
	unsigned long long v = strtoull(buf, &end, 10);
	if (end == buf || errno == ERANGE)
		return 0;
	if (!(*end == '\0' || *end == ' ' || *end == '\t' || *end == '\r' || *end == '\n' ||
	      *end == '\v' || *end == '\f'))
		return 0;
	if ((long long)v < 0 && memchr(buf, '-', (size_t)(end - buf)))
		return 0;
	*out = v;
	return 1;
}

enum kv_result kv_arith(struct kv_store *s, const char *key, size_t nkey, int incr,
			uint64_t delta, uint64_t cas_in, uint64_t *value, uint64_t *cas_out)
{
	/* Not a read: memcached neither bumps nor marks it fetched. */
	struct kv_item *it = kv_lookup(s, key, nkey, 0);
	if (!it) {
		if (incr) s->stats.incr_misses++; else s->stats.decr_misses++;
		return KV_NOT_FOUND;
	}
	if (cas_in && it->cas != cas_in)
		return KV_EXISTS;
	uint64_t v;
	/* As memcached: an empty value, or one longer than a number can be,
	 * is not numeric. */
	if (it->nbytes == 0 || !value_to_u64(kv_item_value(it), it->nbytes, &v))
		return KV_NON_NUMERIC;
	if (incr) {
		v += delta;  /* wraps at 2^64 */
		s->stats.incr_hits++;
	} else {
		v = delta > v ? 0 : v - delta;
		s->stats.decr_hits++;
	}
	char num[24];
	int len = snprintf(num, sizeof num, "%" PRIu64, v);
	if ((uint32_t)len <= it->nbytes) {
		/* In place, padded with spaces: what memcached does. */
		memcpy(kv_item_value(it), num, (size_t)len);
		memset(kv_item_value(it) + len, ' ', it->nbytes - (uint32_t)len);
		it->cas = s->next_cas++;
		it->time = kv_store_now(s);
	} else {
		uint32_t flags = it->flags, exptime = it->exptime;
		uint64_t newcas;
		enum kv_result r = kv_update(s, KV_SET, key, nkey, flags, exptime, num, (size_t)len, 0, &newcas);
		s->stats.cmd_set--; /* not a client set */
		if (r != KV_STORED)
			return KV_NO_MEMORY;
		it = kv_lookup(s, key, nkey, 0);
		if (!it)
			return KV_NO_MEMORY;
	}
	*value = v;
	if (cas_out)
		*cas_out = it->cas;
	return KV_OK;
}

enum kv_result kv_touch(struct kv_store *s, const char *key, size_t nkey, uint32_t exptime)
{
	struct kv_item *it = kv_lookup(s, key, nkey, 1);
	s->stats.cmd_touch++;
	if (!it) {
		s->stats.touch_misses++;
		return KV_NOT_FOUND;
	}
	s->stats.touch_hits++;
	it->exptime = exptime;
	return KV_TOUCHED;
}

void kv_flush(struct kv_store *s, int64_t delay)
{
	s->stats.cmd_flush++;
	if (delay <= 0) {
		/* Everything stored so far is gone. */
		s->flush_cas = s->next_cas;
		while (s->lru_head)
			kv_unlink(s, s->lru_head);
		s->flush_at = 0;
		return;
	}
	/* As memcached: what was stored up to the second before the deadline
	 * is gone once that second has come. */
	s->flush_at = kv_store_exptime(s, delay) - 1;
}
