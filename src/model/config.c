/* config.c - config.json (four layouts) and the input alphabet of a model directory.
 *
 * Layouts: Hugging Face MambaForCausalLM, FalconMambaForCausalLM, Mamba2ForCausalLM and
 * mamba_ssm's MambaConfig (d_model + ssm_cfg). Each fills ms_config with the same
 * meaning; shapes are checked later against the tensors, so defaults follow the layout's
 * own Python defaults. */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

/* Largest dimension accepted; keeps every derived size (in_proj rows, ...) inside int. */
#define CFG_MAX_DIM (1 << 24)
#define NAN_MARKER "__ms_NaN__"

/* ------------------------------------------------------------------- JSON */

static char *read_whole(const char *path, size_t *len, int *rc)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    long n = -1;
    if (!f) {
        ms_error("%s: cannot open: %s", path, strerror(errno));
        *rc = MS_ERR_IO;
        return NULL;
    }
    if (fseek(f, 0, SEEK_END) == 0) n = ftell(f);
    if (n < 0 || fseek(f, 0, SEEK_SET) != 0) {
        ms_error("%s: cannot read", path);
        *rc = MS_ERR_IO;
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
        *rc = MS_ERR_IO;
        free(buf);
        buf = NULL;
        goto done;
    }
    buf[n] = 0;
    *len = (size_t)n;
    *rc = MS_OK;
done:
    fclose(f);
    return buf;
}

static int ident_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

/* The bare word w at src[i] (not part of a longer identifier)? */
static int word_at(const char *src, size_t n, size_t i, const char *w)
{
    size_t k = strlen(w);
    if (i + k > n || memcmp(src + i, w, k) != 0) return 0;
    if (i > 0 && ident_char(src[i - 1])) return 0;
    return i + k == n || !ident_char(src[i + k]);
}

/* Rewrite bare Infinity / -Infinity / NaN outside strings: +-1e999 (strtod gives +-inf)
 * and a string marker for NaN. Newlines are kept so error line numbers stay true. */
static char *fix_nonfinite(const char *src, size_t n, size_t *out_len)
{
    char *dst = malloc(4 * n + 1); /* "NaN" (3) -> "\"__ms_NaN__\"" (12) is the most growth */
    size_t j = 0;
    int in_str = 0;
    if (!dst) return NULL;
    for (size_t i = 0; i < n;) {
        char c = src[i];
        if (in_str) {
            dst[j++] = src[i++];
            if (c == '\\' && i < n) dst[j++] = src[i++];
            else if (c == '"') in_str = 0;
            continue;
        }
        const char *rep = NULL;
        size_t skip = 0;
        if (c == '"') in_str = 1;
        else if (word_at(src, n, i, "-Infinity")) rep = "-1e999", skip = 9;
        else if (word_at(src, n, i, "Infinity")) rep = "1e999", skip = 8;
        else if (word_at(src, n, i, "NaN")) rep = "\"" NAN_MARKER "\"", skip = 3;
        if (rep) {
            size_t k = strlen(rep);
            memcpy(dst + j, rep, k);
            j += k;
            i += skip;
        } else {
            dst[j++] = src[i++];
        }
    }
    dst[j] = 0;
    *out_len = j;
    return dst;
}

/* ms_json_parse_file with the status a caller needs to tell I/O from format errors. */
static cJSON *parse_file_rc(const char *path, int *rc)
{
    size_t n = 0, m = 0;
    char *raw = read_whole(path, &n, rc);
    if (!raw) return NULL;
    char *fixed = fix_nonfinite(raw, n, &m);
    free(raw);
    if (!fixed) {
        ms_error("%s: out of memory", path);
        *rc = MS_ERR_NOMEM;
        return NULL;
    }
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(fixed, m + 1, &end, 1);
    if (!root) {
        int line = 1;
        for (const char *p = fixed; end && p < end && p < fixed + m; p++) line += *p == '\n';
        ms_error("%s: JSON syntax error near line %d", path, line);
        *rc = MS_ERR_FORMAT;
    } else {
        *rc = MS_OK;
    }
    free(fixed);
    return root;
}

cJSON *ms_json_parse_file(const char *path)
{
    int rc;
    return parse_file_rc(path, &rc);
}

static int nonfinite_name(const char *s, double *out)
{
    if (strcmp(s, "Infinity") == 0 || strcmp(s, "inf") == 0) *out = INFINITY;
    else if (strcmp(s, "-Infinity") == 0 || strcmp(s, "-inf") == 0) *out = -INFINITY;
    else if (strcmp(s, "NaN") == 0 || strcmp(s, "nan") == 0) *out = NAN;
    else return -1;
    return 0;
}

/* A JSON value as a number: plain, {"__float__": "Infinity"}, or the NaN marker. */
static int value_number(const cJSON *v, double *out)
{
    if (cJSON_IsNumber(v)) {
        *out = v->valuedouble;
        return 0;
    }
    if (cJSON_IsString(v) && strcmp(v->valuestring, NAN_MARKER) == 0) {
        *out = NAN;
        return 0;
    }
    if (cJSON_IsObject(v)) {
        const cJSON *f = cJSON_GetObjectItemCaseSensitive(v, "__float__");
        if (cJSON_IsString(f)) return nonfinite_name(f->valuestring, out);
        if (cJSON_IsNumber(f)) {
            *out = f->valuedouble;
            return 0;
        }
    }
    return -1;
}

int ms_json_number(const cJSON *obj, const char *key, double *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v || cJSON_IsNull(v)) return 0;
    return value_number(v, out) == 0 ? 1 : -1;
}

/* ------------------------------------------------------------ config fields */

/* Where fields come from, for messages: "DIR/config.json: field 'ssm_cfg.d_state' ...". */
typedef struct {
    const char *path;
    const cJSON *obj;
    const char *prefix; /* "" or "ssm_cfg." */
} cfg_src;

static const cJSON *field(const cfg_src *s, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(s->obj, key);
    return cJSON_IsNull(v) ? NULL : v;
}

static int missing(const cfg_src *s, const char *key)
{
    ms_error("%s: missing field '%s%s'", s->path, s->prefix, key);
    return MS_ERR_MODEL;
}

/* An integer in [lo, CFG_MAX_DIM]; def used when absent unless required. */
static int get_int(const cfg_src *s, const char *key, int required, int def, int lo, int *out)
{
    const cJSON *v = field(s, key);
    if (!v) {
        if (required) return missing(s, key);
        *out = def;
        return MS_OK;
    }
    double d;
    if (value_number(v, &d) != 0 || d != floor(d) || !(d >= INT_MIN && d <= INT_MAX)) {
        ms_error("%s: field '%s%s' must be an integer", s->path, s->prefix, key);
        return MS_ERR_MODEL;
    }
    if (d < lo || d > CFG_MAX_DIM) {
        ms_error("%s: field '%s%s' = %.0f is out of range [%d, %d]", s->path, s->prefix, key, d,
                 lo, CFG_MAX_DIM);
        return MS_ERR_MODEL;
    }
    *out = (int)d;
    return MS_OK;
}

static int get_bool(const cfg_src *s, const char *key, int def, int *out)
{
    const cJSON *v = field(s, key);
    if (!v) *out = def;
    else if (cJSON_IsBool(v)) *out = cJSON_IsTrue(v);
    else if (cJSON_IsNumber(v) && (v->valuedouble == 0 || v->valuedouble == 1))
        *out = v->valuedouble != 0;
    else {
        ms_error("%s: field '%s%s' must be true or false", s->path, s->prefix, key);
        return MS_ERR_MODEL;
    }
    return MS_OK;
}

static int get_float(const cfg_src *s, const char *key, double def, float *out)
{
    const cJSON *v = field(s, key);
    double d = def;
    if (v && value_number(v, &d) != 0) {
        ms_error("%s: field '%s%s' must be a number", s->path, s->prefix, key);
        return MS_ERR_MODEL;
    }
    *out = (float)d;
    return MS_OK;
}

/* dt_rank: an integer or "auto" = ceil(d_model / 16). */
static int get_dt_rank(const cfg_src *s, const char *key, int d_model, int *out)
{
    const cJSON *v = field(s, key);
    if (!v || (cJSON_IsString(v) && strcmp(v->valuestring, "auto") == 0)) {
        *out = (d_model + 15) / 16;
        return MS_OK;
    }
    if (cJSON_IsString(v)) {
        ms_error("%s: field '%s%s' must be an integer or \"auto\"", s->path, s->prefix, key);
        return MS_ERR_MODEL;
    }
    return get_int(s, key, 1, 0, 1, out);
}

/* A [min, max] pair of time-step limits (either infinity encoding). */
static int get_limits(const cfg_src *s, const char *key, float *lo, float *hi)
{
    const cJSON *v = field(s, key);
    double a, b;
    *lo = 0.0f;
    *hi = INFINITY;
    if (!v) return MS_OK;
    if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) != 2 ||
        value_number(cJSON_GetArrayItem(v, 0), &a) != 0 ||
        value_number(cJSON_GetArrayItem(v, 1), &b) != 0 || isnan(a) || isnan(b) || a > b) {
        ms_error("%s: field '%s%s' must be [min, max]", s->path, s->prefix, key);
        return MS_ERR_MODEL;
    }
    *lo = (float)a;
    *hi = (float)b;
    return MS_OK;
}

static int unsupported(const cfg_src *s, const char *key, const char *why)
{
    ms_error("%s: field '%s%s': %s is not supported", s->path, s->prefix, key, why);
    return MS_ERR_UNSUPPORTED;
}

/* HF Mamba and FalconMamba (same fields; falcon adds weightless mixer norms). */
static int load_hf_mamba(const cfg_src *s, int falcon, ms_config *c)
{
    int rc, expand;
    c->arch = MS_ARCH_MAMBA1;
    c->falcon = falcon;
    c->rms_norm = 1;
    c->dt_min = 0.0f;
    c->dt_max = INFINITY;
    if ((rc = get_int(s, "hidden_size", 1, 0, 1, &c->d_model)) ||
        (rc = get_int(s, "num_hidden_layers", 1, 0, 1, &c->n_layer)) ||
        (rc = get_int(s, "vocab_size", 1, 0, 1, &c->vocab_size)) ||
        (rc = get_int(s, "state_size", 0, 16, 1, &c->d_state)) ||
        (rc = get_int(s, "expand", 0, 2, 1, &expand)) ||
        (rc = get_int(s, "conv_kernel", 0, 4, 1, &c->d_conv)))
        return rc;
    if (expand > CFG_MAX_DIM / c->d_model) return unsupported(s, "expand", "so wide a model");
    if ((rc = get_int(s, "intermediate_size", 0, expand * c->d_model, 1, &c->d_inner)) ||
        (rc = get_dt_rank(s, "time_step_rank", c->d_model, &c->dt_rank)) ||
        (rc = get_bool(s, "use_bias", 0, &c->use_bias)) ||
        (rc = get_bool(s, "use_conv_bias", 1, &c->use_conv_bias)) ||
        (rc = get_float(s, "layer_norm_epsilon", 1e-5, &c->norm_eps)) ||
        (rc = get_bool(s, "residual_in_fp32", 1, &c->residual_in_fp32)) ||
        (rc = get_bool(s, "tie_word_embeddings", 1, &c->tie_embeddings)))
        return rc;
    if (falcon && (rc = get_float(s, "mixer_rms_eps", 1e-6, &c->mixer_rms_eps))) return rc;
    c->n_vocab = c->vocab_size;
    return MS_OK;
}

static int load_hf_mamba2(const cfg_src *s, ms_config *c)
{
    int rc, expand;
    c->arch = MS_ARCH_MAMBA2;
    c->rms_norm = 1;
    if ((rc = get_int(s, "hidden_size", 1, 0, 1, &c->d_model)) ||
        (rc = get_int(s, "num_hidden_layers", 1, 0, 1, &c->n_layer)) ||
        (rc = get_int(s, "vocab_size", 1, 0, 1, &c->vocab_size)) ||
        (rc = get_int(s, "state_size", 0, 128, 1, &c->d_state)) ||
        (rc = get_int(s, "expand", 0, 2, 1, &expand)) ||
        (rc = get_int(s, "head_dim", 0, 64, 1, &c->head_dim)) ||
        (rc = get_int(s, "num_heads", 0, 128, 1, &c->n_heads)) ||
        (rc = get_int(s, "n_groups", 0, 8, 1, &c->n_groups)) ||
        (rc = get_int(s, "conv_kernel", 0, 4, 1, &c->d_conv)) ||
        (rc = get_bool(s, "use_bias", 0, &c->use_bias)) ||
        (rc = get_bool(s, "use_conv_bias", 1, &c->use_conv_bias)) ||
        (rc = get_float(s, "layer_norm_epsilon", 1e-5, &c->norm_eps)) ||
        (rc = get_limits(s, "time_step_limit", &c->dt_min, &c->dt_max)) ||
        (rc = get_bool(s, "tie_word_embeddings", 1, &c->tie_embeddings)) ||
        (rc = get_bool(s, "residual_in_fp32", 1, &c->residual_in_fp32)))
        return rc;
    if (expand > CFG_MAX_DIM / c->d_model) return unsupported(s, "expand", "so wide a model");
    c->d_inner = expand * c->d_model;
    if ((int64_t)c->n_heads * c->head_dim != c->d_inner) {
        ms_error("%s: num_heads (%d) * head_dim (%d) != expand * hidden_size (%d)", s->path,
                 c->n_heads, c->head_dim, c->d_inner);
        return MS_ERR_MODEL;
    }
    c->n_vocab = c->vocab_size;
    return MS_OK;
}

static int load_ssm_mamba1(const cfg_src *s, ms_config *c)
{
    int rc, expand;
    c->arch = MS_ARCH_MAMBA1;
    c->dt_min = 0.0f;
    c->dt_max = INFINITY;
    if ((rc = get_int(s, "d_state", 0, 16, 1, &c->d_state)) ||
        (rc = get_int(s, "d_conv", 0, 4, 1, &c->d_conv)) ||
        (rc = get_int(s, "expand", 0, 2, 1, &expand)) ||
        (rc = get_dt_rank(s, "dt_rank", c->d_model, &c->dt_rank)) ||
        (rc = get_bool(s, "bias", 0, &c->use_bias)) ||
        (rc = get_bool(s, "conv_bias", 1, &c->use_conv_bias)))
        return rc;
    if (expand > CFG_MAX_DIM / c->d_model) return unsupported(s, "expand", "so wide a model");
    c->d_inner = expand * c->d_model;
    return MS_OK;
}

static int load_ssm_mamba2(const cfg_src *s, ms_config *c)
{
    int rc, expand, rmsnorm, nbg, hdim, d_ssm;
    c->arch = MS_ARCH_MAMBA2;
    if ((rc = get_int(s, "d_state", 0, 128, 1, &c->d_state)) ||
        (rc = get_int(s, "d_conv", 0, 4, 1, &c->d_conv)) ||
        (rc = get_int(s, "expand", 0, 2, 1, &expand)) ||
        (rc = get_int(s, "headdim", 0, 64, 1, &c->head_dim)) ||
        (rc = get_int(s, "ngroups", 0, 1, 1, &c->n_groups)) ||
        (rc = get_bool(s, "bias", 0, &c->use_bias)) ||
        (rc = get_bool(s, "conv_bias", 1, &c->use_conv_bias)) ||
        (rc = get_limits(s, "dt_limit", &c->dt_min, &c->dt_max)) ||
        (rc = get_bool(s, "rmsnorm", 1, &rmsnorm)) ||
        (rc = get_bool(s, "norm_before_gate", 0, &nbg)) ||
        (rc = get_bool(s, "D_has_hdim", 0, &hdim)))
        return rc;
    if (!rmsnorm) return unsupported(s, "rmsnorm", "false");
    if (nbg) return unsupported(s, "norm_before_gate", "true");
    if (hdim) return unsupported(s, "D_has_hdim", "true");
    if (expand > CFG_MAX_DIM / c->d_model) return unsupported(s, "expand", "so wide a model");
    c->d_inner = expand * c->d_model;
    if ((rc = get_int(s, "d_ssm", 0, c->d_inner, 1, &d_ssm))) return rc;
    if (d_ssm != c->d_inner) return unsupported(s, "d_ssm", "d_ssm != d_inner (partial SSM)");
    if (c->d_inner % c->head_dim != 0) {
        ms_error("%s: d_inner (%d) is not a multiple of '%sheaddim' (%d)", s->path, c->d_inner,
                 s->prefix, c->head_dim);
        return MS_ERR_MODEL;
    }
    c->n_heads = c->d_inner / c->head_dim;
    return MS_OK;
}

/* mamba_ssm MambaConfig: {d_model, n_layer, vocab_size, ssm_cfg: {layer, ...}, ...}. */
static int load_ssm(const cfg_src *s, ms_config *c)
{
    int rc, d_inter, pad;
    c->mamba_ssm_layout = 1;
    if ((rc = get_int(s, "d_model", 1, 0, 1, &c->d_model)) ||
        (rc = get_int(s, "n_layer", 1, 0, 1, &c->n_layer)) ||
        (rc = get_int(s, "vocab_size", 1, 0, 1, &c->vocab_size)) ||
        (rc = get_int(s, "d_intermediate", 0, 0, 0, &d_inter)) ||
        (rc = get_bool(s, "rms_norm", 1, &c->rms_norm)) ||
        (rc = get_bool(s, "residual_in_fp32", 1, &c->residual_in_fp32)) ||
        (rc = get_float(s, "norm_epsilon", 1e-5, &c->norm_eps)) ||
        (rc = get_int(s, "pad_vocab_size_multiple", 0, 8, 1, &pad)) ||
        (rc = get_bool(s, "tie_embeddings", 1, &c->tie_embeddings)))
        return rc;
    if (d_inter > 0) return unsupported(s, "d_intermediate", "an MLP after each mixer");
    const cJSON *attn = field(s, "attn_layer_idx");
    if (attn && (!cJSON_IsArray(attn) || cJSON_GetArraySize(attn) > 0))
        return unsupported(s, "attn_layer_idx", "attention layers");
    c->n_vocab = c->vocab_size + (pad - c->vocab_size % pad) % pad;

    const cJSON *ssm = field(s, "ssm_cfg");
    cJSON *empty = NULL;
    if (ssm && !cJSON_IsObject(ssm)) {
        ms_error("%s: field 'ssm_cfg' must be an object", s->path);
        return MS_ERR_MODEL;
    }
    if (!ssm) ssm = empty = cJSON_CreateObject();
    if (!ssm) return MS_ERR_NOMEM;
    cfg_src sub = {s->path, ssm, "ssm_cfg."};
    const cJSON *layer = field(&sub, "layer");
    if (!layer || (cJSON_IsString(layer) && strcmp(layer->valuestring, "Mamba1") == 0))
        rc = load_ssm_mamba1(&sub, c);
    else if (cJSON_IsString(layer) && strcmp(layer->valuestring, "Mamba2") == 0)
        rc = load_ssm_mamba2(&sub, c);
    else
        rc = unsupported(&sub, "layer", "a layer other than Mamba1 / Mamba2");
    cJSON_Delete(empty);
    return rc;
}

/* Every derived size must fit an int (tensor shapes are compared as int64 later). */
static int check_sizes(const char *path, const ms_config *c)
{
    int64_t conv_dim = c->d_inner, in_rows = 2 * (int64_t)c->d_inner;
    if (c->arch == MS_ARCH_MAMBA2) {
        if (c->n_heads % c->n_groups != 0) {
            ms_error("%s: number of heads (%d) is not a multiple of the number of groups (%d)",
                     path, c->n_heads, c->n_groups);
            return MS_ERR_MODEL;
        }
        conv_dim += 2 * (int64_t)c->n_groups * c->d_state; /* each factor <= 2^24: no overflow */
        in_rows = conv_dim + c->d_inner + c->n_heads;
    }
    if (in_rows > INT_MAX / 2 || conv_dim > INT_MAX / 2) {
        ms_error("%s: model dimensions too large", path);
        return MS_ERR_MODEL;
    }
    return MS_OK;
}

/* "mamba" / "falcon_mamba" / "mamba2" from model_type, else from architectures[]. */
static const char *hf_kind(const cJSON *root)
{
    const cJSON *mt = cJSON_GetObjectItemCaseSensitive(root, "model_type");
    if (cJSON_IsString(mt)) return mt->valuestring;
    const cJSON *arch = cJSON_GetObjectItemCaseSensitive(root, "architectures"), *a;
    cJSON_ArrayForEach(a, arch) {
        if (!cJSON_IsString(a)) continue;
        if (strncmp(a->valuestring, "FalconMamba", 11) == 0) return "falcon_mamba";
        if (strncmp(a->valuestring, "Mamba2", 6) == 0) return "mamba2";
        if (strncmp(a->valuestring, "Mamba", 5) == 0) return "mamba";
    }
    if (cJSON_IsArray(arch) && cJSON_GetArraySize(arch) > 0) {
        const cJSON *a0 = cJSON_GetArrayItem(arch, 0);
        return cJSON_IsString(a0) ? a0->valuestring : "?";
    }
    return NULL;
}

int ms_config_load(const char *dir, ms_config *cfg, cJSON **root_out)
{
    char path[4096];
    int rc;
    if (root_out) *root_out = NULL;
    memset(cfg, 0, sizeof *cfg);
    snprintf(path, sizeof path, "%s/config.json", dir);
    cJSON *root = parse_file_rc(path, &rc);
    if (!root) return rc;
    if (!cJSON_IsObject(root)) {
        ms_error("%s: not a JSON object", path);
        rc = MS_ERR_FORMAT;
        goto done;
    }
    cfg_src s = {path, root, ""};
    /* mamba_ssm configs carry no model_type; some copies add architectures
     * ["MambaLMHeadModel"], so d_model decides before architectures does */
    int ssm = !cJSON_GetObjectItemCaseSensitive(root, "model_type") &&
              cJSON_GetObjectItemCaseSensitive(root, "d_model");
    const char *kind = ssm ? NULL : hf_kind(root);
    if (ssm) rc = load_ssm(&s, cfg);
    else if (kind && strcmp(kind, "mamba") == 0) rc = load_hf_mamba(&s, 0, cfg);
    else if (kind && strcmp(kind, "falcon_mamba") == 0) rc = load_hf_mamba(&s, 1, cfg);
    else if (kind && strcmp(kind, "mamba2") == 0) rc = load_hf_mamba2(&s, cfg);
    else if (kind) {
        ms_error("%s: model_type / architectures '%s' is not supported (mamba, falcon_mamba, "
                 "mamba2 or a mamba_ssm MambaConfig)", path, kind);
        rc = MS_ERR_UNSUPPORTED;
    } else {
        ms_error("%s: missing field 'model_type' (and no mamba_ssm 'd_model')", path);
        rc = MS_ERR_MODEL;
    }
    if (!rc) rc = check_sizes(path, cfg);
done:
    if (rc == MS_OK && root_out) *root_out = root;
    else cJSON_Delete(root);
    return rc;
}

/* ---------------------------------------------------------------- alphabet */

typedef struct {
    const char *tok;
    int id;
} tok_id;

#define DERIVE (-2) /* bos / unk: find by the usual special-token names */

static const char *const k_bos_names[] = {"[BOS]", "<bos>", "<s>", NULL};
static const char *const k_unk_names[] = {"[UNK]", "<unk>", NULL};

static int find_named(const tok_id *t, int n, const char *const *names, const char *extra)
{
    for (int i = 0; i < n; i++) {
        if (extra && strcmp(t[i].tok, extra) == 0) return t[i].id;
        for (int k = 0; names[k]; k++)
            if (strcmp(t[i].tok, names[k]) == 0) return t[i].id;
    }
    return -1;
}

/* -1 (none) is accepted for BOS / UNK only. */
static int id_in_range(const char *src, const char *what, int id, int n_vocab, int err)
{
    int lo = strcmp(what, "BOS") == 0 || strcmp(what, "UNK") == 0 ? -1 : 0;
    if (id >= lo && id < n_vocab) return MS_OK;
    ms_error("%s: token '%s' has id %d, outside the model's %d tokens", src, what, id, n_vocab);
    return err;
}

/* Fill info's alphabet from (token, id) pairs: one-character tokens are the letters; upper
 * and lower case share the upper-case token when there is one, else the lower-case one.
 * bos / unk: explicit ids, or DERIVE from the names above (plus bos_name / unk_name). */
static int alpha_build(const char *src, const tok_id *t, int n, int bos, int unk,
                       const char *bos_name, const char *unk_name, int n_vocab, int err,
                       ms_model_info *info)
{
    int16_t tok[256];
    int rc;
    for (int c = 0; c < 256; c++) tok[c] = -1;
    for (int i = 0; i < n; i++) {
        if (strlen(t[i].tok) != 1) continue;
        if ((rc = id_in_range(src, t[i].tok, t[i].id, n_vocab, err))) return rc;
        unsigned char c = (unsigned char)t[i].tok[0];
        if (tok[c] < 0) tok[c] = (int16_t)t[i].id;
    }
    if (bos == DERIVE) bos = find_named(t, n, k_bos_names, bos_name);
    if (unk == DERIVE) unk = find_named(t, n, k_unk_names, unk_name);
    if ((rc = id_in_range(src, "BOS", bos, n_vocab, err)) ||
        (rc = id_in_range(src, "UNK", unk, n_vocab, err)))
        return rc;
    for (int c = 'A'; c <= 'Z'; c++) {
        int16_t canon = tok[c] >= 0 ? tok[c] : tok[c + 32];
        tok[c] = tok[c + 32] = canon;
    }
    info->has_alphabet = 0;
    for (int c = 0; c < 256; c++) {
        info->token_of_char[c] = tok[c];
        if (tok[c] >= 0) info->has_alphabet = 1;
    }
    const char acgt[4] = {'A', 'C', 'G', 'T'};
    for (int k = 0; k < 4; k++) info->base_token[k] = tok[(unsigned char)acgt[k]];
    info->bos_token = bos;
    info->unk_token = tok['N'] >= 0 ? tok['N'] : unk;
    return MS_OK;
}

static void alpha_clear(ms_model_info *info)
{
    info->has_alphabet = 0;
    for (int c = 0; c < 256; c++) info->token_of_char[c] = -1;
    for (int k = 0; k < 4; k++) info->base_token[k] = -1;
    info->bos_token = -1;
    info->unk_token = -1;
}

/* config.json "mamba_stream": {"alphabet": {"A": 7, ...}, "bos": 2, "unk": 6}. */
static int alpha_from_section(const char *path, const cJSON *sec, const ms_config *cfg,
                              ms_model_info *info)
{
    const cJSON *al = cJSON_GetObjectItemCaseSensitive(sec, "alphabet"), *e;
    int n = cJSON_GetArraySize(al), k = 0, rc = MS_OK, ids[2] = {-1, -1};
    const char *keys[2] = {"bos", "unk"};
    tok_id *t = malloc((size_t)(n ? n : 1) * sizeof *t);
    if (!t) return MS_ERR_NOMEM;
    cJSON_ArrayForEach(e, al) {
        if (strlen(e->string) != 1 || !cJSON_IsNumber(e) || e->valuedouble != floor(e->valuedouble) ||
            fabs(e->valuedouble) > INT_MAX) {
            ms_error("%s: field 'mamba_stream.alphabet.%s' must map one character to an "
                     "integer token id", path, e->string);
            rc = MS_ERR_MODEL;
            goto done;
        }
        t[k].tok = e->string;
        t[k++].id = (int)e->valuedouble;
    }
    for (int i = 0; i < 2; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(sec, keys[i]);
        if (!v || cJSON_IsNull(v)) continue;
        if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) ||
            fabs(v->valuedouble) > INT_MAX) {
            ms_error("%s: field 'mamba_stream.%s' must be an integer token id", path, keys[i]);
            rc = MS_ERR_MODEL;
            goto done;
        }
        ids[i] = (int)v->valuedouble;
    }
    rc = alpha_build(path, t, k, ids[0], ids[1], NULL, NULL, cfg->n_vocab, MS_ERR_MODEL, info);
done:
    free(t);
    return rc;
}

/* vocab.txt: one token per line, id = line number (from 0). */
static int alpha_from_vocab_txt(const char *path, const ms_config *cfg, ms_model_info *info)
{
    size_t n = 0;
    int rc, cap = 64, k = 0;
    char *buf = read_whole(path, &n, &rc);
    tok_id *t = NULL;
    if (!buf) return rc;
    t = malloc((size_t)cap * sizeof *t);
    if (!t) {
        rc = MS_ERR_NOMEM;
        goto done;
    }
    for (char *p = buf; p < buf + n;) {
        char *nl = memchr(p, '\n', (size_t)(buf + n - p));
        char *e = nl ? nl : buf + n;
        if (e > p && e[-1] == '\r') e[-1] = 0;
        *e = 0;
        if (k == cap) {
            tok_id *g = realloc(t, (size_t)(cap *= 2) * sizeof *t);
            if (!g) {
                rc = MS_ERR_NOMEM;
                goto done;
            }
            t = g;
        }
        t[k].tok = p;
        t[k].id = k;
        k++;
        p = e + 1;
    }
    rc = alpha_build(path, t, k, DERIVE, DERIVE, NULL, NULL, cfg->n_vocab, MS_ERR_MODEL, info);
done:
    if (rc == MS_ERR_NOMEM) ms_error("%s: out of memory", path);
    free(t);
    free(buf);
    return rc;
}

/* tokenizer_config.json's bos_token / unk_token: a string or {"content": ...}. */
static const char *special_name(const cJSON *tc, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(tc, key);
    if (cJSON_IsObject(v)) v = cJSON_GetObjectItemCaseSensitive(v, "content");
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int push_tok(tok_id **t, int *k, int *cap, const char *tok, double id)
{
    if (*k == *cap) {
        int nc = *cap ? 2 * *cap : 64;
        tok_id *g = realloc(*t, (size_t)nc * sizeof *g);
        if (!g) return MS_ERR_NOMEM;
        *t = g;
        *cap = nc;
    }
    (*t)[*k].tok = tok;
    (*t)[(*k)++].id = id >= -1 && id <= INT_MAX ? (int)id : INT_MAX;
    return MS_OK;
}

/* tokenizer.json: model.vocab ({token: id}, or Unigram's [[token, score], ...]) plus the
 * added_tokens list; tokenizer_config.json may name BOS / UNK. */
static int alpha_from_tokenizer_json(const char *dir, const char *path, const ms_config *cfg,
                                     ms_model_info *info)
{
    char tc_path[4096];
    int rc, k = 0, cap = 0;
    tok_id *t = NULL;
    cJSON *tc = NULL, *root = parse_file_rc(path, &rc);
    if (!root) return rc;
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
    const cJSON *vocab = cJSON_GetObjectItemCaseSensitive(model, "vocab"), *e;
    int idx = 0;
    cJSON_ArrayForEach(e, vocab) {
        if (cJSON_IsObject(vocab) && cJSON_IsNumber(e))
            rc = push_tok(&t, &k, &cap, e->string, e->valuedouble);
        else if (cJSON_IsArray(e) && cJSON_IsString(cJSON_GetArrayItem(e, 0)))
            rc = push_tok(&t, &k, &cap, cJSON_GetArrayItem(e, 0)->valuestring, idx);
        idx++;
        if (rc) goto done;
    }
    cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(root, "added_tokens")) {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(e, "id");
        const cJSON *content = cJSON_GetObjectItemCaseSensitive(e, "content");
        if (cJSON_IsNumber(id) && cJSON_IsString(content) &&
            (rc = push_tok(&t, &k, &cap, content->valuestring, id->valuedouble)))
            goto done;
    }
    snprintf(tc_path, sizeof tc_path, "%s/tokenizer_config.json", dir);
    FILE *f = fopen(tc_path, "rb");
    if (f) {
        fclose(f);
        if (!(tc = parse_file_rc(tc_path, &rc))) goto done;
    }
    rc = alpha_build(path, t, k, DERIVE, DERIVE, special_name(tc, "bos_token"),
                     special_name(tc, "unk_token"), cfg->n_vocab, MS_ERR_MODEL, info);
done:
    if (rc == MS_ERR_NOMEM) ms_error("%s: out of memory", path);
    free(t);
    cJSON_Delete(tc);
    cJSON_Delete(root);
    return rc;
}

static int file_exists(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f) fclose(f);
    return f != NULL;
}

int ms_alphabet_load(const char *dir, const cJSON *root, const ms_config *cfg, ms_model_info *info)
{
    char path[4096];
    alpha_clear(info);
    const cJSON *sec = cJSON_GetObjectItemCaseSensitive(root, "mamba_stream");
    if (cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(sec, "alphabet"))) {
        snprintf(path, sizeof path, "%s/config.json", dir);
        return alpha_from_section(path, sec, cfg, info);
    }
    snprintf(path, sizeof path, "%s/vocab.txt", dir);
    if (file_exists(path)) return alpha_from_vocab_txt(path, cfg, info);
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    if (file_exists(path)) return alpha_from_tokenizer_json(dir, path, cfg, info);
    return MS_OK;
}

int ms_alphabet_builtin(const char *name, int n_vocab, ms_model_info *info)
{
    static const tok_id caduceus[] = {
        {"[CLS]", 0}, {"[SEP]", 1}, {"[BOS]", 2}, {"[MASK]", 3}, {"[PAD]", 4}, {"[RESERVED]", 5},
        {"[UNK]", 6}, {"A", 7},     {"C", 8},     {"G", 9},      {"T", 10},    {"N", 11}};
    static const tok_id plant[] = {{"<unk>", 0}, {"<pad>", 1}, {"<mask>", 2}, {"<cls>", 3},
                                   {"A", 4},     {"T", 5},     {"C", 6},      {"G", 7},
                                   {"N", 8},     {"<eos>", 9}, {"<bos>", 10}};
    static const tok_id gpn[] = {{"[PAD]", 0}, {"[MASK]", 1}, {"[UNK]", 2}, {"a", 3},
                                 {"c", 4},     {"g", 5},      {"t", 6}};
    static const struct {
        const char *name;
        const tok_id *t;
        int n;
    } k_builtin[] = {
        {"caduceus", caduceus, 12}, {"hyenadna", caduceus, 12},
        {"plant-dnamamba", plant, 11}, {"gpn", gpn, 7},
    };
    char src[300];
    alpha_clear(info);
    for (size_t i = 0; name && i < sizeof k_builtin / sizeof k_builtin[0]; i++) {
        if (strcmp(name, k_builtin[i].name) != 0) continue;
        snprintf(src, sizeof src, "alphabet '%s'", name);
        int rc = alpha_build(src, k_builtin[i].t, k_builtin[i].n, DERIVE, DERIVE, NULL, NULL,
                             n_vocab, MS_ERR_ARG, info);
        if (rc) alpha_clear(info);
        return rc;
    }
    ms_error("unknown alphabet '%s' (caduceus, hyenadna, plant-dnamamba, gpn)",
             name ? name : "(null)");
    return MS_ERR_ARG;
}
