/*
 * The sender's SACK scoreboard (RFC 2018, RFC 6675): up to SB_MAX disjoint
 * blocks above snd_una, sorted.  When more blocks are reported than fit,
 * the lowest ones are kept: they are the ones that drive retransmission.
 */
#include "internal.h"

static void sb_recount(struct sock *s)
{
	uint32_t n = 0;
	for (unsigned i = 0; i < s->sb_n; i++)
		n += s->sb[i].end - s->sb[i].start;
	s->sacked_bytes = n;
}

static void sb_insert(struct sock *s, uint32_t a, uint32_t b)
{
	struct sack_block tmp[SB_MAX + 1];
	unsigned n = 0, i = 0;
	/* Blocks entirely before the new one. */
	while (i < s->sb_n && seq_lt(s->sb[i].end, a))
		tmp[n++] = s->sb[i++];
	/* Merge every block touching [a, b). */
	while (i < s->sb_n && seq_le(s->sb[i].start, b)) {
		a = seq_min(a, s->sb[i].start);
		b = seq_max(b, s->sb[i].end);
		i++;
	}
	tmp[n].start = a;
	tmp[n].end = b;
	n++;
	while (i < s->sb_n && n < SB_MAX + 1)
		tmp[n++] = s->sb[i++];
	if (n > SB_MAX)
		n = SB_MAX;
	memcpy(s->sb, tmp, n * sizeof(tmp[0]));
	s->sb_n = (uint8_t)n;
}

void tcp_sack_update(struct sock *s, const uint32_t (*blocks)[2], unsigned n)
{
	for (unsigned k = 0; k < n; k++) {
		uint32_t a = blocks[k][0], b = blocks[k][1];
		/* Ignore D-SACKs and anything outside what was sent. */
		if (!seq_lt(a, b) || seq_le(b, s->snd_una) || seq_gt(b, s->snd_max) ||
		    b - a > 0x40000000u)
			continue;
		if (seq_lt(a, s->snd_una))
			a = s->snd_una;
		sb_insert(s, a, b);
		if (seq_gt(b, s->high_sacked) || s->sb_n == 1)
			s->high_sacked = seq_max(b, s->high_sacked);
	}
	sb_recount(s);
}

void tcp_sack_clean(struct sock *s)
{
	unsigned j = 0;
	for (unsigned i = 0; i < s->sb_n; i++) {
		if (seq_le(s->sb[i].end, s->snd_una))
			continue;
		s->sb[j] = s->sb[i];
		if (seq_lt(s->sb[j].start, s->snd_una))
			s->sb[j].start = s->snd_una;
		j++;
	}
	s->sb_n = (uint8_t)j;
	if (seq_lt(s->high_sacked, s->snd_una))
		s->high_sacked = s->snd_una;
	sb_recount(s);
}

int tcp_sack_covered(const struct sock *s, uint32_t seq)
{
	for (unsigned i = 0; i < s->sb_n; i++)
		if (seq_ge(seq, s->sb[i].start) && seq_lt(seq, s->sb[i].end))
			return 1;
	return 0;
}

uint32_t tcp_sack_next_hole(const struct sock *s, uint32_t from, uint32_t to, uint32_t *len)
{
	uint32_t x = from;
	for (unsigned i = 0; i < s->sb_n; i++) {
		if (seq_le(s->sb[i].end, x))
			continue;
		if (seq_le(s->sb[i].start, x)) {
			x = s->sb[i].end;
			continue;
		}
		/* x is before block i: the hole runs to its start (or `to`). */
		uint32_t e = seq_min(s->sb[i].start, to);
		*len = seq_gt(e, x) ? e - x : 0;
		return x;
	}
	*len = seq_gt(to, x) ? to - x : 0;
	return x;
}

/* RFC 6675 pipe: bytes thought to be in the network.  Holes below the
 * highest SACKed byte count as lost unless retransmitted (at or below
 * high_rxt); SACKed bytes have left the network. */
uint32_t tcp_pipe(const struct sock *s)
{
	uint32_t outstanding = s->snd_max - s->snd_una;
	uint32_t lost = 0;
	uint32_t x = seq_max(s->high_rxt, s->snd_una);
	while (seq_lt(x, s->high_sacked)) {
		uint32_t hl;
		uint32_t h = tcp_sack_next_hole(s, x, s->high_sacked, &hl);
		if (!hl)
			break;
		lost += hl;
		x = h + hl;
	}
	uint32_t gone = s->sacked_bytes + lost;
	return outstanding > gone ? outstanding - gone : 0;
}
