/*
 * libFuzzer harness: decode arbitrary bytes; when they are a valid term, re-encode it with
 * chd_encode (and as an HA order with chd_order_encode) and check that the result decodes to
 * the same term.
 *
 * The canonical encoding may differ in bytes from the input (SMALL_ATOM becomes ATOM, STRING
 * becomes LIST, an old FLOAT becomes NEW_FLOAT, ...), so node arrays are compared -- kinds,
 * values and byte payloads, not offsets -- after the two decode-only kinds are turned into
 * what the Python layer makes of them: STRING into a list of integers, FLOAT_TEXT into a
 * double (a text that overflows is refused by the Python layer, so such inputs stop there).
 */
#include "fuzz_util.h"

typedef struct nodevec {
    chd_term *v;
    size_t n;
    size_t cap;
} nodevec;

static void push(nodevec *nv, const chd_term *t)
{
    if (nv->n == nv->cap) {
        nv->cap = nv->cap ? 2 * nv->cap : 64;
        nv->v = realloc(nv->v, nv->cap * sizeof(*nv->v));
        FUZZ_CHECK(nv->v != NULL);
    }
    nv->v[nv->n++] = *t;
}

/* The encodable form of decoded nodes; 0 when the Python layer would refuse the term. */
static int normalise(const chd_term *in, size_t count, const uint8_t *pool, nodevec *out)
{
    out->n = 0;
    for (size_t i = 0; i < count; i++) {
        chd_term t = in[i];
        if (t.kind == CHD_K_FLOAT_TEXT) {
            char text[32];
            memcpy(text, pool + t.off, 31);
            text[31] = 0;
            memset(&t, 0, sizeof(t));
            t.kind = CHD_K_FLOAT;
            t.f = strtod(text, NULL);
            if (!isfinite(t.f))
                return 0;
            push(out, &t);
        } else if (t.kind == CHD_K_STRING) {
            chd_term e;
            uint32_t n = t.n, off = t.off;
            memset(&t, 0, sizeof(t));
            t.kind = CHD_K_LIST;
            t.n = n;
            push(out, &t);
            for (uint32_t k = 0; k < n; k++) {
                memset(&e, 0, sizeof(e));
                e.kind = CHD_K_INT;
                e.mag = pool[off + k];
                push(out, &e);
            }
        } else {
            push(out, &t);
        }
    }
    return 1;
}

/* Node-by-node equality of n nodes: kinds, values, byte payloads (offsets may differ). */
static void same_nodes(const chd_term *a, const uint8_t *pa, const chd_term *b,
                       const uint8_t *pb, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        FUZZ_CHECK(a[i].kind == b[i].kind);
        FUZZ_CHECK(a[i].kind != CHD_K_STRING && a[i].kind != CHD_K_FLOAT_TEXT);
        switch (a[i].kind) {
        case CHD_K_INT:
            FUZZ_CHECK(a[i].neg == b[i].neg && a[i].mag == b[i].mag);
            break;
        case CHD_K_FLOAT:
            FUZZ_CHECK(memcmp(&a[i].f, &b[i].f, sizeof(double)) == 0);  /* -0.0 too */
            break;
        case CHD_K_ATOM:
        case CHD_K_ATOM_UTF8:
        case CHD_K_BINARY:
            FUZZ_CHECK(a[i].n == b[i].n);
            FUZZ_CHECK(a[i].n == 0 || memcmp(pa + a[i].off, pb + b[i].off, a[i].n) == 0);
            break;
        default:
            FUZZ_CHECK(a[i].n == b[i].n);
        }
    }
}

static chd_term *decode_all(const uint8_t *p, size_t len, size_t *count)
{
    chd_term *nodes = malloc((len + 1) * sizeof(*nodes));
    FUZZ_CHECK(nodes != NULL);
    FUZZ_CHECK(chd_decode(p, len, nodes, len + 1, count) == CHD_OK);
    return nodes;
}

static chd_term scalar(int kind, uint32_t n, uint64_t mag)
{
    chd_term t;
    memset(&t, 0, sizeof(t));
    t.kind = kind;
    t.n = n;
    t.mag = mag;
    return t;
}

/* The term as node id of a beprimary / secondary_dead / besecondary order. */
static void orders(const nodevec *a, const uint8_t *data, size_t size, int depth)
{
    size_t cap = 5 + 16 * (2 * a->n + 16) + 2 * size + 64, olen = 0, count = 0;
    unsigned char *out = malloc(cap), *small;
    chd_term *dec;
    chd_addr addr;
    chd_term want;
    size_t pos;
    int st;

    FUZZ_CHECK(out != NULL);
    /* {1, Node}: the node id sits one container deep. */
    st = chd_order_encode(CHD_ORDER_BEPRIMARY, a->v, a->n, NULL, 0, NULL, 1, data, size, out,
                          cap, &olen);
    if (depth + 1 > CHD_MAX_DEPTH) {
        FUZZ_CHECK(st == CHD_E_TOODEEP);
    } else {
        FUZZ_CHECK(st == CHD_OK && olen > CHD_FRAME_HDR_LEN);
        FUZZ_CHECK(fuzz_be32(out) == olen - CHD_FRAME_HDR_LEN);
        dec = decode_all(out + 4, olen - 4, &count);
        FUZZ_CHECK(count == a->n + 2);
        want = scalar(CHD_K_TUPLE, 2, 0);
        same_nodes(&want, NULL, dec, NULL, 1);
        want = scalar(CHD_K_INT, 0, CHD_ORDER_BEPRIMARY);
        same_nodes(&want, NULL, dec + 1, NULL, 1);
        same_nodes(a->v, data, dec + 2, out + 4, a->n);
        free(dec);
        /* Exactly one byte too small. */
        small = malloc(olen - 1);
        FUZZ_CHECK(small != NULL);
        FUZZ_CHECK(chd_order_encode(CHD_ORDER_SECONDARY_DEAD, a->v, a->n, NULL, 0, NULL, 1, data,
                                    size, small, olen - 1, &count) == CHD_E_SPACE);
        free(small);
    }

    /* {2, Node, {PNode, Addr}, WaitReply}: the primary's id sits two containers deep. */
    memset(&addr, 0, sizeof(addr));
    addr.af = size % 3 == 0 ? CHD_AF_INET : size % 3 == 1 ? CHD_AF_INET6 : CHD_AF_STRING;
    for (size_t i = 0; i < 16 && i < size; i++)
        addr.ip[i] = data[size - 1 - i];
    addr.off = 0;
    addr.n = (uint32_t)(size < 20 ? size : 20);
    st = chd_order_encode(CHD_ORDER_BESECONDARY, a->v, a->n, a->v, a->n, &addr, (int)(size & 1),
                          data, size, out, cap, &olen);
    if (depth + 2 > CHD_MAX_DEPTH) {
        FUZZ_CHECK(st == CHD_E_TOODEEP);
        free(out);
        return;
    }
    FUZZ_CHECK(st == CHD_OK && fuzz_be32(out) == olen - CHD_FRAME_HDR_LEN);
    dec = decode_all(out + 4, olen - 4, &count);
    pos = 0;
    want = scalar(CHD_K_TUPLE, 4, 0);
    same_nodes(&want, NULL, dec + pos++, NULL, 1);
    want = scalar(CHD_K_INT, 0, CHD_ORDER_BESECONDARY);
    same_nodes(&want, NULL, dec + pos++, NULL, 1);
    same_nodes(a->v, data, dec + pos, out + 4, a->n);
    pos += a->n;
    want = scalar(CHD_K_TUPLE, 2, 0);
    same_nodes(&want, NULL, dec + pos++, NULL, 1);
    same_nodes(a->v, data, dec + pos, out + 4, a->n);
    pos += a->n;
    if (addr.af == CHD_AF_STRING) {
        FUZZ_CHECK(dec[pos].kind == CHD_K_BINARY && dec[pos].n == addr.n);
        FUZZ_CHECK(addr.n == 0 || memcmp(out + 4 + dec[pos].off, data, addr.n) == 0);
        pos++;
    } else {
        unsigned int words = addr.af == CHD_AF_INET ? 4 : 8;
        want = scalar(CHD_K_TUPLE, words, 0);
        same_nodes(&want, NULL, dec + pos++, NULL, 1);
        for (unsigned int w = 0; w < words; w++) {
            uint64_t v = words == 4 ? addr.ip[w]
                                    : ((uint64_t)addr.ip[2 * w] << 8) | addr.ip[2 * w + 1];
            want = scalar(CHD_K_INT, 0, v);
            same_nodes(&want, NULL, dec + pos++, NULL, 1);
        }
    }
    want = scalar(CHD_K_INT, 0, size & 1);
    same_nodes(&want, NULL, dec + pos++, NULL, 1);
    FUZZ_CHECK(pos == count);
    free(dec);
    /* WaitReply other than 0/1 and unknown order codes are caller errors. */
    FUZZ_CHECK(chd_order_encode(CHD_ORDER_BESECONDARY, a->v, a->n, a->v, a->n, &addr, 2, data,
                                size, out, cap, &olen) == CHD_E_ARG);
    FUZZ_CHECK(chd_order_encode(7 + (int)(size & 0xff), a->v, a->n, NULL, 0, NULL, 1, data,
                                size, out, cap, &olen) == CHD_E_ARG);
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    nodevec a = {0}, b = {0};
    chd_term *nodes, *nodes2;
    unsigned char *enc, *enc2;
    size_t count = 0, count2 = 0, cap, elen = 0, elen2 = 0;
    int depth;

    nodes = malloc((size + 1) * sizeof(*nodes));
    FUZZ_CHECK(nodes != NULL);
    if (chd_decode(data, size, nodes, size + 1, &count) != CHD_OK ||
        !normalise(nodes, count, data, &a)) {
        free(nodes);
        free(a.v);
        return 0;
    }
    free(nodes);
    depth = fuzz_check_nodes(a.v, a.n, size);

    /* Worst case per node: SMALL_BIG 11 bytes, LIST header 5 + tail 1; plus the payloads. */
    cap = 5 + 16 * a.n + size;
    enc = malloc(cap);
    FUZZ_CHECK(enc != NULL);
    FUZZ_CHECK(chd_encode(a.v, a.n, data, size, 0, enc, cap, &elen) == CHD_OK);
    FUZZ_CHECK(elen >= 2 && elen <= cap && enc[0] == 131);

    /* The exact size works; one byte less is refused without writing past the end. */
    enc2 = malloc(elen);
    FUZZ_CHECK(enc2 != NULL);
    FUZZ_CHECK(chd_encode(a.v, a.n, data, size, 0, enc2, elen, &elen2) == CHD_OK);
    FUZZ_CHECK(elen2 == elen && memcmp(enc, enc2, elen) == 0);
    FUZZ_CHECK(chd_encode(a.v, a.n, data, size, 0, enc2, elen - 1, &elen2) == CHD_E_SPACE);
    FUZZ_CHECK(elen2 == 0);
    free(enc2);

    /* Framed: the 4-byte length, then the same bytes. */
    enc2 = malloc(elen + 4);
    FUZZ_CHECK(enc2 != NULL);
    FUZZ_CHECK(chd_encode(a.v, a.n, data, size, 1, enc2, elen + 4, &elen2) == CHD_OK);
    FUZZ_CHECK(elen2 == elen + 4 && fuzz_be32(enc2) == elen);
    FUZZ_CHECK(memcmp(enc2 + 4, enc, elen) == 0);
    free(enc2);

    /* Decoding the encoding gives the same term, and it is already in canonical form. */
    nodes2 = decode_all(enc, elen, &count2);
    FUZZ_CHECK(normalise(nodes2, count2, enc, &b));
    FUZZ_CHECK(b.n == count2 && b.n == a.n);
    same_nodes(a.v, data, b.v, enc, a.n);
    enc2 = malloc(elen);
    FUZZ_CHECK(enc2 != NULL);
    FUZZ_CHECK(chd_encode(b.v, b.n, enc, elen, 0, enc2, elen, &elen2) == CHD_OK);
    FUZZ_CHECK(elen2 == elen && memcmp(enc, enc2, elen) == 0);
    free(enc2);
    free(nodes2);

    orders(&a, data, size, depth);

    free(enc);
    free(a.v);
    free(b.v);
    return 0;
}
