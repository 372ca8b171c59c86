/* zframe: zlib-compressed UDP frames (PROTOCOL.md, "Compression (UDP)").
 *
 * A compressed datagram is the byte PROTO_ZMARK (0xFF) followed by one zlib stream
 * (RFC 1950) holding one frame. The compressor may use the preset dictionary
 * "chatbench-v1" (common/zframe_dict.h); the decompressor accepts streams with that
 * dictionary or with none, and refuses any other dictionary id.
 *
 * A struct zframe is per-thread state: one deflate and one inflate stream, reset (not
 * re-created) for every frame, so a call costs no allocation. Not thread-safe: give each
 * thread its own. */
#ifndef CHATBENCH_ZFRAME_H
#define CHATBENCH_ZFRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <zlib.h>

/* Compressor settings. ZFRAME_PARAMS_DEFAULT is what the measurements in
 * tests/unit/test_zframe.c found best for 20..4096-byte chat frames. */
struct zframe_params {
    int level;       /* 1..9 (Z_DEFAULT_COMPRESSION allowed) */
    int window_bits; /* 9..15; the dictionary must fit: 10 or more */
    int mem_level;   /* 1..9 */
    int strategy;    /* Z_DEFAULT_STRATEGY, Z_FIXED, Z_FILTERED, Z_HUFFMAN_ONLY, Z_RLE */
    bool dict;       /* prime the compressor with the "chatbench-v1" dictionary */
};

#define ZFRAME_PARAMS_DEFAULT                                                                      \
    ((struct zframe_params){.level = 9,                                                            \
                            .window_bits = 15,                                                     \
                            .mem_level = 9,                                                        \
                            .strategy = Z_DEFAULT_STRATEGY,                                        \
                            .dict = true})

struct zframe {
    z_stream def; /* compressor, reset per frame */
    z_stream inf; /* decompressor, reset per frame */
    bool dict;    /* the compressor uses the dictionary */
    bool ready;   /* both streams initialised (zframe_destroy is safe either way) */
};

/* Prepares z (caller-owned storage) with params p (NULL: ZFRAME_PARAMS_DEFAULT).
 * Returns 0, -EINVAL for bad params, or -ENOMEM. Pair with zframe_destroy. */
int zframe_init(struct zframe *z, const struct zframe_params *p);

/* Releases the zlib streams. Safe on a zeroed or already destroyed struct. */
void zframe_destroy(struct zframe *z);

/* Compresses in[0..len) into out as one datagram: PROTO_ZMARK then a zlib stream.
 * Returns the bytes written (marker included), -ENOBUFS when it does not fit in cap,
 * or -EIO on an internal zlib error. len may be 0. */
int zframe_compress(struct zframe *z, const char *in, size_t len, char *out, size_t cap);

/* Decompresses the datagram in[0..len) (marker included) into out, producing at most
 * max bytes. Returns the frame's length, -EMSGSIZE when it would inflate past max (a zlib
 * bomb: stops after max bytes, allocates nothing), or -EBADMSG when the marker is missing
 * or the stream is corrupt, truncated, followed by extra bytes, or uses another
 * dictionary. */
int zframe_decompress(struct zframe *z, const char *in, size_t len, char *out, size_t max);

/* An upper bound of zframe_compress's output for len input bytes (marker included). */
size_t zframe_bound(size_t len);

/* The "chatbench-v1" dictionary and its Adler-32 (the DICTID zlib writes in headers). */
const char *zframe_dict(size_t *len);
uint32_t zframe_dict_id(void);

#endif
