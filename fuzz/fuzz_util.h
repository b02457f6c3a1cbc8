/*
 * Shared helpers of the libFuzzer harnesses in fuzz/: an always-on check that aborts (so
 * libFuzzer records the input as a crash), and the structural checks of a decoded node array.
 * The harnesses include csrc/confd_ha_core.h the same way build_ffi.py does.
 */
#ifndef FUZZ_UTIL_H
#define FUZZ_UTIL_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "confd_ha_core.h"

/* Not assert(): the harnesses must check even when built with -DNDEBUG. */
#define FUZZ_CHECK(cond)                                                                  \
    do {                                                                                  \
        if (!(cond)) {                                                                    \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);      \
            abort();                                                                      \
        }                                                                                 \
    } while (0)

static inline int fuzz_is_status(int st)
{
    return st <= CHD_OK && st >= CHD_E_ARG;
}

/*
 * Checks that nodes[0..count) is exactly one well-formed pre-order term whose byte payloads
 * lie inside a pool of pool_len bytes; returns the term's depth (containers, empty ones
 * included, as the decoder counts them).
 */
static inline int fuzz_check_nodes(const chd_term *nodes, size_t count, size_t pool_len)
{
    uint32_t left[CHD_MAX_DEPTH + 2];
    int depth = 0, max_depth = 0;
    size_t i;

    FUZZ_CHECK(count > 0);
    for (i = 0; i < count; i++) {
        const chd_term *t = &nodes[i];
        switch (t->kind) {
        case CHD_K_INT:
            FUZZ_CHECK(t->neg == 0 || (t->neg == 1 && t->mag != 0));
            break;
        case CHD_K_FLOAT:
            FUZZ_CHECK(isfinite(t->f));
            break;
        case CHD_K_FLOAT_TEXT:
            FUZZ_CHECK(t->n == 31);
            /* fall through */
        case CHD_K_ATOM:
        case CHD_K_ATOM_UTF8:
        case CHD_K_BINARY:
        case CHD_K_STRING:
            FUZZ_CHECK(t->off <= pool_len && t->n <= pool_len - t->off);
            if (t->kind == CHD_K_ATOM || t->kind == CHD_K_ATOM_UTF8)
                FUZZ_CHECK(t->n <= 0xffff);
            if (t->kind == CHD_K_STRING)
                FUZZ_CHECK(t->n <= 0xffff);
            break;
        case CHD_K_TUPLE:
        case CHD_K_LIST:
            break;
        default:
            FUZZ_CHECK(!"unknown node kind");
        }
        /* Depth as the decoder counts it: every container, even an empty one or a STRING. */
        if (t->kind == CHD_K_TUPLE || t->kind == CHD_K_LIST || t->kind == CHD_K_STRING) {
            FUZZ_CHECK(depth < CHD_MAX_DEPTH);
            if (depth + 1 > max_depth)
                max_depth = depth + 1;
        }
        if ((t->kind == CHD_K_TUPLE || t->kind == CHD_K_LIST) && t->n > 0) {
            /* Every element needs at least one more node. */
            FUZZ_CHECK(t->n <= count - i - 1);
            depth++;
            left[depth] = t->n;
            continue;
        }
        while (depth > 0 && --left[depth] == 0)
            depth--;
        if (depth == 0) {
            FUZZ_CHECK(i == count - 1);  /* exactly one term */
            return max_depth;
        }
    }
    FUZZ_CHECK(!"node array ends inside a container");
    return -1;
}

/* Reads a big-endian 32-bit value (for inputs that carry sizes). */
static inline uint32_t fuzz_be32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

#endif
