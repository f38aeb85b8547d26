/* vs_nn.h - run a TF.js graph model (model.json + .bin shards) on XNNPACK.
 *
 * Two objects, as in llama2.c's weights/run-state split:
 *   vs_model   immutable after load: the lowered graph, folded float32 weights.
 *              Shared by any number of threads.
 *   vs_runtime one per thread: an XNNPACK runtime built from the model, with its
 *              own input/output buffers. Load once, run many times.
 * The model must outlive every runtime made from it. The library knows
 * nothing about faces: callers name the input shape and the nodes they want. */
#ifndef VS_NN_H
#define VS_NN_H

#include <stddef.h>
#include <stdint.h>

#include "vs_err.h"

#define VS_NN_MAX_DIMS 4
#define VS_NN_MAX_OUTPUTS 8

typedef struct vs_model vs_model;
typedef struct vs_runtime vs_runtime;

typedef struct vs_model_opts {
    int batch;                                /* fills a -1 batch dimension; 0 = 1 */
    int n_outputs;                            /* 0 = the graph's declared outputs */
    const char *outputs[VS_NN_MAX_OUTPUTS];   /* node names, e.g. "global_pooling/Mean" */
    /* Where the graph starts. NULL: its Placeholder. A node name: that node's
     * output is the input instead, and nothing above it is read (a graph
     * whose preprocessing needs dynamic shapes is cut below it, and the
     * caller does the preprocessing). */
    const char *input;
    /* The input's shape (NHWC), when input_ndim > 0: needed with `input`, and
     * for a Placeholder whose dims are unknown (-1) beyond the batch. */
    int input_ndim;
    int input_dims[VS_NN_MAX_DIMS];
} vs_model_opts;

typedef struct vs_shape {
    int ndim;
    size_t dims[VS_NN_MAX_DIMS];
} vs_shape;

/* Loads model.json and its weight shards (same folder), dequantises
 * float16/uint8/uint16 weights, folds batch-norm multiplies/adds and
 * activations into convolutions, and checks every op is supported. An
 * unsupported op fails with VS_ERR_UNSUPPORTED naming the op and the node; a
 * missing or short shard fails with VS_ERR_MODEL naming the file. */
vs_err vs_model_load(const char *json_path, const vs_model_opts *opts, vs_model **out,
                     vs_error *err);
void vs_model_free(vs_model *m);

/* Same, from a model.json text and one weights blob already in memory (tests). */
vs_err vs_model_load_mem(const char *json, size_t json_len, const void *weights,
                         size_t weights_len, const vs_model_opts *opts, vs_model **out,
                         vs_error *err);

vs_shape vs_model_input_shape(const vs_model *m);
int vs_model_output_count(const vs_model *m);
vs_shape vs_model_output_shape(const vs_model *m, int i);
const char *vs_model_output_name(const vs_model *m, int i);
/* Number of operators after fusion (what XNNPACK will run). */
int vs_model_op_count(const vs_model *m);

/* Builds a runtime. threads <= 1 runs on the calling thread only. */
vs_err vs_runtime_new(const vs_model *m, int threads, vs_runtime **out, vs_error *err);
void vs_runtime_free(vs_runtime *rt);

/* The model rt runs. */
const vs_model *vs_runtime_model(const vs_runtime *rt);
/* The input buffer to fill (NHWC float32, vs_model_input_shape elements). */
float *vs_runtime_input(vs_runtime *rt);
/* Runs the graph on the current input. */
vs_err vs_runtime_run(vs_runtime *rt, vs_error *err);
/* Output i of the last run (valid until the next run or free). */
const float *vs_runtime_output(const vs_runtime *rt, int i);
/* How many times rt ran and the nanoseconds it spent running, since it was
 * made: the engine's per-stage profile reads these around each stage. */
void vs_runtime_clock(const vs_runtime *rt, uint64_t *runs, int64_t *ns);

/* ---- graphs written in C (vs_nn_build.c) ----
 * For networks shipped as a TF.js weights manifest without a graph (face-api):
 * open the manifest, fetch weights by name, write the layers, finish into a
 * vs_model. Layer calls return a node id, or -1 once anything has failed (the
 * first failure is kept and returned by vs_nn_builder_finish), so a model
 * file checks once at the end. Weights passed in are copied. */
typedef struct vs_nn_builder vs_nn_builder;

vs_err vs_nn_builder_open(const char *manifest_path, vs_nn_builder **out, vs_error *err);
void vs_nn_builder_free(vs_nn_builder *b);
/* The manifest's weight `name`, which must have exactly the shape dims[ndim];
 * NULL (and the builder failed) otherwise. Valid until the builder is freed. */
const float *vs_nn_weight(vs_nn_builder *b, const char *name, int ndim, const int *dims);
/* n zeroed floats owned by the builder (freed with it), for weights a model
 * file derives (folded, synthesised); NULL and the builder failed when out of
 * memory. */
float *vs_nn_scratch(vs_nn_builder *b, size_t n);
int vs_nn_input(vs_nn_builder *b, int h, int w, int c);
/* 2-D convolution, filter HWIO [kh,kw,cin,cout], bias [cout] or NULL; `same`
 * pads as TF's SAME, else VALID; relu clamps the output at 0. */
int vs_nn_conv(vs_nn_builder *b, int x, const float *hwio, const float *bias, int kh, int kw, int cin, int cout,
               int stride, int same, int relu);
int vs_nn_relu(vs_nn_builder *b, int x);
int vs_nn_add(vs_nn_builder *b, int x, int y, int relu);
int vs_nn_maxpool(vs_nn_builder *b, int x, int k, int stride, int same);
/* Zero padding of H (top, bottom) and W (left, right). */
int vs_nn_pad(vs_nn_builder *b, int x, int top, int bottom, int left, int right);
/* Mean over H and W: [1,H,W,C] -> [1,C]. */
int vs_nn_mean_hw(vs_nn_builder *b, int x);
/* [1,cin] x [cin,cout]. */
int vs_nn_matmul(vs_nn_builder *b, int x, const float *w_io, int cin, int cout);
/* Lowers the graph up to node `output` into a model (the builder keeps its
 * weights; free it afterwards). */
vs_err vs_nn_builder_finish(vs_nn_builder *b, int output, vs_model **out, vs_error *err);

#endif
