/* vs_dlib_resnet.h - dlib's 128-d face recognition ResNet, built in C from
 * face-api's weights manifest (the manifest holds no graph). */
#ifndef VS_DLIB_RESNET_H
#define VS_DLIB_RESNET_H

#include "vs_err.h"
#include "vs_nn.h"

#define VS_DLIB_INPUT 150   /* dlib face chip side, pixels */
#define VS_DLIB_DIM 128

/* Loads the manifest and its shard, folds every affine and the input
 * normalisation into the convolutions and returns a model whose input is a
 * [1,150,150,3] RGB chip in 0..255 and whose output is the raw [1,128]
 * descriptor (not normalised). A missing weight or a wrong shape fails with
 * VS_ERR_MODEL naming the manifest and the weight. */
vs_err vs_dlib_resnet_load(const char *manifest_path, vs_model **out, vs_error *err);

#endif
