/* mlp_block.c - the MLP sub-layer: fc -> activation (or gated unit) -> projection (see blocks.h).
 * Decoding calls the same forward with one row. */
#include "kernels/ops.h"
#include "models/blocks.h"

void mlp_act_forward(const Config *c, float *out, const float *inp, size_t N, size_t F) {
    switch (c->act) {
    case ACT_GELU: gelu_forward(out, inp, N * F); break;
    case ACT_RELU: relu_forward(out, inp, N * F); break;
    case ACT_RELU2: relu2_forward(out, inp, N * F); break;
    case ACT_SWIGLU: swiglu_forward(out, inp, N, F); break;
    case ACT_GEGLU: geglu_forward(out, inp, N, F); break;
    }
}

void mlp_act_backward(const Config *c, float *dinp, GradWrite mode, const float *dout, const float *inp, size_t N,
                      size_t F) {
    switch (c->act) {
    case ACT_GELU: gelu_backward(dinp, mode, dout, inp, N * F); break;
    case ACT_RELU: relu_backward(dinp, mode, dout, inp, N * F); break;
    case ACT_RELU2: relu2_backward(dinp, mode, dout, inp, N * F); break;
    case ACT_SWIGLU: swiglu_backward(dinp, mode, dout, inp, N, F); break;
    case ACT_GEGLU: geglu_backward(dinp, mode, dout, inp, N, F); break;
    }
}

void mlp_block_forward(const Transformer *m, size_t l, float *out, const MlpActs *s, const float *inp, size_t N) {
    const TransformerWeights *w = &m->w;
    l = transformer_dense_index(m, l); /* the dense layers' weights skip the MoE layers */
    size_t C = m->C, F = m->F, F1 = m->F1;
    linear_forward(s->fch, inp, w->wfc + l * F1 * C, cat(w->bfc, l, F1), N, C, F1);
    mlp_act_forward(&m->cfg, s->fcg, s->fch, N, F);
    linear_forward(out, s->fcg, w->wproj + l * C * F, cat(w->bproj, l, C), N, F, C);
}

void mlp_block_backward(Transformer *m, size_t l, float *dinp, GradWrite dinp_mode, const float *dout,
                        const float *inp, const MlpActs *s, size_t N) {
    const TransformerWeights *w = &m->w;
    TransformerWeights *g = &m->g;
    TransformerActs *a = &m->a;
    size_t C = m->C, F = m->F, F1 = m->F1;
    l = transformer_dense_index(m, l);
    linear_backward(a->dfcg, GRAD_SET, g->wproj + l * C * F, at(g->bproj, l, C), dout, s->fcg, w->wproj + l * C * F, N, F, C);
    mlp_act_backward(&m->cfg, a->dfch, GRAD_SET, a->dfcg, s->fch, N, F);
    linear_backward(dinp, dinp_mode, g->wfc + l * F1 * C, at(g->bfc, l, F1), a->dfch, inp, w->wfc + l * F1 * C, N, C, F1);
}
