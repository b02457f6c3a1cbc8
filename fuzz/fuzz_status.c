/*
 * libFuzzer harness: chd_status_decode (the getstatus reply, §6.6) on arbitrary payloads.
 *
 * What it accepts without the GENERIC flag must be a valid term (chd_decode agrees) with as
 * many list elements as it reports nodes; every valid term is a status or CHD_E_SHAPE.
 *
 * Runs it with the text buffer the Python caller gives it (3 * len + 64 bytes, where
 * CHD_E_SPACE must never happen), then with a buffer one byte smaller than the text it
 * produced and with a tiny buffer sized from the input (CHD_E_SPACE expected, never a write
 * past the end: every buffer is a heap block of exactly its capacity).
 */
#include "fuzz_util.h"

static int call(const uint8_t *data, size_t size, size_t cap, int64_t *state,
                unsigned char **text, size_t *text_len, size_t *num_nodes, int *flags)
{
    *text = malloc(cap ? cap : 1);
    FUZZ_CHECK(*text != NULL);
    return chd_status_decode(data, size, state, *text, cap, text_len, num_nodes, flags);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int64_t state = 7, state2 = 7;
    unsigned char *text, *text2;
    size_t text_len = 99, num_nodes = 99, text_len2 = 99, num_nodes2 = 99, count = 0;
    size_t cap = 3 * size + 64;
    int flags = 99, flags2 = 99;
    int st, st2, generic;

    st = call(data, size, cap, &state, &text, &text_len, &num_nodes, &flags);
    FUZZ_CHECK(fuzz_is_status(st));
    FUZZ_CHECK(st != CHD_E_SPACE);
    generic = chd_decode(data, size, NULL, 0, &count);
    /* A valid term is either a status reply or the wrong shape. */
    if (generic == CHD_OK)
        FUZZ_CHECK(st == CHD_OK || st == CHD_E_SHAPE);
    /* The fast path reads only the shape it expects, so it may name another error than the
     * generic walk; but what it accepts completely must be a valid term.  (With the GENERIC
     * flag it stopped early: the caller's generic decode then validates the whole payload.) */
    if (st == CHD_OK && flags == 0)
        FUZZ_CHECK(generic == CHD_OK);
    if (st == CHD_OK && flags == 0) {
        /* "nodeid\0address\0" per node: exactly two NULs per node, the last byte one. */
        size_t nuls = 0;
        FUZZ_CHECK(text_len <= cap);
        for (size_t i = 0; i < text_len; i++)
            nuls += text[i] == 0;
        FUZZ_CHECK(nuls == 2 * num_nodes);
        FUZZ_CHECK(num_nodes == 0 ? text_len == 0 : text[text_len - 1] == 0);
        /* The generic decoder sees {State, List} with as many elements as nodes reported. */
        {
            chd_term *nodes = malloc((size + 1) * sizeof(*nodes));
            FUZZ_CHECK(nodes != NULL);
            FUZZ_CHECK(chd_decode(data, size, nodes, size + 1, &count) == CHD_OK);
            FUZZ_CHECK(count >= 3 && nodes[0].kind == CHD_K_TUPLE && nodes[0].n == 2);
            FUZZ_CHECK(nodes[1].kind == CHD_K_INT);
            FUZZ_CHECK(nodes[1].neg ? (uint64_t)(-(state + 1)) + 1 == nodes[1].mag
                                    : (uint64_t)state == nodes[1].mag);
            FUZZ_CHECK((nodes[2].kind == CHD_K_LIST && nodes[2].n == num_nodes) ||
                       (nodes[2].kind == CHD_K_STRING && nodes[2].n == 0 && num_nodes == 0));
            free(nodes);
        }
    } else if (st == CHD_OK) {
        FUZZ_CHECK(flags == CHD_STATUS_GENERIC && text_len == 0);
    } else {
        /* num_nodes may count the nodes read before the error: callers ignore it then. */
        FUZZ_CHECK(text_len == 0);
    }

    if (st == CHD_OK && flags == 0 && text_len > 0) {
        /* One byte short of what it wrote: must refuse, not overflow. */
        st2 = call(data, size, text_len - 1, &state2, &text2, &text_len2, &num_nodes2, &flags2);
        FUZZ_CHECK(st2 == CHD_E_SPACE);
        free(text2);
    }
    {
        /* A tiny buffer (0..15 bytes): success only if the text fits. */
        size_t tiny = size ? data[size - 1] & 0x0f : 0;
        st2 = call(data, size, tiny, &state2, &text2, &text_len2, &num_nodes2, &flags2);
        if (st == CHD_OK && flags == 0 && text_len > tiny)
            FUZZ_CHECK(st2 == CHD_E_SPACE);
        else if (st2 != CHD_E_SPACE)
            FUZZ_CHECK(st2 == st && flags2 == flags && num_nodes2 == num_nodes &&
                       text_len2 == text_len && state2 == state &&
                       (text_len == 0 || memcmp(text, text2, text_len) == 0));
        free(text2);
    }
    free(text);
    return 0;
}
