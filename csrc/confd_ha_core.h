/*
 * confd_ha core: buffer-in / buffer-out helpers for the ConfD IPC protocol as used by the
 * HA control socket, the event-notification socket and the emulator.
 *
 * Rules: no system calls, no allocation, every length checked against the bytes remaining,
 * nesting depth capped, decoders must consume their whole input.  Functions return CHD_OK (0)
 * or one of the negative CHD_E_* status codes.
 *
 * This header is read verbatim by build_ffi.py into cffi's cdef(): keep it free of #include,
 * of function-like macros and of anything cffi's parser does not understand.
 */

enum chd_status {
    CHD_OK = 0,
    CHD_E_TRUNCATED = -1, /* a length runs past the end of the input */
    CHD_E_EXTRA = -2, /* bytes left over after a complete term */
    CHD_E_BADTAG = -3, /* unknown or unsupported (e.g. compressed) term tag */
    CHD_E_TOODEEP = -4, /* terms nested deeper than CHD_MAX_DEPTH */
    CHD_E_BADVALUE = -5, /* well-formed bytes with a bad value (range, UTF-8, tail) */
    CHD_E_SPACE = -6, /* the caller's output buffer is too small */
    CHD_E_SHAPE = -7, /* a valid term, but not of the shape this message needs */
    CHD_E_VERSION = -8, /* payload does not start with the ETF version byte 131 */
    CHD_E_TOOBIG = -9, /* announced frame or term count above the caller's limit */
    CHD_E_ARG = -10, /* bad argument from the caller */
};

#define CHD_MAX_DEPTH 100      /* containers that may be nested inside each other */
#define CHD_HELLO_LEN 9
#define CHD_FRAME_HDR_LEN 4

/* Kinds of the flat term representation (chd_term.kind). */
#define CHD_K_INT 1         /* neg + mag */
#define CHD_K_FLOAT 2       /* f */
#define CHD_K_ATOM 3        /* Latin-1 text at off, n bytes */
#define CHD_K_ATOM_UTF8 4   /* UTF-8 text at off, n bytes */
#define CHD_K_BINARY 5      /* bytes at off, n bytes */
#define CHD_K_TUPLE 6       /* n elements follow */
#define CHD_K_LIST 7        /* n elements follow (proper list; n == 0 is NIL) */
#define CHD_K_STRING 8      /* decoded tag 107: list of n small integers stored at off */
#define CHD_K_FLOAT_TEXT 9  /* decoded tag 99: 31 bytes of NUL-padded text at off */
#define CHD_K_SMALL_ATOM_UTF8 10  /* encoded only: UTF-8 text at off, n <= 255 bytes, as
                                     tag 119 (how libconfd encodes the atoms it sends) */

/*
 * One node of a term in pre-order: a tuple or list node is followed by its n elements.
 * Byte payloads (atoms, binaries, strings) live in a separate byte pool: for decoding the
 * pool is the input itself; for encoding it is a buffer the caller passes along.
 */
typedef struct chd_term {
    int kind;
    int neg;            /* CHD_K_INT: 1 when negative */
    uint32_t n;         /* arity, element count or byte length */
    uint32_t off;       /* offset of the bytes in the pool */
    uint64_t mag;       /* CHD_K_INT: magnitude (up to 64 bits) */
    double f;           /* CHD_K_FLOAT */
} chd_term;

/* The 9-byte hello (client -> server) and reply (server -> client) share one layout. */
typedef struct chd_hello {
    unsigned int byte0;      /* client: type | flags; server: status */
    unsigned int proto_vsn;  /* 16 bits */
    uint32_t vsn;            /* LIB_VSN / daemon version */
    unsigned int maxdepth;
    unsigned int maxkeylen;
} chd_hello;

/* Address of an HA node, for order encoding. */
#define CHD_AF_STRING 0
#define CHD_AF_INET 4
#define CHD_AF_INET6 6
typedef struct chd_addr {
    int af;                  /* CHD_AF_INET, CHD_AF_INET6 or CHD_AF_STRING */
    unsigned char ip[16];    /* 4 or 16 address bytes in network order */
    uint32_t off;            /* CHD_AF_STRING: text in the pool */
    uint32_t n;
} chd_addr;

/* Order codes of the HA control socket. */
#define CHD_ORDER_BEPRIMARY 1
#define CHD_ORDER_BESECONDARY 2
#define CHD_ORDER_BENONE 3
#define CHD_ORDER_GETSTATUS 4
#define CHD_ORDER_SECONDARY_DEAD 5
#define CHD_ORDER_BERELAY 6

/* Reply kinds (chd_reply.kind) and error-reason kinds (chd_reply.reason_kind). */
#define CHD_REPLY_OK 0        /* the atom ok */
#define CHD_REPLY_ATOM 1      /* another atom (liberally taken as success) */
#define CHD_REPLY_ERROR 2     /* {error, Code} */
#define CHD_REPLY_ERROR_REASON 3  /* {error, Code, Reason} */
#define CHD_REASON_NONE 0
#define CHD_REASON_BYTES 1    /* binary or STRING: bytes at reason_off/reason_len */
#define CHD_REASON_LIST 2     /* list of integers: decode the payload generically */
typedef struct chd_reply {
    int kind;
    int64_t code;
    int reason_kind;
    uint32_t reason_off;
    uint32_t reason_len;
    uint32_t atom_off;        /* CHD_REPLY_OK / CHD_REPLY_ATOM: the atom's text */
    uint32_t atom_len;
} chd_reply;

/* chd_status_decode() flags. */
#define CHD_STATUS_GENERIC 1   /* a node id or address needs the generic decoder */

const char *chd_version(void);

/* Handshake. */
int chd_hello_build(unsigned char *out, size_t cap, const chd_hello *h);
int chd_hello_parse(const unsigned char *in, size_t len, chd_hello *h);

/* Access check: challenge = 0x0B + nonce; response = 0x0C + digest. */
int chd_challenge_build(unsigned char *out, size_t cap, const unsigned char *nonce, size_t n);
int chd_challenge_parse(const unsigned char *in, size_t len, size_t n);
int chd_response_build(unsigned char *out, size_t cap, const unsigned char *digest, size_t n);
int chd_response_parse(const unsigned char *in, size_t len, size_t n);

/* Framing: 4-byte big-endian length. */
int chd_frame_header_parse(const unsigned char *in, size_t len, uint32_t limit, uint32_t *size);

/*
 * Generic ETF codec.  chd_decode: validates a whole payload (version byte included) and
 * writes its nodes to out (cap entries); out may be NULL to only validate and count.
 * chd_encode: writes version byte + term (framed: preceded by the 4-byte length).
 */
int chd_decode(const unsigned char *in, size_t len, chd_term *out, size_t cap, size_t *count);
int chd_encode(const chd_term *terms, size_t nterms, const unsigned char *pool, size_t poollen,
               int framed, unsigned char *out, size_t cap, size_t *outlen);

/*
 * HA orders, as complete frames.  node / pnode are flat terms (the node id values);
 * unused arguments may be NULL / 0.
 */
int chd_order_encode(int order, const chd_term *node, size_t node_n,
                     const chd_term *pnode, size_t pnode_n, const chd_addr *addr,
                     int waitreply, const unsigned char *pool, size_t poollen,
                     unsigned char *out, size_t cap, size_t *outlen);

/* Reply of an HA order: ok | Atom | {error, Code} | {error, Code, Reason}. */
int chd_reply_decode(const unsigned char *in, size_t len, chd_reply *r);

/*
 * getstatus reply {State, [{NodeId, Addr}, ...]}.  Writes "nodeid\0address\0" per node to
 * text (binary node ids up to their first NUL; IPv4 dotted quad; IPv6 as inet_ntop prints
 * it; string addresses as they are).  Sets CHD_STATUS_GENERIC in *flags (and stops) when a
 * node id is not a binary or an address is a list: the caller then decodes generically.
 */
int chd_status_decode(const unsigned char *in, size_t len, int64_t *state,
                      unsigned char *text, size_t cap, size_t *text_len,
                      size_t *num_nodes, int *flags);

/* Text form of an IPv6 address as glibc's inet_ntop(AF_INET6) writes it (no NUL added). */
int chd_ipv6_text(const unsigned char *ip, unsigned char *out, size_t cap, size_t *outlen);
