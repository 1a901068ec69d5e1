/* safetensors.h - read (mmap) and write safetensors files (internal).
 *
 * Format: 8-byte little-endian header length N, N bytes of JSON
 * {"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, "__metadata__": {..}},
 * then the data; offsets are relative to the end of the header. Opening checks every
 * entry: known dtype, shape * dtype size == end - begin, offsets inside the file, no two
 * tensors overlapping. Errors name the file and the tensor. */
#ifndef MS_SAFETENSORS_H
#define MS_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    MS_DT_F32, MS_DT_F16, MS_DT_BF16, MS_DT_F64, MS_DT_I64, MS_DT_I32, MS_DT_I16, MS_DT_I8,
    MS_DT_U8, MS_DT_BOOL
} ms_dtype;

#define MS_ST_MAX_DIM 8

typedef struct {
    const char *name;
    ms_dtype dtype;
    int n_dim;
    int64_t shape[MS_ST_MAX_DIM];
    int64_t n_elem;
    const void *data;   /* into the mmap; not aligned beyond 1 byte in general */
    size_t nbytes;
    const char *file;   /* path of the file holding it */
} ms_st_tensor;

typedef struct ms_st_set ms_st_set;

const char *ms_dtype_name(ms_dtype dt);
size_t ms_dtype_size(ms_dtype dt);

/* Open one safetensors file. Returns 0 and *out, or MS_ERR_IO / MS_ERR_FORMAT. */
int ms_st_open_file(const char *path, ms_st_set **out);
/* Open a model directory's weights: DIR/model.safetensors, or the shards named by
 * DIR/model.safetensors.index.json ("weight_map"). A tensor named in the index but
 * absent from its shard is a format error. */
int ms_st_open_dir(const char *dir, ms_st_set **out);
void ms_st_close(ms_st_set *set);

/* NULL when absent. */
const ms_st_tensor *ms_st_find(const ms_st_set *set, const char *name);
int ms_st_count(const ms_st_set *set);
const ms_st_tensor *ms_st_at(const ms_st_set *set, int i);

/* Copy a tensor to float32 (F32, F16, BF16, F64 accepted). */
int ms_st_to_f32(const ms_st_tensor *t, float *dst);
/* Copy an integer tensor (I64, I32) to int64. */
int ms_st_to_i64(const ms_st_tensor *t, int64_t *dst);

/* Writing: tensors given by name, dtype, shape and data; written to PATH.tmp.XXXXXX and
 * renamed to PATH on success, so a failed write leaves no partial file. */
typedef struct {
    const char *name;
    ms_dtype dtype;
    int n_dim;
    int64_t shape[MS_ST_MAX_DIM];
    const void *data;
} ms_st_out;
int ms_st_write(const char *path, const ms_st_out *tensors, int n);

#endif
