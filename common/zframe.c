/* zframe: zlib-compressed UDP frames with the "chatbench-v1" dictionary (see zframe.h). */
#include "zframe.h"

#include "proto.h"
#include "zframe_dict.h"

#include <errno.h>
#include <string.h>

static const char dict_text[] = ZFRAME_DICT_TEXT;

const char *zframe_dict(size_t *len)
{
    if (len != NULL)
        *len = sizeof(dict_text) - 1;
    return dict_text;
}

uint32_t zframe_dict_id(void)
{
    /* cheap enough (about 1 KiB) not to cache, and caching would need a once-guard */
    return (uint32_t)adler32(adler32(0L, Z_NULL, 0), (const Bytef *)dict_text,
                             (uInt)(sizeof(dict_text) - 1));
}

size_t zframe_bound(size_t len)
{
    /* deflateBound's worst case for stored blocks, plus marker and DICTID */
    return 1 + len + ((len + 16383) / 16384 + 1) * 5 + 6 + 4 + 4;
}

static int prime_dict(z_stream *s, bool deflating)
{
    int rc = deflating
                 ? deflateSetDictionary(s, (const Bytef *)dict_text, (uInt)(sizeof(dict_text) - 1))
                 : inflateSetDictionary(s, (const Bytef *)dict_text, (uInt)(sizeof(dict_text) - 1));
    return rc == Z_OK ? 0 : -EIO;
}

int zframe_init(struct zframe *z, const struct zframe_params *p)
{
    struct zframe_params d = ZFRAME_PARAMS_DEFAULT;
    if (p == NULL)
        p = &d;
    memset(z, 0, sizeof(*z));
    if (p->window_bits < 10 || p->window_bits > 15 || p->mem_level < 1 || p->mem_level > 9 ||
        (p->level != Z_DEFAULT_COMPRESSION && (p->level < 0 || p->level > 9)))
        return -EINVAL;
    int rc = deflateInit2(&z->def, p->level, Z_DEFLATED, p->window_bits, p->mem_level, p->strategy);
    if (rc != Z_OK)
        return rc == Z_MEM_ERROR ? -ENOMEM : -EINVAL;
    /* 15: accept any window a peer chose; inflate allocates its window lazily */
    rc = inflateInit2(&z->inf, 15);
    if (rc != Z_OK) {
        deflateEnd(&z->def);
        return rc == Z_MEM_ERROR ? -ENOMEM : -EINVAL;
    }
    z->dict = p->dict;
    z->ready = true;
    if (z->dict && prime_dict(&z->def, true) < 0) {
        zframe_destroy(z);
        return -EIO;
    }
    return 0;
}

void zframe_destroy(struct zframe *z)
{
    if (!z->ready)
        return;
    deflateEnd(&z->def);
    inflateEnd(&z->inf);
    z->ready = false;
}

int zframe_compress(struct zframe *z, const char *in, size_t len, char *out, size_t cap)
{
    if (cap < 2 || len > UINT32_MAX)
        return -ENOBUFS;
    if (deflateReset(&z->def) != Z_OK)
        return -EIO;
    /* deflateReset keeps the parameters but forgets the dictionary */
    if (z->dict && prime_dict(&z->def, true) < 0)
        return -EIO;
    out[0] = (char)PROTO_ZMARK;
    z->def.next_in = (Bytef *)(uintptr_t)in; /* zlib's API is not const-correct */
    z->def.avail_in = (uInt)len;
    z->def.next_out = (Bytef *)out + 1;
    z->def.avail_out = (uInt)(cap - 1 > UINT32_MAX ? UINT32_MAX : cap - 1);
    int rc = deflate(&z->def, Z_FINISH);
    if (rc == Z_STREAM_END)
        return (int)(1 + z->def.total_out);
    return (rc == Z_OK || rc == Z_BUF_ERROR) ? -ENOBUFS : -EIO;
}

/* One inflate step that answers Z_NEED_DICT with our dictionary when the ids match. */
static int inflate_step(z_stream *s)
{
    int rc = inflate(s, Z_FINISH);
    if (rc == Z_NEED_DICT) {
        if (s->adler != zframe_dict_id() || prime_dict(s, false) < 0)
            return Z_DATA_ERROR; /* another dictionary: we cannot read it */
        rc = inflate(s, Z_FINISH);
    }
    return rc;
}

int zframe_decompress(struct zframe *z, const char *in, size_t len, char *out, size_t max)
{
    if (len < 1 || (unsigned char)in[0] != PROTO_ZMARK || len > UINT32_MAX)
        return -EBADMSG;
    if (max > INT32_MAX)
        max = INT32_MAX;
    if (inflateReset(&z->inf) != Z_OK)
        return -EIO;
    z_stream *s = &z->inf;
    s->next_in = (Bytef *)(uintptr_t)(in + 1);
    s->avail_in = (uInt)(len - 1);
    s->next_out = (Bytef *)out;
    s->avail_out = (uInt)max;
    int rc = inflate_step(s);
    if (rc != Z_STREAM_END && s->avail_out == 0) {
        /* out is full: one more byte of output means a bomb; none means the stream may
         * just have its end-of-block and checksum left */
        char probe;
        s->next_out = (Bytef *)&probe;
        s->avail_out = 1;
        rc = inflate_step(s);
        if (s->avail_out == 0)
            return -EMSGSIZE;
    }
    if (rc != Z_STREAM_END || s->avail_in != 0)
        return -EBADMSG; /* corrupt, truncated, or trailing garbage */
    return (int)s->total_out;
}
