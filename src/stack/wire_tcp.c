/* TCP option parsing with bounds checks (see wire_tcp.h). */
#include "internal.h"
#include "wire_tcp.h"

int tcp_parse_options(const uint8_t *p, uint32_t len, struct tcp_opts *o)
{
	memset(o, 0, sizeof(*o));
	uint32_t i = 0;
	while (i < len) {
		uint8_t kind = p[i];
		if (kind == TCPOPT_EOL)
			break;
		if (kind == TCPOPT_NOP) {
			i++;
			continue;
		}
		if (i + 1 >= len)
			return -1;
		uint8_t olen = p[i + 1];
		if (olen < 2 || i + olen > len)
			return -1;
		const uint8_t *v = p + i + 2;
		switch (kind) {
		case TCPOPT_MSS:
			if (olen != 4) return -1;
			o->has_mss = 1;
			o->mss = rd16(v);
			break;
		case TCPOPT_WS:
			if (olen != 3) return -1;
			o->has_ws = 1;
			o->ws = v[0] > 14 ? 14 : v[0];   /* RFC 7323 2.3: clamp to 14 */
			break;
		case TCPOPT_SACK_PERM:
			if (olen != 2) return -1;
			o->sack_perm = 1;
			break;
		case TCPOPT_TS:
			if (olen != 10) return -1;
			o->has_ts = 1;
			o->tsval = rd32(v);
			o->tsecr = rd32(v + 4);
			break;
		case TCPOPT_SACK:
			if (olen < 10 || (olen - 2) % 8 != 0) return -1;
			for (uint32_t k = 0; k < (uint32_t)(olen - 2) / 8 && o->nsack < TCP_MAX_SACK_RX; k++) {
				o->sack[o->nsack][0] = rd32(v + 8 * k);
				o->sack[o->nsack][1] = rd32(v + 8 * k + 4);
				o->nsack++;
			}
			break;
		default:
			break;  /* unknown options are skipped by their length */
		}
		i += olen;
	}
	return 0;
}
