/* The stack's IPv6 addresses as usnet run takes them (ip6_list.h). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ip6_list.h"

int ip6_unicast_parse(const char *s, uint8_t addr[16])
{
	struct in6_addr a;
	if (inet_pton(AF_INET6, s, &a) != 1 || IN6_IS_ADDR_MULTICAST(&a) || IN6_IS_ADDR_UNSPECIFIED(&a) ||
	    IN6_IS_ADDR_LOOPBACK(&a) || IN6_IS_ADDR_V4MAPPED(&a))
		return -1;
	if (addr)
		memcpy(addr, &a, 16);
	return 0;
}

int ip6_list_parse(const char *list, uint8_t addr[][16], uint8_t *prefix, char *why, size_t whylen)
{
	int n = 0;
	for (const char *s = list; *s;) {
		size_t len = strcspn(s, ",");
		char item[64], *slash;
		snprintf(item, sizeof item, "%.*s", (int)len, s);
		if (n == IP6_LIST_MAX) {
			snprintf(why, whylen, "%s: more than %d addresses", item, IP6_LIST_MAX);
			return -1;
		}
		if (len >= sizeof item || !(slash = strchr(item, '/'))) {
			snprintf(why, whylen, "%s: not ADDR/PREFIX (like fd00::2/64)", item);
			return -1;
		}
		*slash = 0;
		char *end;
		long pl = strtol(slash + 1, &end, 10);
		uint8_t a[16];
		if (ip6_unicast_parse(item, a)) {
			snprintf(why, whylen, "%s/%s: %s is not a unicast IPv6 address", item, slash + 1, item);
			return -1;
		}
		if (*end || end == slash + 1 || pl < 1 || pl > 128) {
			snprintf(why, whylen, "%s/%s: the prefix length must be 1 to 128", item, slash + 1);
			return -1;
		}
		*slash = '/';
		for (int i = 0; addr && i < n; i++)
			if (!memcmp(addr[i], a, 16)) {
				snprintf(why, whylen, "%s: given twice", item);
				return -1;
			}
		if (addr)
			memcpy(addr[n], a, 16);
		if (prefix)
			prefix[n] = (uint8_t)pl;
		n++;
		s += len;
		if (*s == ',' && !*++s) {
			snprintf(why, whylen, "'%s' ends with a comma", list);
			return -1;
		}
	}
	if (!n) {
		snprintf(why, whylen, "no address");
		return -1;
	}
	return n;
}
