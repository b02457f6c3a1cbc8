/*
 * confd_ha core -- see confd_ha_core.h for the contract.  Pure buffer code: no system
 * calls, no allocation; all recursion is replaced by explicit, bounded stacks.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "confd_ha_core.h"

#ifndef CHD_PKG_VERSION
#error "build_ffi.py must define CHD_PKG_VERSION"
#endif

enum {
    TAG_VERSION = 131,
    TAG_NEW_FLOAT = 70,
    TAG_COMPRESSED = 80,
    TAG_SMALL_INTEGER = 97,
    TAG_INTEGER = 98,
    TAG_FLOAT = 99,
    TAG_ATOM = 100,
    TAG_SMALL_TUPLE = 104,
    TAG_LARGE_TUPLE = 105,
    TAG_NIL = 106,
    TAG_STRING = 107,
    TAG_LIST = 108,
    TAG_BINARY = 109,
    TAG_SMALL_BIG = 110,
    TAG_LARGE_BIG = 111,
    TAG_SMALL_ATOM = 115,
    TAG_ATOM_UTF8 = 118,
    TAG_SMALL_ATOM_UTF8 = 119
};

const char *chd_version(void)
{
    return CHD_PKG_VERSION;
}

/* ---------------------------------------------------------------- byte helpers */

static uint32_t get_u32(const unsigned char *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static void put_u32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

/* ---------------------------------------------------------------- handshake */

int chd_hello_build(unsigned char *out, size_t cap, const chd_hello *h)
{
    if (cap < CHD_HELLO_LEN)
        return CHD_E_SPACE;
    if (h->byte0 > 0xff || h->proto_vsn > 0xffff || h->maxdepth > 0xff || h->maxkeylen > 0xff)
        return CHD_E_ARG;
    out[0] = (unsigned char)h->byte0;
    out[1] = (unsigned char)(h->proto_vsn >> 8);
    out[2] = (unsigned char)h->proto_vsn;
    put_u32(out + 3, h->vsn);
    out[7] = (unsigned char)h->maxdepth;
    out[8] = (unsigned char)h->maxkeylen;
    return CHD_OK;
}

int chd_hello_parse(const unsigned char *in, size_t len, chd_hello *h)
{
    if (len < CHD_HELLO_LEN)
        return CHD_E_TRUNCATED;
    if (len > CHD_HELLO_LEN)
        return CHD_E_EXTRA;
    h->byte0 = in[0];
    h->proto_vsn = ((unsigned int)in[1] << 8) | in[2];
    h->vsn = get_u32(in + 3);
    h->maxdepth = in[7];
    h->maxkeylen = in[8];
    return CHD_OK;
}

static int lead_byte_build(unsigned char lead, unsigned char *out, size_t cap,
                           const unsigned char *data, size_t n)
{
    if (cap < n + 1)
        return CHD_E_SPACE;
    out[0] = lead;
    memcpy(out + 1, data, n);
    return CHD_OK;
}

static int lead_byte_parse(unsigned char lead, const unsigned char *in, size_t len, size_t n)
{
    if (len < 1 + n)
        return CHD_E_TRUNCATED;
    if (len > 1 + n)
        return CHD_E_EXTRA;
    return in[0] == lead ? CHD_OK : CHD_E_SHAPE;
}

int chd_challenge_build(unsigned char *out, size_t cap, const unsigned char *nonce, size_t n)
{
    return lead_byte_build(0x0B, out, cap, nonce, n);
}

int chd_challenge_parse(const unsigned char *in, size_t len, size_t n)
{
    return lead_byte_parse(0x0B, in, len, n);
}

int chd_response_build(unsigned char *out, size_t cap, const unsigned char *digest, size_t n)
{
    return lead_byte_build(0x0C, out, cap, digest, n);
}

int chd_response_parse(const unsigned char *in, size_t len, size_t n)
{
    return lead_byte_parse(0x0C, in, len, n);
}

/* ---------------------------------------------------------------- framing */

int chd_frame_header_parse(const unsigned char *in, size_t len, uint32_t limit, uint32_t *size)
{
    uint32_t v;
    if (len < CHD_FRAME_HDR_LEN)
        return CHD_E_TRUNCATED;
    if (len > CHD_FRAME_HDR_LEN)
        return CHD_E_EXTRA;
    v = get_u32(in);
    *size = v;
    return v > limit ? CHD_E_TOOBIG : CHD_OK;
}

/* ---------------------------------------------------------------- term reader */

typedef struct reader {
    const unsigned char *p;
    size_t len;
    size_t pos;
} reader;

static int need(const reader *r, size_t n)
{
    return r->len - r->pos >= n ? CHD_OK : CHD_E_TRUNCATED;
}

/* Checks what precedes the first term: a length that 32-bit offsets reach, the version byte. */
static int check_head(const unsigned char *in, size_t len)
{
    if (len > 0xffffffffu)
        return CHD_E_TOOBIG;  /* offsets in chd_term are 32-bit */
    if (len < 1)
        return CHD_E_TRUNCATED;
    if (in[0] != TAG_VERSION)
        return CHD_E_VERSION;
    return CHD_OK;
}

/* Validates UTF-8 (no overlongs, no surrogates, at most U+10FFFF). */
static int utf8_valid(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned char c = s[i];
        size_t k;
        uint32_t cp;
        if (c < 0x80) {
            i++;
            continue;
        } else if (c >= 0xC2 && c <= 0xDF) {
            k = 1;
            cp = c & 0x1F;
        } else if (c >= 0xE0 && c <= 0xEF) {
            k = 2;
            cp = c & 0x0F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            k = 3;
            cp = c & 0x07;
        } else {
            return 0;
        }
        if (n - i <= k)
            return 0;
        for (size_t j = 1; j <= k; j++) {
            if ((s[i + j] & 0xC0) != 0x80)
                return 0;
            cp = (cp << 6) | (s[i + j] & 0x3F);
        }
        if ((k == 2 && cp < 0x800) || (k == 3 && cp < 0x10000) || cp > 0x10FFFF ||
            (cp >= 0xD800 && cp <= 0xDFFF))
            return 0;
        i += k + 1;
    }
    return 1;
}

/* Moves *i past the decimal digits at s[*i..n) and returns how many there were. */
static size_t skip_digits(const unsigned char *s, size_t n, size_t *i)
{
    size_t start = *i;
    while (*i < n && s[*i] >= '0' && s[*i] <= '9')
        (*i)++;
    return *i - start;
}

/* Moves *i past a '+' or '-' at s[*i], if there is one before n. */
static void skip_sign(const unsigned char *s, size_t n, size_t *i)
{
    if (*i < n && (s[*i] == '+' || s[*i] == '-'))
        (*i)++;
}

/*
 * The old float format: "%.20e"-style decimal text, then NUL padding to 31 bytes.  Accepts
 * [+-]?(D+(.D*)?|.D+)([eE][+-]?D+)? followed only by NULs (range is checked by the caller).
 */
static int old_float_valid(const unsigned char *s)
{
    size_t i = 0, n = 0, digits = 0;
    while (n < 31 && s[n] != 0)
        n++;
    for (size_t j = n; j < 31; j++)
        if (s[j] != 0)
            return 0;
    skip_sign(s, n, &i);
    digits = skip_digits(s, n, &i);
    if (i < n && s[i] == '.') {
        i++;
        digits += skip_digits(s, n, &i);
    }
    if (digits == 0)
        return 0;
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        skip_sign(s, n, &i);
        if (skip_digits(s, n, &i) == 0)
            return 0;
    }
    return i == n;
}

/* Reads the big-endian length of `width` (1, 2 or 4) bytes at r->pos into *n. */
static int read_len(reader *r, size_t width, size_t *n)
{
    size_t v = 0;
    int st;

    if ((st = need(r, width)) != CHD_OK)
        return st;
    for (size_t i = 0; i < width; i++)
        v = (v << 8) | r->p[r->pos + i];
    r->pos += width;
    *n = v;
    return CHD_OK;
}

/* Reads a `width`-byte length and the bytes it announces, which t->off and t->n then span. */
static int read_span(reader *r, size_t width, chd_term *t)
{
    size_t n;
    int st;

    if ((st = read_len(r, width, &n)) != CHD_OK)
        return st;
    if ((st = need(r, n)) != CHD_OK)
        return st;
    t->off = (uint32_t)r->pos;
    t->n = (uint32_t)n;
    r->pos += n;
    return CHD_OK;
}

/*
 * Reads one term header at r->pos into t.  For containers t->n is the element count and
 * the elements follow in the input; everything else is complete after this call.
 */
static int read_one(reader *r, chd_term *t)
{
    unsigned char tag;
    size_t n;
    int st;

    if ((st = need(r, 1)) != CHD_OK)
        return st;
    tag = r->p[r->pos++];
    memset(t, 0, sizeof(*t));
    switch (tag) {
    case TAG_SMALL_INTEGER:
        if ((st = need(r, 1)) != CHD_OK)
            return st;
        t->kind = CHD_K_INT;
        t->mag = r->p[r->pos++];
        return CHD_OK;
    case TAG_INTEGER: {
        int32_t v;
        if ((st = need(r, 4)) != CHD_OK)
            return st;
        v = (int32_t)get_u32(r->p + r->pos);
        r->pos += 4;
        t->kind = CHD_K_INT;
        t->neg = v < 0;
        t->mag = v < 0 ? (uint64_t)(-(int64_t)v) : (uint64_t)v;
        return CHD_OK;
    }
    case TAG_SMALL_BIG:
    case TAG_LARGE_BIG: {
        unsigned char sign;
        uint64_t mag = 0;
        if ((st = read_len(r, tag == TAG_SMALL_BIG ? 1 : 4, &n)) != CHD_OK)
            return st;
        if ((st = need(r, 1)) != CHD_OK)
            return st;
        sign = r->p[r->pos++];
        if ((st = need(r, n)) != CHD_OK)
            return st;
        if (sign > 1)
            return CHD_E_BADVALUE;
        for (size_t i = 0; i < n; i++) {
            unsigned char b = r->p[r->pos + i];
            if (i >= 8) {
                if (b != 0)
                    return CHD_E_BADVALUE;  /* above 64-bit magnitude */
            } else {
                mag |= (uint64_t)b << (8 * i);
            }
        }
        r->pos += n;
        t->kind = CHD_K_INT;
        t->mag = mag;
        t->neg = sign && mag != 0;
        return CHD_OK;
    }
    case TAG_NEW_FLOAT: {
        uint64_t bits = 0;
        if ((st = need(r, 8)) != CHD_OK)
            return st;
        for (int i = 0; i < 8; i++)
            bits = (bits << 8) | r->p[r->pos + i];
        r->pos += 8;
        if (((bits >> 52) & 0x7ff) == 0x7ff)
            return CHD_E_BADVALUE;  /* NaN and infinities are not Erlang floats */
        t->kind = CHD_K_FLOAT;
        memcpy(&t->f, &bits, sizeof(t->f));
        return CHD_OK;
    }
    case TAG_FLOAT:
        if ((st = need(r, 31)) != CHD_OK)
            return st;
        if (!old_float_valid(r->p + r->pos))
            return CHD_E_BADVALUE;
        t->kind = CHD_K_FLOAT_TEXT;
        t->off = (uint32_t)r->pos;
        t->n = 31;
        r->pos += 31;
        return CHD_OK;
    case TAG_ATOM:
    case TAG_ATOM_UTF8:
    case TAG_SMALL_ATOM:
    case TAG_SMALL_ATOM_UTF8:
        if ((st = read_span(r, tag == TAG_ATOM || tag == TAG_ATOM_UTF8 ? 2 : 1, t)) != CHD_OK)
            return st;
        if (tag == TAG_ATOM_UTF8 || tag == TAG_SMALL_ATOM_UTF8) {
            if (!utf8_valid(r->p + t->off, t->n))
                return CHD_E_BADVALUE;
            t->kind = CHD_K_ATOM_UTF8;
        } else {
            t->kind = CHD_K_ATOM;
        }
        return CHD_OK;
    case TAG_BINARY:
    case TAG_STRING:
        if ((st = read_span(r, tag == TAG_BINARY ? 4 : 2, t)) != CHD_OK)
            return st;
        t->kind = tag == TAG_BINARY ? CHD_K_BINARY : CHD_K_STRING;
        return CHD_OK;
    case TAG_SMALL_TUPLE:
    case TAG_LARGE_TUPLE:
    case TAG_LIST:
        if ((st = read_len(r, tag == TAG_SMALL_TUPLE ? 1 : 4, &n)) != CHD_OK)
            return st;
        /* Every element takes at least one byte; a list also needs its tail. */
        if (n > r->len - r->pos || (tag == TAG_LIST && n == r->len - r->pos))
            return CHD_E_TRUNCATED;
        if (tag == TAG_LIST && n == 0) {
            /* An empty LIST still carries its tail (the length check left a byte). */
            if (r->p[r->pos] != TAG_NIL)
                return CHD_E_BADVALUE;
            r->pos++;
        }
        t->kind = tag == TAG_LIST ? CHD_K_LIST : CHD_K_TUPLE;
        t->n = (uint32_t)n;
        return CHD_OK;
    case TAG_NIL:
        t->kind = CHD_K_LIST;
        t->n = 0;
        return CHD_OK;
    default:
        return CHD_E_BADTAG;
    }
}

/*
 * Walks one complete term, calling back nothing: the container bookkeeping is shared by the
 * generic decoder and the specialised ones through this small state machine.
 */
typedef struct walker {
    uint32_t left[CHD_MAX_DEPTH + 1];   /* elements still to read per open container */
    unsigned char is_list[CHD_MAX_DEPTH + 1];
    int depth;
} walker;

/*
 * Any container -- tuple, list, NIL or STRING, even an empty one -- counts against the
 * depth cap, checked on its tag byte before its header is read.
 */
static int depth_check(const walker *w, const reader *r)
{
    unsigned char tag;
    if (r->pos >= r->len || w->depth < CHD_MAX_DEPTH)
        return CHD_OK;
    tag = r->p[r->pos];
    if (tag == TAG_SMALL_TUPLE || tag == TAG_LARGE_TUPLE || tag == TAG_NIL ||
        tag == TAG_STRING || tag == TAG_LIST)
        return CHD_E_TOODEEP;
    return CHD_OK;
}

/* Accounts for one term just read; returns CHD_OK or an error. Sets *done at the end. */
static int walk_step(walker *w, reader *r, const chd_term *t, int *done)
{
    if (t->kind == CHD_K_TUPLE || t->kind == CHD_K_LIST) {
        if (t->n > 0) {
            w->depth++;
            w->left[w->depth] = t->n;
            w->is_list[w->depth] = t->kind == CHD_K_LIST;
            *done = 0;
            return CHD_OK;
        }
    }
    /* A complete element: close every container it completes. */
    while (w->depth > 0) {
        if (--w->left[w->depth] > 0) {
            *done = 0;
            return CHD_OK;
        }
        if (w->is_list[w->depth]) {
            int st = need(r, 1);
            if (st != CHD_OK)
                return st;
            if (r->p[r->pos] != TAG_NIL)
                return CHD_E_BADVALUE;  /* improper list */
            r->pos++;
        }
        w->depth--;
    }
    *done = 1;
    return CHD_OK;
}

int chd_decode(const unsigned char *in, size_t len, chd_term *out, size_t cap, size_t *count)
{
    reader r = {in, len, 0};
    walker w;
    chd_term tmp;
    size_t k = 0;
    int done = 0;
    int st;

    w.depth = 0;
    *count = 0;
    if ((st = check_head(in, len)) != CHD_OK)
        return st;
    r.pos = 1;
    while (!done) {
        chd_term *t = out ? (k < cap ? &out[k] : NULL) : &tmp;
        if (t == NULL)
            return CHD_E_TOOBIG;
        if ((st = depth_check(&w, &r)) != CHD_OK)
            return st;
        if ((st = read_one(&r, t)) != CHD_OK)
            return st;
        k++;
        if ((st = walk_step(&w, &r, t, &done)) != CHD_OK)
            return st;
    }
    *count = k;
    return r.pos == len ? CHD_OK : CHD_E_EXTRA;
}

/* ---------------------------------------------------------------- term writer */

typedef struct writer {
    unsigned char *p;
    size_t cap;
    size_t pos;
} writer;

static int put(writer *w, const void *data, size_t n)
{
    if (w->cap - w->pos < n)
        return CHD_E_SPACE;
    memcpy(w->p + w->pos, data, n);
    w->pos += n;
    return CHD_OK;
}

static int put_byte(writer *w, unsigned char b)
{
    return put(w, &b, 1);
}

static int put_be32(writer *w, uint32_t v)
{
    unsigned char b[4];
    put_u32(b, v);
    return put(w, b, 4);
}

static int put_int(writer *w, int neg, uint64_t mag)
{
    int st;
    if (!neg && mag <= 255) {
        unsigned char b[2] = {TAG_SMALL_INTEGER, (unsigned char)mag};
        return put(w, b, 2);
    }
    if ((!neg && mag <= 0x7fffffffu) || (neg && mag <= 0x80000000u)) {
        uint32_t v = neg ? (uint32_t)(0u - (uint32_t)mag) : (uint32_t)mag;
        if ((st = put_byte(w, TAG_INTEGER)) != CHD_OK)
            return st;
        return put_be32(w, v);
    } else {
        unsigned char b[3 + 8];
        size_t n = 0;
        uint64_t m = mag;
        while (m) {
            b[3 + n++] = (unsigned char)m;
            m >>= 8;
        }
        b[0] = TAG_SMALL_BIG;
        b[1] = (unsigned char)n;
        b[2] = neg ? 1 : 0;
        return put(w, b, 3 + n);
    }
}

static int put_float(writer *w, double f)
{
    unsigned char b[9];
    uint64_t bits;
    memcpy(&bits, &f, sizeof(bits));
    b[0] = TAG_NEW_FLOAT;
    for (int i = 8; i >= 1; i--) {
        b[i] = (unsigned char)bits;
        bits >>= 8;
    }
    return put(w, b, 9);
}

static int put_bytes_tagged(writer *w, unsigned char tag, const unsigned char *data, size_t n)
{
    int st;
    if ((st = put_byte(w, tag)) != CHD_OK)
        return st;
    if (tag == TAG_BINARY) {
        if ((st = put_be32(w, (uint32_t)n)) != CHD_OK)
            return st;
    } else {
        unsigned char b[2] = {(unsigned char)(n >> 8), (unsigned char)n};
        if ((st = put(w, b, 2)) != CHD_OK)
            return st;
    }
    return put(w, data, n);
}

static int put_container(writer *w, int kind, uint32_t n)
{
    int st;
    if (kind == CHD_K_TUPLE) {
        if (n <= 255) {
            unsigned char b[2] = {TAG_SMALL_TUPLE, (unsigned char)n};
            return put(w, b, 2);
        }
        if ((st = put_byte(w, TAG_LARGE_TUPLE)) != CHD_OK)
            return st;
        return put_be32(w, n);
    }
    if (n == 0)
        return put_byte(w, TAG_NIL);
    if ((st = put_byte(w, TAG_LIST)) != CHD_OK)
        return st;
    return put_be32(w, n);
}

/* Encodes the terms (exactly one complete term) into w. */
static int encode_terms(writer *w, const chd_term *terms, size_t nterms,
                        const unsigned char *pool, size_t poollen, int base)
{
    uint32_t left[CHD_MAX_DEPTH + 1];
    unsigned char is_list[CHD_MAX_DEPTH + 1];
    int depth = base;  /* containers already open around this term */
    size_t i = 0;
    int st;

    for (;;) {
        const chd_term *t;
        if (i >= nterms)
            return CHD_E_ARG;
        t = &terms[i++];
        switch (t->kind) {
        case CHD_K_INT:
            st = put_int(w, t->neg, t->mag);
            break;
        case CHD_K_FLOAT: {
            uint64_t bits;
            memcpy(&bits, &t->f, sizeof(bits));
            if (((bits >> 52) & 0x7ff) == 0x7ff)
                return CHD_E_BADVALUE;  /* NaN and infinities have no Erlang form */
            st = put_float(w, t->f);
            break;
        }
        case CHD_K_ATOM:
        case CHD_K_ATOM_UTF8:
        case CHD_K_BINARY:
            if (t->off > poollen || t->n > poollen - t->off)
                return CHD_E_ARG;
            if (t->kind == CHD_K_BINARY) {
                st = put_bytes_tagged(w, TAG_BINARY, pool + t->off, t->n);
            } else {
                if (t->n > 0xffff)
                    return CHD_E_BADVALUE;
                st = put_bytes_tagged(w, t->kind == CHD_K_ATOM ? TAG_ATOM : TAG_ATOM_UTF8,
                                      pool + t->off, t->n);
            }
            break;
        case CHD_K_SMALL_ATOM_UTF8: {
            unsigned char b[2] = {TAG_SMALL_ATOM_UTF8, (unsigned char)t->n};
            if (t->off > poollen || t->n > poollen - t->off)
                return CHD_E_ARG;
            if (t->n > 0xff)
                return CHD_E_BADVALUE;
            if ((st = put(w, b, 2)) == CHD_OK)
                st = put(w, pool + t->off, t->n);
            break;
        }
        case CHD_K_TUPLE:
        case CHD_K_LIST:
            if (depth >= CHD_MAX_DEPTH)
                return CHD_E_TOODEEP;
            st = put_container(w, t->kind, t->n);
            if (st == CHD_OK && t->n > 0) {
                depth++;
                left[depth] = t->n;
                is_list[depth] = t->kind == CHD_K_LIST;
                continue;
            }
            break;
        default:
            return CHD_E_ARG;
        }
        if (st != CHD_OK)
            return st;
        while (depth > base) {
            if (--left[depth] > 0)
                break;
            if (is_list[depth] && (st = put_byte(w, TAG_NIL)) != CHD_OK)
                return st;
            depth--;
        }
        if (depth == base)
            return i == nterms ? CHD_OK : CHD_E_ARG;
    }
}

/* Starts a message: room for the frame header when framed, then the version byte. */
static int begin_message(writer *w, int framed)
{
    if (framed) {
        if (w->cap < CHD_FRAME_HDR_LEN)
            return CHD_E_SPACE;
        w->pos = CHD_FRAME_HDR_LEN;
    }
    return put_byte(w, TAG_VERSION);
}

static int end_message(writer *w, int framed, size_t *outlen)
{
    if (framed) {
        size_t body = w->pos - CHD_FRAME_HDR_LEN;
        if (body > 0xffffffffu)
            return CHD_E_TOOBIG;
        put_u32(w->p, (uint32_t)body);
    }
    *outlen = w->pos;
    return CHD_OK;
}

int chd_encode(const chd_term *terms, size_t nterms, const unsigned char *pool, size_t poollen,
               int framed, unsigned char *out, size_t cap, size_t *outlen)
{
    writer w = {out, cap, 0};
    int st;
    *outlen = 0;
    if ((st = begin_message(&w, framed)) != CHD_OK)
        return st;
    if ((st = encode_terms(&w, terms, nterms, pool, poollen, 0)) != CHD_OK)
        return st;
    return end_message(&w, framed, outlen);
}

/* ---------------------------------------------------------------- HA orders */

static int put_small_tuple(writer *w, unsigned int arity)
{
    unsigned char b[2] = {TAG_SMALL_TUPLE, (unsigned char)arity};
    return put(w, b, 2);
}

static int put_addr(writer *w, const chd_addr *a, const unsigned char *pool, size_t poollen)
{
    int st;
    switch (a->af) {
    case CHD_AF_INET:
        if ((st = put_small_tuple(w, 4)) != CHD_OK)
            return st;
        for (int i = 0; i < 4; i++)
            if ((st = put_int(w, 0, a->ip[i])) != CHD_OK)
                return st;
        return CHD_OK;
    case CHD_AF_INET6:
        if ((st = put_small_tuple(w, 8)) != CHD_OK)
            return st;
        for (int i = 0; i < 8; i++)
            if ((st = put_int(w, 0, ((uint64_t)a->ip[2 * i] << 8) | a->ip[2 * i + 1])) != CHD_OK)
                return st;
        return CHD_OK;
    case CHD_AF_STRING:
        if (a->off > poollen || a->n > poollen - a->off)
            return CHD_E_ARG;
        return put_bytes_tagged(w, TAG_BINARY, pool + a->off, a->n);
    default:
        return CHD_E_ARG;
    }
}

int chd_order_encode(int order, const chd_term *node, size_t node_n,
                     const chd_term *pnode, size_t pnode_n, const chd_addr *addr,
                     int waitreply, const unsigned char *pool, size_t poollen,
                     unsigned char *out, size_t cap, size_t *outlen)
{
    writer w = {out, cap, 0};
    int st;
    *outlen = 0;
    if ((st = begin_message(&w, 1)) != CHD_OK)
        return st;
    switch (order) {
    case CHD_ORDER_BENONE:
    case CHD_ORDER_GETSTATUS:
    case CHD_ORDER_BERELAY:
        if ((st = put_small_tuple(&w, 1)) != CHD_OK || (st = put_int(&w, 0, (uint64_t)order)) != CHD_OK)
            return st;
        break;
    case CHD_ORDER_BEPRIMARY:
    case CHD_ORDER_SECONDARY_DEAD:
        if (node == NULL)
            return CHD_E_ARG;
        if ((st = put_small_tuple(&w, 2)) != CHD_OK || (st = put_int(&w, 0, (uint64_t)order)) != CHD_OK)
            return st;
        if ((st = encode_terms(&w, node, node_n, pool, poollen, 1)) != CHD_OK)
            return st;
        break;
    case CHD_ORDER_BESECONDARY:
        if (node == NULL || pnode == NULL || addr == NULL || (waitreply != 0 && waitreply != 1))
            return CHD_E_ARG;
        if ((st = put_small_tuple(&w, 4)) != CHD_OK || (st = put_int(&w, 0, (uint64_t)order)) != CHD_OK)
            return st;
        if ((st = encode_terms(&w, node, node_n, pool, poollen, 1)) != CHD_OK)
            return st;
        if ((st = put_small_tuple(&w, 2)) != CHD_OK)
            return st;
        if ((st = encode_terms(&w, pnode, pnode_n, pool, poollen, 2)) != CHD_OK)
            return st;
        if ((st = put_addr(&w, addr, pool, poollen)) != CHD_OK)
            return st;
        if ((st = put_int(&w, 0, (uint64_t)waitreply)) != CHD_OK)
            return st;
        break;
    default:
        return CHD_E_ARG;
    }
    return end_message(&w, 1, outlen);
}

/* ---------------------------------------------------------------- replies */

/*
 * The specialised decoders validate the whole payload with the generic walk first (so they
 * reject exactly what chd_decode rejects), then read the expected shape from the start.
 */
static int validate(const unsigned char *in, size_t len)
{
    size_t count;
    return chd_decode(in, len, NULL, 0, &count);
}

static int atom_is(const unsigned char *in, const chd_term *t, const char *name)
{
    size_t n = strlen(name);
    return (t->kind == CHD_K_ATOM || t->kind == CHD_K_ATOM_UTF8) && t->n == n &&
           memcmp(in + t->off, name, n) == 0;
}

/* Integer that fits int64_t. */
static int as_int64(const chd_term *t, int64_t *v)
{
    if (t->kind != CHD_K_INT)
        return CHD_E_SHAPE;
    if (t->neg) {
        if (t->mag > (uint64_t)INT64_MAX + 1)
            return CHD_E_SHAPE;
        *v = t->mag == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)t->mag;
    } else {
        if (t->mag > (uint64_t)INT64_MAX)
            return CHD_E_SHAPE;
        *v = (int64_t)t->mag;
    }
    return CHD_OK;
}

int chd_reply_decode(const unsigned char *in, size_t len, chd_reply *rep)
{
    reader r = {in, len, 1};
    chd_term t;
    int st;

    memset(rep, 0, sizeof(*rep));
    if ((st = validate(in, len)) != CHD_OK)
        return st;
    read_one(&r, &t);
    if (t.kind == CHD_K_ATOM || t.kind == CHD_K_ATOM_UTF8) {
        rep->kind = atom_is(in, &t, "ok") ? CHD_REPLY_OK : CHD_REPLY_ATOM;
        rep->atom_off = t.off;
        rep->atom_len = t.n;
        return CHD_OK;
    }
    if (t.kind != CHD_K_TUPLE || (t.n != 2 && t.n != 3))
        return CHD_E_SHAPE;
    {
        uint32_t arity = t.n;
        read_one(&r, &t);
        if (!atom_is(in, &t, "error"))
            return CHD_E_SHAPE;
        read_one(&r, &t);
        if ((st = as_int64(&t, &rep->code)) != CHD_OK)
            return st;
        if (arity == 2) {
            rep->kind = CHD_REPLY_ERROR;
            return CHD_OK;
        }
        rep->kind = CHD_REPLY_ERROR_REASON;
        read_one(&r, &t);
        if (t.kind == CHD_K_TUPLE && t.n == 2) {
            /* {Binary, AppTag}: the text is the binary. */
            read_one(&r, &t);
            if (t.kind != CHD_K_BINARY)
                return CHD_E_SHAPE;
        }
        if (t.kind == CHD_K_BINARY || t.kind == CHD_K_STRING) {
            rep->reason_kind = CHD_REASON_BYTES;
            rep->reason_off = t.off;
            rep->reason_len = t.n;
            return CHD_OK;
        }
        if (t.kind == CHD_K_LIST) {
            rep->reason_kind = CHD_REASON_LIST;
            return CHD_OK;
        }
        return CHD_E_SHAPE;
    }
}

/* ---------------------------------------------------------------- status */

static size_t put_dec(unsigned char *out, unsigned int v)
{
    unsigned char tmp[10];
    size_t n = 0, i;
    do {
        tmp[n++] = (unsigned char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (i = 0; i < n; i++)
        out[i] = tmp[n - 1 - i];
    return n;
}

static size_t ipv4_text(const unsigned char *ip, unsigned char *out)
{
    size_t n = 0;
    for (int i = 0; i < 4; i++) {
        if (i)
            out[n++] = '.';
        n += put_dec(out + n, ip[i]);
    }
    return n;
}

int chd_ipv6_text(const unsigned char *ip, unsigned char *out, size_t cap, size_t *outlen)
{
    static const char hex[] = "0123456789abcdef";
    unsigned int words[8];
    int best_base = -1, best_len = 0, cur_base = -1, cur_len = 0;
    unsigned char buf[64];
    size_t n = 0;

    for (int i = 0; i < 8; i++)
        words[i] = ((unsigned int)ip[2 * i] << 8) | ip[2 * i + 1];
    /* The longest run of zero words (first one on a tie), if at least two long. */
    for (int i = 0; i < 8; i++) {
        if (words[i] == 0) {
            if (cur_base < 0) {
                cur_base = i;
                cur_len = 0;
            }
            cur_len++;
            if (cur_len > best_len) {
                best_base = cur_base;
                best_len = cur_len;
            }
        } else {
            cur_base = -1;
        }
    }
    if (best_len < 2)
        best_base = -1;
    for (int i = 0; i < 8; i++) {
        if (best_base >= 0 && i >= best_base && i < best_base + best_len) {
            if (i == best_base)
                buf[n++] = ':';
            continue;
        }
        if (i)
            buf[n++] = ':';
        /* glibc prints an IPv4 tail for ::a.b.c.d and ::ffff:a.b.c.d */
        if (i == 6 && best_base == 0 && (best_len == 6 || (best_len == 5 && words[5] == 0xffff))) {
            n += ipv4_text(ip + 12, buf + n);
            break;
        }
        {
            unsigned int v = words[i];
            int started = 0;
            for (int s = 12; s >= 0; s -= 4) {
                unsigned int d = (v >> s) & 0xf;
                if (d || started || s == 0) {
                    buf[n++] = (unsigned char)hex[d];
                    started = 1;
                }
            }
        }
    }
    if (best_base >= 0 && best_base + best_len == 8)
        buf[n++] = ':';
    if (n > cap)
        return CHD_E_SPACE;
    memcpy(out, buf, n);
    *outlen = n;
    return CHD_OK;
}

/* Reads an n-tuple of integers each at most max into bytes (1 or 2 bytes each). */
static int read_ip_words(reader *r, uint32_t count, uint64_t max, unsigned char *ip)
{
    chd_term t;
    int st;
    for (uint32_t i = 0; i < count; i++) {
        if (r->len - r->pos >= 2 && r->p[r->pos] == TAG_SMALL_INTEGER) {
            /* The form daemons send; skips the general reader for most of a status. */
            t.kind = CHD_K_INT;
            t.neg = 0;
            t.mag = r->p[r->pos + 1];
            r->pos += 2;
        } else if ((st = read_one(r, &t)) != CHD_OK) {
            return st;
        }
        if (t.kind != CHD_K_INT || t.neg || t.mag > max)
            return CHD_E_SHAPE;
        if (max == 255) {
            ip[i] = (unsigned char)t.mag;
        } else {
            ip[2 * i] = (unsigned char)(t.mag >> 8);
            ip[2 * i + 1] = (unsigned char)t.mag;
        }
    }
    return CHD_OK;
}

/* Appends n bytes and a NUL separator to the text buffer. */
static int put_text(unsigned char *text, size_t cap, size_t *tl, const unsigned char *s, size_t n)
{
    if (cap - *tl < n + 1)
        return CHD_E_SPACE;
    memcpy(text + *tl, s, n);
    *tl += n;
    text[(*tl)++] = 0;
    return CHD_OK;
}

/* Writes the text of one address term (already read into t) to the text buffer. */
static int status_address(reader *r, const chd_term *t, unsigned char *text, size_t cap,
                          size_t *tl, int *flags)
{
    int st;
    if (t->kind == CHD_K_TUPLE && (t->n == 4 || t->n == 8)) {
        unsigned char ip[16], buf[64];
        size_t an;
        if ((st = read_ip_words(r, t->n, t->n == 4 ? 255 : 65535, ip)) != CHD_OK)
            return st;
        if (t->n == 4)
            an = ipv4_text(ip, buf);
        else
            chd_ipv6_text(ip, buf, sizeof(buf), &an);
        return put_text(text, cap, tl, buf, an);
    }
    if (t->kind == CHD_K_BINARY || t->kind == CHD_K_STRING) {
        if (memchr(r->p + t->off, 0, t->n) != NULL) {
            /* NUL separates the text fields: let the generic path handle it. */
            *flags |= CHD_STATUS_GENERIC;
            return CHD_OK;
        }
        return put_text(text, cap, tl, r->p + t->off, t->n);
    }
    if (t->kind == CHD_K_LIST) {
        *flags |= CHD_STATUS_GENERIC;
        return CHD_OK;
    }
    return CHD_E_SHAPE;
}

/* Reads the header of the next term, which must be a 2-tuple (else CHD_E_SHAPE). */
static int read_pair(reader *r)
{
    chd_term t;
    int st;

    if ((st = read_one(r, &t)) != CHD_OK)
        return st;
    return t.kind == CHD_K_TUPLE && t.n == 2 ? CHD_OK : CHD_E_SHAPE;
}

/*
 * One pass over the reply, reading exactly the expected shape: every other shape is
 * CHD_E_SHAPE (or the reader's own error), so no separate validation walk is needed.
 */
int chd_status_decode(const unsigned char *in, size_t len, int64_t *state,
                      unsigned char *text, size_t cap, size_t *text_len,
                      size_t *num_nodes, int *flags)
{
    reader r = {in, len, 1};
    chd_term t;
    uint32_t nodes;
    size_t tl = 0;
    int st;

    *state = 0;
    *text_len = 0;
    *num_nodes = 0;
    *flags = 0;
    if ((st = check_head(in, len)) != CHD_OK)
        return st;
    if ((st = read_pair(&r)) != CHD_OK)
        return st;
    if ((st = read_one(&r, &t)) != CHD_OK)
        return st;
    if (t.kind != CHD_K_INT)
        return CHD_E_SHAPE;
    if (as_int64(&t, state) != CHD_OK) {
        *flags |= CHD_STATUS_GENERIC;  /* W-20: any integer state, even beyond 64 bits */
        return CHD_OK;
    }
    if ((st = read_one(&r, &t)) != CHD_OK)
        return st;
    if (t.kind == CHD_K_STRING && t.n == 0) {
        nodes = 0;  /* an empty STRING is an empty list */
    } else if (t.kind != CHD_K_LIST) {
        return CHD_E_SHAPE;
    } else {
        nodes = t.n;
    }
    for (uint32_t k = 0; k < nodes; k++) {
        chd_term id;
        const unsigned char *nul;
        if ((st = read_pair(&r)) != CHD_OK)
            return st;
        if ((st = read_one(&r, &id)) != CHD_OK)
            return st;
        if (id.kind != CHD_K_BINARY) {
            *flags |= CHD_STATUS_GENERIC;
            return CHD_OK;
        }
        /* W-25: a binary node id is its bytes up to the first NUL. */
        nul = memchr(in + id.off, 0, id.n);
        if ((st = put_text(text, cap, &tl, in + id.off,
                           nul ? (size_t)(nul - (in + id.off)) : id.n)) != CHD_OK)
            return st;
        if ((st = read_one(&r, &t)) != CHD_OK)
            return st;
        if ((st = status_address(&r, &t, text, cap, &tl, flags)) != CHD_OK || *flags)
            return st;
        *num_nodes = k + 1;
    }
    if (nodes > 0) {
        if ((st = need(&r, 1)) != CHD_OK)
            return st;
        if (in[r.pos++] != TAG_NIL)
            return CHD_E_SHAPE;  /* improper list */
    }
    if (r.pos != len)
        return CHD_E_EXTRA;
    *text_len = tl;
    return CHD_OK;
}
