/* moe_block.c - the mixture-of-experts sub-layer, DeepSeekMoE style (see blocks.h): a router picks
 * moe_top_k of moe_experts expert MLPs per token, each expert runs as one product over the rows
 * routed to it (dropless: no token is dropped, no capacity factor), their outputs are summed
 * with the gates, and moe_shared_experts (run as one MLP of their total width) see every token.
 * The experts have no biases, as in DeepSeek-V2/V3. Decoding calls the same forward with one row. */
#include "kernels/ops.h"
#include "models/blocks.h"

/* Expert e of MoE layer mi: its fc (Fe1, C) and projection (C, Fe). */
static float *expert_w1(float *base, const Transformer *m, size_t mi, size_t e) {
    return base + (mi * (size_t)m->E + e) * (size_t)m->Fe1 * (size_t)m->C;
}
static float *expert_w2(float *base, const Transformer *m, size_t mi, size_t e) {
    return base + (mi * (size_t)m->E + e) * (size_t)m->C * (size_t)m->Fe;
}

void moe_block_forward(Transformer *m, size_t l, float *out, const MoeActs *s, const float *inp, size_t N,
                       int training) {
    const Config *c = &m->cfg;
    const TransformerWeights *w = &m->w;
    size_t mi = transformer_moe_index(m, l), C = m->C, E = m->E, K = m->K, Fe = m->Fe, Fe1 = m->Fe1;
    size_t SF = (size_t)m->S * Fe, SF1 = (size_t)m->S * Fe1;
    int sigmoid = c->moe_router == MOE_ROUTER_SIGMOID;
    /* route */
    linear_forward(s->rlog, inp, w->router + mi * E * C, NULL, N, C, E);
    moe_route_forward(s->rsc, s->sel, s->gate, s->rlog, c->moe_balance == MOE_BALANCE_BIAS ? w->moe_bias + mi * E : NULL,
                      N, E, K, sigmoid);
    moe_dispatch(s->order, s->pos, s->eoff, s->sel, N, E, K);
    if (training) {
        int aux = c->moe_balance == MOE_BALANCE_AUX && c->moe_aux_weight > 0;
        m->aux_loss += moe_balance_forward(aux ? m->a.moe_coef : NULL, m->moe_load + mi * E, s->rsc, s->sel, N, E, K,
                                           (float)c->moe_aux_weight, sigmoid);
    }
    /* shared experts write out; the routed ones add to it */
    if (m->S) {
        linear_forward(s->sh, inp, w->moe_ws1 + mi * SF1 * C, NULL, N, C, SF1);
        mlp_act_forward(c, s->sg, s->sh, N, SF);
        linear_forward(out, s->sg, w->moe_ws2 + mi * C * SF, NULL, N, SF, C);
    } else {
        zero(out, N * C);
    }
    moe_gather_forward(s->xin, inp, s->order, N * K, K, C);
    for (size_t e = 0; e < E; e++) {
        size_t r0 = (size_t)s->eoff[e], n = (size_t)s->eoff[e + 1] - r0;
        if (!n) continue;
        linear_forward(s->eh + r0 * Fe1, s->xin + r0 * C, expert_w1(w->moe_w1, m, mi, e), NULL, n, C, Fe1);
        mlp_act_forward(c, s->eg + r0 * Fe, s->eh + r0 * Fe1, n, Fe);
        linear_forward(s->ey + r0 * C, s->eg + r0 * Fe, expert_w2(w->moe_w2, m, mi, e), NULL, n, Fe, C);
    }
    moe_combine_forward(out, s->ey, s->gate, s->pos, N, K, C);
}

void moe_block_backward(Transformer *m, size_t l, float *dinp, const float *dout, const float *inp, const MoeActs *s,
                        size_t N) {
    const Config *c = &m->cfg;
    const TransformerWeights *w = &m->w;
    TransformerWeights *g = &m->g;
    TransformerActs *a = &m->a;
    size_t mi = transformer_moe_index(m, l), C = m->C, E = m->E, K = m->K, Fe = m->Fe, Fe1 = m->Fe1;
    size_t SF = (size_t)m->S * Fe, SF1 = (size_t)m->S * Fe1;
    int sigmoid = c->moe_router == MOE_ROUTER_SIGMOID;
    /* out = shared + sum_k gate_k ey: the gates' and the rows' gradients */
    moe_combine_backward(a->moe_drows, a->moe_dgate, dout, s->ey, s->gate, s->pos, N, K, C);
    for (size_t e = 0; e < E; e++) {
        size_t r0 = (size_t)s->eoff[e], n = (size_t)s->eoff[e + 1] - r0;
        if (!n) continue;
        float *w1 = expert_w1(w->moe_w1, m, mi, e), *w2 = expert_w2(w->moe_w2, m, mi, e);
        linear_backward(a->moe_deg + r0 * Fe, GRAD_SET, expert_w2(g->moe_w2, m, mi, e), NULL, a->moe_drows + r0 * C,
                        s->eg + r0 * Fe, w2, n, Fe, C);
        mlp_act_backward(c, a->moe_deh + r0 * Fe1, GRAD_SET, a->moe_deg + r0 * Fe, s->eh + r0 * Fe1, n, Fe);
        linear_backward(a->moe_dxin + r0 * C, GRAD_SET, expert_w1(g->moe_w1, m, mi, e), NULL, a->moe_deh + r0 * Fe1,
                        s->xin + r0 * C, w1, n, C, Fe1);
    }
    /* dinp: the shared experts' (written over), the routed rows' and the router's (added) */
    if (m->S) {
        linear_backward(a->moe_dsg, GRAD_SET, g->moe_ws2 + mi * C * SF, NULL, dout, s->sg, w->moe_ws2 + mi * C * SF, N,
                        SF, C);
        mlp_act_backward(c, a->moe_dsh, GRAD_SET, a->moe_dsg, s->sh, N, SF);
        linear_backward(dinp, GRAD_SET, g->moe_ws1 + mi * SF1 * C, NULL, a->moe_dsh, inp, w->moe_ws1 + mi * SF1 * C, N,
                        C, SF1);
    } else {
        zero(dinp, N * C);
    }
    moe_gather_backward(dinp, a->moe_dxin, s->pos, N, K, C);
    /* the balance loss's gradient per normalised score, as its forward left it for this layer */
    const float *coef = NULL;
    if (c->moe_balance == MOE_BALANCE_AUX && c->moe_aux_weight > 0) {
        moe_balance_forward(a->moe_coef, a->moe_coef + E, s->rsc, s->sel, N, E, K, (float)c->moe_aux_weight, sigmoid);
        coef = a->moe_coef;
    }
    moe_route_backward(a->moe_drlog, a->moe_dgate, coef, s->rsc, s->sel, s->gate, N, E, K, sigmoid);
    linear_backward(dinp, GRAD_ADD, g->router + mi * E * C, NULL, a->moe_drlog, inp, w->router + mi * E * C, N, C, E);
}
