/*
 * libFuzzer harness: the fixed-layout parsers -- chd_hello_parse, chd_challenge_parse,
 * chd_response_parse, chd_frame_header_parse -- and chd_ipv6_text.
 *
 * Each parser sees the whole input; when it accepts, building the parsed value again must give
 * the input's bytes back.  chd_ipv6_text is compared with glibc's inet_ntop, which its
 * contract names, on the first 16 bytes.  Output buffers are heap blocks of exactly their
 * capacity, one byte too small as well, so ASan sees any write past the end.
 */
#include <arpa/inet.h>

#include "fuzz_util.h"

static void hello(const uint8_t *data, size_t size)
{
    chd_hello h;
    int st = chd_hello_parse(data, size, &h);
    if (size < CHD_HELLO_LEN) {
        FUZZ_CHECK(st == CHD_E_TRUNCATED);
    } else if (size > CHD_HELLO_LEN) {
        FUZZ_CHECK(st == CHD_E_EXTRA);
    } else {
        unsigned char *out = malloc(CHD_HELLO_LEN);
        FUZZ_CHECK(st == CHD_OK && out != NULL);
        FUZZ_CHECK(chd_hello_build(out, CHD_HELLO_LEN, &h) == CHD_OK);
        FUZZ_CHECK(memcmp(out, data, CHD_HELLO_LEN) == 0);
        FUZZ_CHECK(chd_hello_build(out, CHD_HELLO_LEN - 1, &h) == CHD_E_SPACE);
        free(out);
    }
}

/* challenge (lead 0x0B) or response (lead 0x0C) with an n-byte body. */
static void lead_byte(const uint8_t *data, size_t size, size_t n, int challenge)
{
    unsigned char lead = challenge ? 0x0B : 0x0C;
    int st = challenge ? chd_challenge_parse(data, size, n) : chd_response_parse(data, size, n);
    if (size < n + 1) {
        FUZZ_CHECK(st == CHD_E_TRUNCATED);
    } else if (size > n + 1) {
        FUZZ_CHECK(st == CHD_E_EXTRA);
    } else if (data[0] != lead) {
        FUZZ_CHECK(st == CHD_E_SHAPE);
    } else {
        unsigned char *out = malloc(n + 1);
        FUZZ_CHECK(st == CHD_OK && out != NULL);
        st = challenge ? chd_challenge_build(out, n + 1, data + 1, n)
                       : chd_response_build(out, n + 1, data + 1, n);
        FUZZ_CHECK(st == CHD_OK && memcmp(out, data, n + 1) == 0);
        st = challenge ? chd_challenge_build(out, n, data + 1, n)
                       : chd_response_build(out, n, data + 1, n);
        FUZZ_CHECK(st == CHD_E_SPACE);
        free(out);
    }
}

static void frame_header(const uint8_t *data, size_t size, uint32_t limit)
{
    uint32_t sz = 0;
    int st = chd_frame_header_parse(data, size, limit, &sz);
    if (size < CHD_FRAME_HDR_LEN) {
        FUZZ_CHECK(st == CHD_E_TRUNCATED);
    } else if (size > CHD_FRAME_HDR_LEN) {
        FUZZ_CHECK(st == CHD_E_EXTRA);
    } else {
        FUZZ_CHECK(sz == fuzz_be32(data));
        FUZZ_CHECK(st == (sz > limit ? CHD_E_TOOBIG : CHD_OK));
    }
}

static void ipv6(const uint8_t *ip)
{
    char expect[INET6_ADDRSTRLEN];
    unsigned char *out = malloc(64);
    size_t n = 0, m = 0;
    size_t len;
    FUZZ_CHECK(out != NULL);
    FUZZ_CHECK(inet_ntop(AF_INET6, ip, expect, sizeof(expect)) != NULL);
    len = strlen(expect);
    FUZZ_CHECK(chd_ipv6_text(ip, out, 64, &n) == CHD_OK);
    if (n != len || memcmp(out, expect, len) != 0) {
        fprintf(stderr, "chd_ipv6_text: '%.*s', inet_ntop: '%s'\n", (int)n, out, expect);
        FUZZ_CHECK(!"chd_ipv6_text differs from inet_ntop");
    }
    free(out);
    /* Exactly the room it needs, then one byte less. */
    out = malloc(len);
    FUZZ_CHECK(out != NULL);
    FUZZ_CHECK(chd_ipv6_text(ip, out, len, &m) == CHD_OK && m == len);
    FUZZ_CHECK(chd_ipv6_text(ip, out, len - 1, &m) == CHD_E_SPACE);
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    hello(data, size);
    lead_byte(data, size, 16, 1);   /* access check v1 (MD5) */
    lead_byte(data, size, 32, 1);   /* access check v2 (SHA-256) */
    lead_byte(data, size, 16, 0);
    lead_byte(data, size, 32, 0);
    if (size > 0) {
        lead_byte(data, size, size - 1, size & 1);   /* a size that matches the input */
        lead_byte(data, size, data[0] & 0x3f, !(size & 1));
    }
    frame_header(data, size, 16u * 1024 * 1024);     /* the client's default (W-15) */
    frame_header(data, size, 0xffffffffu);
    if (size >= 8) {
        /* The first four bytes as a header, the next four as the limit. */
        frame_header(data, CHD_FRAME_HDR_LEN, fuzz_be32(data + 4));
    }
    if (size >= 16)
        ipv6(data + size - 16);  /* the last 16 bytes: independent of the hello's layout */
    return 0;
}
