/*
 * Big-endian loads and stores at any alignment: the building blocks of the
 * wire_*.h views.  Frames are parsed in place; nothing is cast to a struct,
 * so an unaligned or truncated header can never be read past its end as
 * long as callers check lengths first (each wire view says what it needs).
 */
#ifndef USNET_WIRE_H
#define USNET_WIRE_H
#include <stdint.h>

static inline uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static inline uint32_t rd32(const uint8_t *p)
{ return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }
static inline void wr16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static inline void wr32(uint8_t *p, uint32_t v)
{ p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v; }

#endif
