/* safetensors.c - mmap'd safetensors reader (single file or sharded) and writer.
 *
 * A set holds one or more files mapped read-only and the union of their tensors, sorted
 * by name once complete so lookups are a binary search. Every header entry is checked
 * before any pointer into the data is handed out; errors are one log line naming the
 * file and the tensor. */
#include "safetensors.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "mamba_stream.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors data is little-endian; this code assumes a little-endian host"
#endif

/* The reference reader refuses headers over 100 MB; so do we. */
#define ST_MAX_HEADER ((uint64_t)100 << 20)
/* Offsets and shapes arrive as JSON doubles: integers are exact up to 2^53. */
#define ST_MAX_INT 9007199254740992.0

typedef struct {
    char *path;
    void *map;    /* the whole file, PROT_READ */
    size_t size;
} st_file;

struct ms_st_set {
    st_file *files;
    int n_files, cap_files;
    ms_st_tensor *tensors; /* sorted by name once the set is complete */
    int n_tensors, cap_tensors;
};

static const struct {
    const char *name;
    size_t size;
} k_dtypes[] = {
    [MS_DT_F32] = {"F32", 4}, [MS_DT_F16] = {"F16", 2}, [MS_DT_BF16] = {"BF16", 2},
    [MS_DT_F64] = {"F64", 8}, [MS_DT_I64] = {"I64", 8}, [MS_DT_I32] = {"I32", 4},
    [MS_DT_I16] = {"I16", 2}, [MS_DT_I8] = {"I8", 1},   [MS_DT_U8] = {"U8", 1},
    [MS_DT_BOOL] = {"BOOL", 1},
};
#define N_DTYPES ((int)(sizeof k_dtypes / sizeof k_dtypes[0]))

static int dtype_valid(ms_dtype dt) { return (int)dt >= 0 && (int)dt < N_DTYPES; }

const char *ms_dtype_name(ms_dtype dt) { return dtype_valid(dt) ? k_dtypes[dt].name : "?"; }

size_t ms_dtype_size(ms_dtype dt) { return dtype_valid(dt) ? k_dtypes[dt].size : 0; }

static int dtype_parse(const char *s, ms_dtype *out)
{
    for (int i = 0; i < N_DTYPES; i++)
        if (strcmp(s, k_dtypes[i].name) == 0) {
            *out = (ms_dtype)i;
            return 0;
        }
    return -1;
}

/* "[128, 1, 4]" */
static const char *fmt_shape(char *buf, size_t n, const int64_t *shape, int nd)
{
    size_t k = (size_t)snprintf(buf, n, "[");
    for (int i = 0; i < nd && k < n; i++)
        k += (size_t)snprintf(buf + k, n - k, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (k < n) snprintf(buf + k, n - k, "]");
    return buf;
}

/* ------------------------------------------------------------- set building */

static int set_new(ms_st_set **out)
{
    *out = calloc(1, sizeof **out);
    if (!*out) {
        ms_error("safetensors: out of memory");
        return MS_ERR_NOMEM;
    }
    return MS_OK;
}

void ms_st_close(ms_st_set *set)
{
    if (!set) return;
    for (int i = 0; i < set->n_tensors; i++) free((char *)set->tensors[i].name);
    for (int i = 0; i < set->n_files; i++) {
        if (set->files[i].map) munmap(set->files[i].map, set->files[i].size);
        free(set->files[i].path);
    }
    free(set->tensors);
    free(set->files);
    free(set);
}

static ms_st_tensor *push_tensor(ms_st_set *set)
{
    if (set->n_tensors == set->cap_tensors) {
        int cap = set->cap_tensors ? 2 * set->cap_tensors : 64;
        ms_st_tensor *t = realloc(set->tensors, (size_t)cap * sizeof *t);
        if (!t) return NULL;
        set->tensors = t;
        set->cap_tensors = cap;
    }
    ms_st_tensor *t = &set->tensors[set->n_tensors++];
    memset(t, 0, sizeof *t);
    return t;
}

/* A JSON number that is an integer in [0, 2^53]. */
static int json_u53(const cJSON *v, int64_t *out)
{
    if (!cJSON_IsNumber(v)) return -1;
    double d = v->valuedouble;
    if (!(d >= 0 && d <= ST_MAX_INT) || (double)(int64_t)d != d) return -1;
    *out = (int64_t)d;
    return 0;
}

/* Fill t from one header entry; data is the start of the file's data section. */
static int parse_entry(const char *path, const char *name, const cJSON *e, const uint8_t *data,
                       size_t data_size, ms_st_tensor *t)
{
    char sb[256];
    if (!cJSON_IsObject(e)) {
        ms_error("%s: tensor '%s': header entry is not an object", path, name);
        return MS_ERR_FORMAT;
    }
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(e, "dtype");
    if (!cJSON_IsString(dt) || dtype_parse(dt->valuestring, &t->dtype) != 0) {
        ms_error("%s: tensor '%s': unknown dtype '%s'", path, name,
                 cJSON_IsString(dt) ? dt->valuestring : "(missing)");
        return MS_ERR_FORMAT;
    }
    const cJSON *sh = cJSON_GetObjectItemCaseSensitive(e, "shape");
    if (!cJSON_IsArray(sh) || cJSON_GetArraySize(sh) > MS_ST_MAX_DIM) {
        ms_error("%s: tensor '%s': shape is missing or has more than %d dimensions", path, name,
                 MS_ST_MAX_DIM);
        return MS_ERR_FORMAT;
    }
    t->n_dim = 0;
    t->n_elem = 1;
    const cJSON *d;
    cJSON_ArrayForEach(d, sh) {
        int64_t v;
        if (json_u53(d, &v) != 0) {
            ms_error("%s: tensor '%s': shape entry %d is not a non-negative integer", path, name,
                     t->n_dim);
            return MS_ERR_FORMAT;
        }
        if (v > 0 && t->n_elem > INT64_MAX / v) {
            ms_error("%s: tensor '%s': shape too large", path, name);
            return MS_ERR_FORMAT;
        }
        t->shape[t->n_dim++] = v;
        t->n_elem *= v;
    }
    const cJSON *off = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
    int64_t begin, end;
    if (!cJSON_IsArray(off) || cJSON_GetArraySize(off) != 2 ||
        json_u53(cJSON_GetArrayItem(off, 0), &begin) != 0 ||
        json_u53(cJSON_GetArrayItem(off, 1), &end) != 0) {
        ms_error("%s: tensor '%s': data_offsets must be two non-negative integers", path, name);
        return MS_ERR_FORMAT;
    }
    if (begin > end) {
        ms_error("%s: tensor '%s': data_offsets [%lld, %lld] end before they begin", path, name,
                 (long long)begin, (long long)end);
        return MS_ERR_FORMAT;
    }
    if ((uint64_t)end > data_size) {
        ms_error("%s: tensor '%s': data_offsets [%lld, %lld] beyond end of file (%zu data bytes)",
                 path, name, (long long)begin, (long long)end, data_size);
        return MS_ERR_FORMAT;
    }
    size_t esz = k_dtypes[t->dtype].size;
    if (t->n_elem > INT64_MAX / (int64_t)esz || t->n_elem * (int64_t)esz != end - begin) {
        ms_error("%s: tensor '%s': shape %s of %s needs %lld bytes, data_offsets [%lld, %lld] "
                 "hold %lld",
                 path, name, fmt_shape(sb, sizeof sb, t->shape, t->n_dim), k_dtypes[t->dtype].name,
                 t->n_elem > INT64_MAX / (int64_t)esz ? -1LL : (long long)(t->n_elem * (int64_t)esz),
                 (long long)begin, (long long)end, (long long)(end - begin));
        return MS_ERR_FORMAT;
    }
    t->data = data + begin;
    t->nbytes = (size_t)(end - begin);
    return MS_OK;
}

static int cmp_by_data(const void *a, const void *b)
{
    const ms_st_tensor *x = *(const ms_st_tensor *const *)a, *y = *(const ms_st_tensor *const *)b;
    const uint8_t *px = x->data, *py = y->data;
    return px < py ? -1 : px > py;
}

/* No two non-empty tensors of one file may share a byte. */
static int check_overlap(const char *path, ms_st_tensor *t, int n)
{
    if (n < 2) return MS_OK;
    const ms_st_tensor **by = malloc((size_t)n * sizeof *by);
    if (!by) {
        ms_error("%s: out of memory", path);
        return MS_ERR_NOMEM;
    }
    for (int i = 0; i < n; i++) by[i] = &t[i];
    qsort(by, (size_t)n, sizeof *by, cmp_by_data);
    int rc = MS_OK;
    const ms_st_tensor *last = NULL; /* the non-empty tensor reaching furthest so far */
    for (int i = 0; i < n; i++) {
        if (by[i]->nbytes == 0) continue;
        const uint8_t *p = by[i]->data;
        if (last && p < (const uint8_t *)last->data + last->nbytes) {
            ms_error("%s: tensor '%s' overlaps tensor '%s' in the data section", path,
                     by[i]->name, last->name);
            rc = MS_ERR_FORMAT;
            break;
        }
        if (!last || p + by[i]->nbytes > (const uint8_t *)last->data + last->nbytes) last = by[i];
    }
    free(by);
    return rc;
}

/* Parse the header of the mapped file f and append its tensors to set. */
static int parse_header(ms_st_set *set, const st_file *f)
{
    const char *path = f->path;
    const uint8_t *map = f->map;
    uint64_t hlen = 0;
    for (int i = 0; i < 8; i++) hlen |= (uint64_t)map[i] << (8 * i);
    if (hlen > f->size - 8) {
        ms_error("%s: header length %llu beyond end of file (%zu bytes): truncated or not "
                 "safetensors", path, (unsigned long long)hlen, f->size);
        return MS_ERR_FORMAT;
    }
    if (hlen > ST_MAX_HEADER) {
        ms_error("%s: header length %llu is too large", path, (unsigned long long)hlen);
        return MS_ERR_FORMAT;
    }
    cJSON *root = cJSON_ParseWithLength((const char *)map + 8, (size_t)hlen);
    if (!cJSON_IsObject(root)) {
        ms_error("%s: header is not a JSON object", path);
        cJSON_Delete(root);
        return MS_ERR_FORMAT;
    }
    const uint8_t *data = map + 8 + hlen;
    size_t data_size = f->size - 8 - (size_t)hlen;
    int first = set->n_tensors, rc = MS_OK;
    const cJSON *e;
    cJSON_ArrayForEach(e, root) {
        if (!e->string) continue;
        if (strcmp(e->string, "__metadata__") == 0) continue;
        ms_st_tensor *t = push_tensor(set);
        char *name = t ? strdup(e->string) : NULL;
        if (!name) {
            if (t) set->n_tensors--;
            ms_error("%s: out of memory", path);
            rc = MS_ERR_NOMEM;
            break;
        }
        t->name = name;
        t->file = path;
        rc = parse_entry(path, name, e, data, data_size, t);
        if (rc) break;
    }
    cJSON_Delete(root);
    if (rc) return rc;
    return check_overlap(path, set->tensors + first, set->n_tensors - first);
}

/* Map path read-only and append its tensors to set. */
static int add_file(ms_st_set *set, const char *path)
{
    if (set->n_files == set->cap_files) {
        int cap = set->cap_files ? 2 * set->cap_files : 4;
        st_file *f = realloc(set->files, (size_t)cap * sizeof *f);
        if (!f) goto nomem;
        set->files = f;
        set->cap_files = cap;
    }
    st_file *f = &set->files[set->n_files];
    memset(f, 0, sizeof *f);
    f->path = strdup(path);
    if (!f->path) goto nomem;
    set->n_files++; /* from here ms_st_close frees it */

    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        ms_error("%s: cannot open: %s", path, strerror(errno));
        return MS_ERR_IO;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        ms_error("%s: not a regular file", path);
        close(fd);
        return MS_ERR_IO;
    }
    if (st.st_size < 8) {
        ms_error("%s: truncated (%lld bytes, less than the 8-byte header length)", path,
                 (long long)st.st_size);
        close(fd);
        return MS_ERR_FORMAT;
    }
    void *map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED) {
        ms_error("%s: mmap failed: %s", path, strerror(errno));
        return MS_ERR_IO;
    }
    f->map = map;
    f->size = (size_t)st.st_size;
    return parse_header(set, f);
nomem:
    ms_error("%s: out of memory", path);
    return MS_ERR_NOMEM;
}

static int cmp_by_name(const void *a, const void *b)
{
    return strcmp(((const ms_st_tensor *)a)->name, ((const ms_st_tensor *)b)->name);
}

/* Sort by name for ms_st_find; a name twice (within or across shards) is an error. */
static int finish_set(ms_st_set *set)
{
    if (set->n_tensors > 1)
        qsort(set->tensors, (size_t)set->n_tensors, sizeof *set->tensors, cmp_by_name);
    for (int i = 1; i < set->n_tensors; i++)
        if (strcmp(set->tensors[i - 1].name, set->tensors[i].name) == 0) {
            ms_error("%s: tensor '%s' appears twice (also in %s)", set->tensors[i].file,
                     set->tensors[i].name, set->tensors[i - 1].file);
            return MS_ERR_FORMAT;
        }
    return MS_OK;
}

int ms_st_open_file(const char *path, ms_st_set **out)
{
    ms_st_set *set;
    *out = NULL;
    int rc = set_new(&set);
    if (rc) return rc;
    if ((rc = add_file(set, path)) || (rc = finish_set(set))) {
        ms_st_close(set);
        return rc;
    }
    *out = set;
    return MS_OK;
}

/* ------------------------------------------------------------------ shards */

static char *join_path(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s/%s", dir, name);
    return p;
}

static cJSON *read_json(const char *path, int *rc)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    cJSON *root = NULL;
    *rc = MS_ERR_IO;
    if (!f) {
        ms_error("%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    long n = -1;
    if (fseek(f, 0, SEEK_END) == 0) n = ftell(f);
    if (n < 0 || fseek(f, 0, SEEK_SET) != 0) {
        ms_error("%s: cannot read", path);
        goto done;
    }
    buf = malloc((size_t)n + 1);
    if (!buf) {
        ms_error("%s: out of memory", path);
        *rc = MS_ERR_NOMEM;
        goto done;
    }
    if (fread(buf, 1, (size_t)n, f) != (size_t)n) {
        ms_error("%s: cannot read", path);
        goto done;
    }
    root = cJSON_ParseWithLength(buf, (size_t)n);
    if (!root) {
        ms_error("%s: JSON syntax error", path);
        *rc = MS_ERR_FORMAT;
    } else {
        *rc = MS_OK;
    }
done:
    free(buf);
    fclose(f);
    return root;
}

/* Open each distinct shard named in the index's weight_map once, then check that every
 * listed tensor is in the shard the index names. */
static int open_index(const char *dir, const char *index_path, ms_st_set *set)
{
    int rc;
    cJSON *root = read_json(index_path, &rc);
    const char **shards = NULL;
    int n_shards = 0;
    if (!root) return rc;
    const cJSON *wm = cJSON_GetObjectItemCaseSensitive(root, "weight_map");
    if (!cJSON_IsObject(wm) || !wm->child) {
        ms_error("%s: no 'weight_map' object (or it is empty)", index_path);
        rc = MS_ERR_FORMAT;
        goto done;
    }
    shards = malloc((size_t)cJSON_GetArraySize(wm) * sizeof *shards);
    if (!shards) {
        ms_error("%s: out of memory", index_path);
        rc = MS_ERR_NOMEM;
        goto done;
    }
    const cJSON *e;
    cJSON_ArrayForEach(e, wm) {
        if (!cJSON_IsString(e) || !e->valuestring[0]) {
            ms_error("%s: weight_map entry for tensor '%s' is not a file name", index_path,
                     e->string);
            rc = MS_ERR_FORMAT;
            goto done;
        }
        int k = 0;
        while (k < n_shards && strcmp(shards[k], e->valuestring) != 0) k++;
        if (k == n_shards) shards[n_shards++] = e->valuestring;
    }
    for (int k = 0; k < n_shards; k++) {
        char *p = join_path(dir, shards[k]);
        if (!p) {
            ms_error("%s: out of memory", index_path);
            rc = MS_ERR_NOMEM;
            goto done;
        }
        rc = add_file(set, p);
        free(p);
        if (rc) goto done;
    }
    if ((rc = finish_set(set))) goto done;
    cJSON_ArrayForEach(e, wm) {
        const ms_st_tensor *t = ms_st_find(set, e->string);
        size_t dl = strlen(dir);
        if (!t || strncmp(t->file, dir, dl) != 0 || strcmp(t->file + dl + 1, e->valuestring) != 0) {
            ms_error("%s: tensor '%s' is listed in shard '%s' but absent from it", index_path,
                     e->string, e->valuestring);
            rc = MS_ERR_FORMAT;
            goto done;
        }
    }
done:
    free(shards);
    cJSON_Delete(root);
    return rc;
}

int ms_st_open_dir(const char *dir, ms_st_set **out)
{
    ms_st_set *set = NULL;
    char *index = join_path(dir, "model.safetensors.index.json");
    char *single = join_path(dir, "model.safetensors");
    int rc = MS_ERR_NOMEM;
    *out = NULL;
    if (!index || !single) {
        ms_error("%s: out of memory", dir);
        goto done;
    }
    if ((rc = set_new(&set))) goto done;
    if (access(index, F_OK) == 0) {
        rc = open_index(dir, index, set);
    } else if (access(single, F_OK) == 0) {
        if (!(rc = add_file(set, single))) rc = finish_set(set);
    } else {
        ms_error("%s: no model.safetensors or model.safetensors.index.json", dir);
        rc = MS_ERR_IO;
    }
done:
    if (rc) ms_st_close(set);
    else *out = set;
    free(index);
    free(single);
    return rc;
}

/* ------------------------------------------------------------------ lookup */

const ms_st_tensor *ms_st_find(const ms_st_set *set, const char *name)
{
    if (!set || !name || set->n_tensors == 0) return NULL;
    ms_st_tensor key = {.name = name};
    return bsearch(&key, set->tensors, (size_t)set->n_tensors, sizeof key, cmp_by_name);
}

int ms_st_count(const ms_st_set *set) { return set ? set->n_tensors : 0; }

const ms_st_tensor *ms_st_at(const ms_st_set *set, int i)
{
    return set && i >= 0 && i < set->n_tensors ? &set->tensors[i] : NULL;
}

/* -------------------------------------------------------------- conversion */

static float f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, mant = h & 0x3ff, bits;
    if (exp == 0x1f) {
        bits = sign | 0x7f800000u | (mant << 13); /* inf, or nan keeping its payload */
    } else if (exp != 0) {
        bits = sign | ((exp + 112) << 23) | (mant << 13); /* rebias 15 -> 127 */
    } else if (mant == 0) {
        bits = sign;
    } else {
        /* subnormal mant * 2^-24: shift to a leading 1 and lower the exponent to match */
        uint32_t e = 113;
        while (!(mant & 0x400)) {
            mant <<= 1;
            e--;
        }
        bits = sign | (e << 23) | ((mant & 0x3ff) << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

static uint16_t load_u16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }

int ms_st_to_f32(const ms_st_tensor *t, float *dst)
{
    const uint8_t *p = t->data;
    size_t n = (size_t)t->n_elem;
    switch (t->dtype) {
    case MS_DT_F32:
        if (n) memcpy(dst, p, n * 4);
        return MS_OK;
    case MS_DT_F16:
        for (size_t i = 0; i < n; i++) dst[i] = f16_to_f32(load_u16(p + 2 * i));
        return MS_OK;
    case MS_DT_BF16:
        for (size_t i = 0; i < n; i++) {
            uint32_t bits = (uint32_t)load_u16(p + 2 * i) << 16;
            memcpy(&dst[i], &bits, 4);
        }
        return MS_OK;
    case MS_DT_F64:
        for (size_t i = 0; i < n; i++) {
            double d;
            memcpy(&d, p + 8 * i, 8);
            dst[i] = (float)d;
        }
        return MS_OK;
    default:
        ms_error("%s: tensor '%s': cannot convert %s to float32", t->file ? t->file : "?",
                 t->name ? t->name : "?", ms_dtype_name(t->dtype));
        return MS_ERR_MODEL;
    }
}

int ms_st_to_i64(const ms_st_tensor *t, int64_t *dst)
{
    const uint8_t *p = t->data;
    size_t n = (size_t)t->n_elem;
    switch (t->dtype) {
    case MS_DT_I64:
        if (n) memcpy(dst, p, n * 8);
        return MS_OK;
    case MS_DT_I32:
        for (size_t i = 0; i < n; i++) {
            int32_t v;
            memcpy(&v, p + 4 * i, 4);
            dst[i] = v;
        }
        return MS_OK;
    default:
        ms_error("%s: tensor '%s': cannot convert %s to int64", t->file ? t->file : "?",
                 t->name ? t->name : "?", ms_dtype_name(t->dtype));
        return MS_ERR_MODEL;
    }
}

/* ------------------------------------------------------------------- write */

static int check_outs(const char *path, const ms_st_out *t, int n)
{
    for (int i = 0; i < n; i++) {
        const char *name = t[i].name ? t[i].name : "(null)";
        if (!t[i].name || !t[i].name[0] || strcmp(t[i].name, "__metadata__") == 0 ||
            !dtype_valid(t[i].dtype) || t[i].n_dim < 0 || t[i].n_dim > MS_ST_MAX_DIM) {
            ms_error("%s: tensor '%s': bad name, dtype or rank", path, name);
            return MS_ERR_ARG;
        }
        for (int d = 0; d < t[i].n_dim; d++)
            if (t[i].shape[d] < 0 || (double)t[i].shape[d] > ST_MAX_INT) {
                ms_error("%s: tensor '%s': shape entry %d out of range", path, name, d);
                return MS_ERR_ARG;
            }
        for (int j = 0; j < i; j++)
            if (strcmp(t[i].name, t[j].name) == 0) {
                ms_error("%s: tensor '%s' given twice", path, name);
                return MS_ERR_ARG;
            }
    }
    return MS_OK;
}

static size_t out_nbytes(const ms_st_out *t)
{
    size_t n = ms_dtype_size(t->dtype);
    for (int d = 0; d < t->n_dim; d++) n *= (size_t)t->shape[d];
    return n;
}

/* The JSON header, space-padded so the data section starts 8-byte aligned. */
static char *build_header(const ms_st_out *t, int n, size_t *len)
{
    cJSON *root = cJSON_CreateObject(), *meta = cJSON_CreateObject();
    char *json = NULL, *out = NULL;
    if (!root || !meta || !cJSON_AddStringToObject(meta, "format", "pt")) {
        cJSON_Delete(meta);
        goto done;
    }
    cJSON_AddItemToObject(root, "__metadata__", meta);
    double off = 0;
    for (int i = 0; i < n; i++) {
        cJSON *e = cJSON_AddObjectToObject(root, t[i].name);
        cJSON *sh = e ? cJSON_AddArrayToObject(e, "shape") : NULL;
        cJSON *of = sh ? cJSON_AddArrayToObject(e, "data_offsets") : NULL;
        if (!of || !cJSON_AddStringToObject(e, "dtype", ms_dtype_name(t[i].dtype))) goto done;
        for (int d = 0; d < t[i].n_dim; d++) {
            cJSON *v = cJSON_CreateNumber((double)t[i].shape[d]);
            if (!v) goto done;
            cJSON_AddItemToArray(sh, v);
        }
        double end = off + (double)out_nbytes(&t[i]);
        cJSON *b = cJSON_CreateNumber(off), *en = cJSON_CreateNumber(end);
        if (b) cJSON_AddItemToArray(of, b);
        if (en) cJSON_AddItemToArray(of, en);
        if (!b || !en) goto done;
        off = end;
    }
    json = cJSON_PrintUnformatted(root);
    if (!json) goto done;
    size_t l = strlen(json), padded = (l + 7) & ~(size_t)7;
    out = malloc(padded + 1);
    if (out) {
        memcpy(out, json, l);
        memset(out + l, ' ', padded - l);
        out[padded] = 0;
        *len = padded;
    }
done:
    free(json);
    cJSON_Delete(root);
    return out;
}

int ms_st_write(const char *path, const ms_st_out *tensors, int n)
{
    if (!path || n < 0 || (n > 0 && !tensors)) {
        ms_error("ms_st_write: bad arguments");
        return MS_ERR_ARG;
    }
    int rc = check_outs(path, tensors, n);
    if (rc) return rc;
    size_t hlen = 0;
    char *header = build_header(tensors, n, &hlen);
    size_t plen = strlen(path) + 16;
    char *tmp = malloc(plen);
    FILE *f = NULL;
    if (!header || !tmp) {
        ms_error("%s: out of memory", path);
        free(header);
        free(tmp);
        return MS_ERR_NOMEM;
    }
    snprintf(tmp, plen, "%s.tmp.XXXXXX", path);
    int fd = mkstemp(tmp);
    if (fd < 0 || fchmod(fd, 0644) != 0 || !(f = fdopen(fd, "wb"))) {
        ms_error("%s: cannot create: %s", tmp, strerror(errno));
        if (fd >= 0) {
            close(fd);
            unlink(tmp);
        }
        rc = MS_ERR_IO;
        goto done;
    }
    uint8_t le[8];
    for (int i = 0; i < 8; i++) le[i] = (uint8_t)((uint64_t)hlen >> (8 * i));
    int ok = fwrite(le, 1, 8, f) == 8 && fwrite(header, 1, hlen, f) == hlen;
    for (int i = 0; ok && i < n; i++) {
        size_t nb = out_nbytes(&tensors[i]);
        ok = nb == 0 || (tensors[i].data && fwrite(tensors[i].data, 1, nb, f) == nb);
    }
    if (fclose(f) != 0) ok = 0;
    if (!ok || rename(tmp, path) != 0) {
        ms_error("%s: write failed: %s", path, strerror(errno));
        unlink(tmp);
        rc = MS_ERR_IO;
    }
done:
    free(header);
    free(tmp);
    return rc;
}
