using CoeffTune.Attention;
using TorchSharp;
using static TorchSharp.torch;

namespace CoeffTune.Methods.Coeff;

/// <summary>
/// <see cref="RecomputedMixedAttention"/>'s computation, one tile of queries at a time: for each tile the scores, the
/// maps F, the mixed maps alpha' F (all heads of the tile together, since mixing runs across heads) and their product with
/// v are made while the tile is small enough to stay in cache, and released before the next. The whole key axis is kept,
/// so each row's softmax is exact and no online rescaling is needed. The backward pass walks the same tiles, remaking each
/// tile's maps and fusing the mixing backward with the softmax backward. No (B, H, Nq, Nk) tensor exists at any time:
/// the attention memory of a layer is one tile's, (B, H, T, Nk).
/// </summary>
/// <remarks>
/// Per tile t, with S_t = q_t k^T / sqrt(d) (+ mask rows t), F_t = softmax(S_t), P_t = alpha' F_t, out_t = P_t v:
/// dv += P_t^T dout_t; dP_t = dout_t v^T; dalpha' += sum_b dP_t F_t^T; dF_t = alpha'^T dP_t;
/// dS_t = F_t * (dF_t - rowsum(dF_t * F_t)); dq_t = dS_t k / sqrt(d); dk += dS_t^T q_t / sqrt(d).
/// </remarks>
internal sealed class TiledMixedAttention : autograd.SingleTensorFunction<TiledMixedAttention>
{
    public override string Name => nameof(TiledMixedAttention);

    // Handles of the gradients returned by the previous backward call on this thread, released at the next one
    // (the engine holds its own references by then), as in RecomputedMixedAttention.
    [ThreadStatic] private static List<Tensor>? returned;

    /// <summary>The rows per tile: the largest count whose (B, H, T, Nk) tile stays within <paramref name="tileBytes"/>, at least one.</summary>
    public static long TileRows(long batch, long heads, long keys, long elementBytes, long tileBytes) =>
        Math.Max(1, tileBytes / Math.Max(1, batch * heads * keys * elementBytes));

    /// <summary>vars: alpha' (H, H), q (B, H, Nq, dh), k (B, H, Nk, dh), v (B, H, Nk, dv), additive mask or null, rows per tile (long).</summary>
    public override Tensor forward(autograd.AutogradContext ctx, params object[] vars)
    {
        var (mix, q, k, v) = ((Tensor)vars[0], (Tensor)vars[1], (Tensor)vars[2], (Tensor)vars[3]);
        var mask = vars[4] as Tensor;
        long rows = (long)vars[5];
        var saved = new List<Tensor> { mix, q, k, v };
        if (mask is not null) saved.Add(mask);
        ctx.save_for_backward(saved);
        ctx.save_data("scores need grad", q.requires_grad || k.requires_grad);
        ctx.save_data("rows", rows);
        using var _ = no_grad();
        long b = q.shape[0], h = q.shape[1], nq = q.shape[2];
        var output = empty(new[] { b, h, nq, v.shape[^1] }, v.dtype, v.device);
        using var kt = k.transpose(-2, -1);
        for (long start = 0; start < nq; start += rows)
        {
            using var scope = NewDisposeScope();
            long n = Math.Min(rows, nq - start);
            var maps = MultiHeadAttention.AttentionMaps(q.narrow(2, start, n), k, Rows(mask, start, n));
            var mixed = RecomputedMixedAttention.Mix(mix, maps);
            maps.Dispose();
            output.narrow(2, start, n).copy_(matmul(mixed, v));
        }
        return output;
    }

    public override List<Tensor> backward(autograd.AutogradContext ctx, Tensor grad)
    {
        if (returned is not null) foreach (var t in returned) t?.Dispose();
        returned = null;
        List<Tensor> result;
        using (var outer = NewDisposeScope())
        {
            var saved = ctx.get_saved_variables();
            var (mix, q, k, v) = (saved[0], saved[1], saved[2], saved[3]);
            var mask = saved.Count > 4 ? saved[4] : null;   // the mask is saved only when there is one
            bool scoresNeedGrad = (bool)ctx.get_data("scores need grad");
            long rows = (long)ctx.get_data("rows");
            long b = q.shape[0], h = q.shape[1], nq = q.shape[2];
            double scale = 1.0 / Math.Sqrt(q.shape[^1]);
            var mixT = mix.t();
            var vT = v.transpose(-2, -1);
            var gradMix = zeros_like(mix);
            var gradV = zeros_like(v);
            var gradQ = scoresNeedGrad ? empty_like(q) : null;
            var gradK = scoresNeedGrad ? zeros_like(k) : null;
            for (long start = 0; start < nq; start += rows)
            {
                using var scope = NewDisposeScope();
                long n = Math.Min(rows, nq - start);
                var qt = q.narrow(2, start, n);
                var dout = grad.narrow(2, start, n);
                var maps = MultiHeadAttention.AttentionMaps(qt, k, Rows(mask, start, n));
                var flat = maps.reshape(b, h, n * k.shape[2]);
                var mixed = RecomputedMixedAttention.Mix(mix, maps);
                gradV.add_(matmul(mixed.transpose(-2, -1), dout));
                mixed.Dispose();
                var gradMixed = matmul(dout, vT);
                gradMix.add_(matmul(gradMixed.reshape(b, h, flat.shape[2]), flat.transpose(1, 2)).sum(dim: 0));
                if (!scoresNeedGrad) continue;
                // The mixing backward and the softmax backward on the same tile: dS = F * (alpha'^T dP - rowsum(F * alpha'^T dP)).
                var gradMaps = RecomputedMixedAttention.Mix(mixT, gradMixed);
                gradMixed.Dispose();
                var rowSums = (gradMaps * maps).sum(-1, keepdim: true);
                var gradScores = gradMaps.sub_(rowSums).mul_(maps);
                gradQ!.narrow(2, start, n).copy_(matmul(gradScores, k).mul_(scale));
                gradK!.add_(matmul(gradScores.transpose(-2, -1), qt).mul_(scale));
            }
            result = new List<Tensor> { gradMix, gradQ!, gradK!, gradV };
            foreach (var t in result) t?.MoveToOuterDisposeScope();
        }
        grad.Dispose();
        returned = result;
        // No gradient for the mask (a constant) or the tile size.
        return new List<Tensor>(result) { null!, null! };
    }

    /// <summary>The mask's rows for queries start..start+n: a padding mask (one row for all queries) is shared; a causal one is sliced.</summary>
    private static Tensor? Rows(Tensor? mask, long start, long n) =>
        mask is null || mask.shape[^2] == 1 ? mask : mask.narrow(-2, start, n);
}
