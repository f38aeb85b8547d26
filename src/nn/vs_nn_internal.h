/* vs_nn_internal.h - the lowered graph shared by the loader (vs_tfjs.c, which
 * reads model.json), the lowering pass (vs_lower.c, TF ops -> plan ops) and
 * the executor (vs_xnn.c, plan -> XNNPACK). Private to src/nn. */
#ifndef VS_NN_INTERNAL_H
#define VS_NN_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "vs_nn.h"

/* ---- the TF.js graph as read from model.json ---- */

typedef struct vs_tf_node {
    char *name;
    char *op;
    int n_inputs;
    char **inputs;       /* producer names with ":0" and "^" stripped */
    /* attributes we use; -1 / 0 when absent */
    int strides[4], dilations[4], ksize[4];
    int has_strides, has_dilations, has_ksize;
    char padding[16];    /* "SAME", "VALID", "EXPLICIT" */
    int explicit_pad[8]; /* 4 dims x (before, after) */
    char fused[3][16];   /* fused_ops, e.g. "BiasAdd", "Relu" */
    int n_fused;
    int keep_dims, transpose_a, transpose_b;
    int shape[VS_NN_MAX_DIMS]; /* Placeholder shape, -1 for unknown */
    int shape_ndim;
    float leaky_alpha;
    int axes[4], n_axes;  /* Squeeze squeeze_dims */
} vs_tf_node;

typedef struct vs_tf_weight {
    char *name;
    int ndim;
    int dims[VS_NN_MAX_DIMS];
    size_t count;
    int is_int;          /* int32 data kept in i32 */
    float *f32;          /* owned */
    int32_t *i32;        /* owned */
} vs_tf_weight;

typedef struct vs_tf_graph {
    int n_nodes;
    vs_tf_node *nodes;
    int n_weights;
    vs_tf_weight *weights;
    int n_outputs;       /* declared outputs from "signature", if any */
    char **outputs;
} vs_tf_graph;

/* Largest model.json or weights manifest read (bytes). */
#define VS_MODEL_JSON_MAX (64u << 20)

vs_err vs_tf_graph_parse(const char *json, size_t len, const char *dir,
                         const void *weights, size_t weights_len,
                         vs_tf_graph *g, vs_error *err);
/* Reads a weights-only manifest (a JSON array of groups, as face-api ships)
 * and its shards beside it: g gets weights and no nodes. */
vs_err vs_tf_manifest_load(const char *path, vs_tf_graph *g, vs_error *err);
void vs_tf_graph_free(vs_tf_graph *g);
int vs_tf_find_node(const vs_tf_graph *g, const char *name);
const vs_tf_weight *vs_tf_find_weight(const vs_tf_graph *g, const char *name);

/* ---- the plan: what XNNPACK runs ---- */

typedef enum vs_op_kind {
    VS_OP_CONV, VS_OP_DWCONV, VS_OP_FC,
    VS_OP_ADD, VS_OP_SUB, VS_OP_MUL, VS_OP_DIV, VS_OP_MAX, VS_OP_MIN,
    VS_OP_CLAMP, VS_OP_ABS, VS_OP_SQUARE, VS_OP_SQRT, VS_OP_SIGMOID, VS_OP_SOFTMAX,
    VS_OP_PRELU, VS_OP_MAXPOOL, VS_OP_GAP, VS_OP_PAD, VS_OP_RESHAPE, VS_OP_NEG
} vs_op_kind;

/* Most parts of a channel concatenation (see vs_val.parts). */
#define VS_NN_MAX_PARTS 8

/* A tensor of the plan: either a constant (data set, owned by the model) or
 * an activation computed at run time. */
typedef struct vs_val {
    vs_shape shape;
    float *data;      /* constant data, or NULL */
    int producer;     /* op index, -1 for input/constant */
    int uses;         /* consumers + 1 if it is a model output */
    int is_input, output_index; /* output_index -1 if not an output */
    /* A channel concatenation (ConcatV2 on the last axis) is not computed:
     * XNNPACK 2022 has no concatenate node. The value stands for its parts,
     * in channel order; convolutions split their filters over them, max
     * pooling and clamps run part by part, and any other consumer reads
     * `materialized` (value id + 1, 0 = not built yet), built exactly from
     * 1x1 convolutions that place each part's channels, and adds. */
    int n_parts;
    int parts[VS_NN_MAX_PARTS];
    int materialized;
    int private_part; /* only the concatenation made with it reads it */
} vs_val;

typedef struct vs_op {
    vs_op_kind kind;
    const char *node;       /* TF node name, for messages (points into graph) */
    int in[2];              /* value ids; in[1] = -1 when unary */
    int out;
    /* conv / pool / fc */
    int kh, kw, sh, sw, dh, dw, pad[4]; /* pad: top, right, bottom, left */
    int cin, cout, groups, mult;
    float *w, *b;            /* weights in XNNPACK layout, bias (may be NULL) */
    float out_min, out_max;  /* fused clamp */
    size_t pre_pad[VS_NN_MAX_DIMS], post_pad[VS_NN_MAX_DIMS];
} vs_op;

struct vs_model {
    int n_vals, cap_vals;
    vs_val *vals;
    int n_ops, cap_ops;
    vs_op *ops;
    int input;                       /* value id of the input */
    int n_outputs;
    int outputs[VS_NN_MAX_OUTPUTS];  /* value ids */
    char *output_names[VS_NN_MAX_OUTPUTS];
    int n_bufs, cap_bufs;            /* every float buffer the model owns */
    float **bufs;
};

vs_err vs_lower(const vs_tf_graph *g, const vs_model_opts *opts, vs_model *m, vs_error *err);
/* Lowers g into a new model (vs_xnn.c); g may be freed afterwards. */
vs_err vs_model_from_graph(vs_tf_graph *g, const vs_model_opts *opts, vs_model **out, vs_error *err);

#endif
