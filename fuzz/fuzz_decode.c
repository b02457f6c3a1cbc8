/*
 * libFuzzer harness: chd_decode, the generic term decoder, on arbitrary payloads.
 *
 * Runs the count-only mode (out == NULL), the mode Python uses (cap = len + 1, heap array of
 * exactly that size so ASan sees any write past it), and a one-node-too-small array; the
 * three must agree, and a successful decode must be one well-formed term inside the input.
 */
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t count0 = 12345, count1 = 12345, count2 = 12345;
    size_t cap = size + 1;
    chd_term *nodes;
    int st0, st1, st2;

    st0 = chd_decode(data, size, NULL, 0, &count0);
    FUZZ_CHECK(fuzz_is_status(st0));
    FUZZ_CHECK(st0 != CHD_E_SPACE && st0 != CHD_E_SHAPE && st0 != CHD_E_ARG);
    /* Only a complete term (OK, or EXTRA after it) reports its node count. */
    if (st0 != CHD_OK && st0 != CHD_E_EXTRA)
        FUZZ_CHECK(count0 == 0);
    if (st0 == CHD_OK)
        FUZZ_CHECK(count0 >= 1 && count0 < size);  /* every node takes its tag byte */

    nodes = malloc(cap * sizeof(*nodes));
    FUZZ_CHECK(nodes != NULL);
    st1 = chd_decode(data, size, nodes, cap, &count1);
    /* len + 1 entries always suffice: the Python caller relies on this. */
    FUZZ_CHECK(st1 == st0 && count1 == count0);
    if (st1 == CHD_OK)
        fuzz_check_nodes(nodes, count1, size);
    free(nodes);

    if (st0 == CHD_OK || st0 == CHD_E_EXTRA) {
        /* One entry short: the decoder must stop at the entry it has no room for. */
        size_t small = count0 - 1;
        nodes = malloc((small ? small : 1) * sizeof(*nodes));
        FUZZ_CHECK(nodes != NULL);
        st2 = chd_decode(data, size, nodes, small, &count2);
        FUZZ_CHECK(st2 == CHD_E_TOOBIG && count2 == 0);
        free(nodes);
    }
    return 0;
}
