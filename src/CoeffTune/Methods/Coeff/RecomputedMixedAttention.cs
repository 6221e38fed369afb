using CoeffTune.Attention;
using TorchSharp;
using static TorchSharp.torch;

namespace CoeffTune.Methods.Coeff;

/// <summary>
/// out = (alpha' mixing of softmax(q k^T / sqrt(d) + mask)) v as one autograd node that keeps only
/// alpha', q, k, v and the mask. The backward pass recomputes the maps F and the mixed maps from q and k,
/// so no (B, H, Nq, Nk) tensor outlives the layer's own forward or backward step: attention memory comes
/// close to the fused kernel's, at the price of one more Q K^T product and softmax per layer in backward.
/// </summary>
/// <remarks>
/// Gradients, with S the scaled scores, F = softmax(S), P = alpha' F (mixed over heads), out = P v:
/// dv = P^T dout; dP = dout v^T; dalpha' = sum_b dP F^T (over the flattened maps); dF = alpha'^T dP;
/// dS = F * (dF - rowsum(dF * F)); dq = dS k / sqrt(d); dk = dS^T q / sqrt(d).
/// </remarks>
internal sealed class RecomputedMixedAttention : autograd.SingleTensorFunction<RecomputedMixedAttention>
{
    public override string Name => nameof(RecomputedMixedAttention);

    // Handles of the gradients returned by the previous backward call on this thread. The engine holds
    // its own references once the call returns; releasing ours at the next call keeps them from living
    // until the end of the training step (one layer's worth lingers, not every layer's).
    [ThreadStatic] private static List<Tensor>? returned;

    /// <summary>vars: alpha' (H, H), q (B, H, Nq, dh), k (B, H, Nk, dh), v (B, H, Nk, dv), additive mask or null.</summary>
    public override Tensor forward(autograd.AutogradContext ctx, params object[] vars)
    {
        var (mix, q, k, v) = ((Tensor)vars[0], (Tensor)vars[1], (Tensor)vars[2], (Tensor)vars[3]);
        var mask = vars[4] as Tensor;
        var saved = new List<Tensor> { mix, q, k, v };
        if (mask is not null) saved.Add(mask);
        ctx.save_for_backward(saved);
        ctx.save_data("scores need grad", q.requires_grad || k.requires_grad);
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        var maps = MultiHeadAttention.AttentionMaps(q, k, mask);
        var mixed = Mix(mix, maps);
        maps.Dispose();
        return matmul(mixed, v).MoveToOuterDisposeScope();
    }

    public override List<Tensor> backward(autograd.AutogradContext ctx, Tensor grad)
    {
        if (returned is not null) foreach (var t in returned) t?.Dispose();
        returned = null;
        List<Tensor> result;
        using (var scope = NewDisposeScope())
        {
            var saved = ctx.get_saved_variables();
            var (mix, q, k, v) = (saved[0], saved[1], saved[2], saved[3]);
            var mask = saved.Count > 4 ? saved[4] : null;   // the mask is saved only when there is one
            long b = q.shape[0], h = q.shape[1], nq = q.shape[2], nk = k.shape[2];
            double scale = 1.0 / Math.Sqrt(q.shape[^1]);

            var maps = MultiHeadAttention.AttentionMaps(q, k, mask);
            var mixed = Mix(mix, maps);
            var gradV = matmul(mixed.transpose(-2, -1), grad);
            mixed.Dispose();
            var gradMixed = matmul(grad, v.transpose(-2, -1));
            var gradMix = matmul(gradMixed.reshape(b, h, nq * nk), maps.reshape(b, h, nq * nk).transpose(1, 2)).sum(dim: 0);
            result = new List<Tensor> { gradMix };
            if ((bool)ctx.get_data("scores need grad"))
            {
                var gradMaps = Mix(mix.t(), gradMixed);
                gradMixed.Dispose();
                // Softmax backward in place: dS = F * (dF - rowsum(dF * F)); the 1/sqrt(d) of the scores is
                // applied to the (smaller) q and k gradients.
                var weighted = gradMaps * maps;
                var rowSums = weighted.sum(-1, keepdim: true);
                weighted.Dispose();
                var gradScores = gradMaps.sub_(rowSums).mul_(maps);
                maps.Dispose();
                result.Add(matmul(gradScores, k).mul_(scale));
                result.Add(matmul(gradScores.transpose(-2, -1), q).mul_(scale));
            }
            else result.AddRange(new Tensor[] { null!, null! });   // q and k are constants here
            result.Add(gradV);
            foreach (var t in result) t?.MoveToOuterDisposeScope();
        }
        grad.Dispose();
        returned = result;
        // No gradient for the mask, a constant.
        return new List<Tensor>(result) { null! };
    }

    /// <summary>Fhat^h = sum_i alpha'[h, i] F^i as one batched matmul over the flattened maps.</summary>
    public static Tensor Mix(Tensor mix, Tensor maps)
    {
        long b = maps.shape[0], h = maps.shape[1], nq = maps.shape[2], nk = maps.shape[3];
        return matmul(mix, maps.reshape(b, h, nq * nk)).view(b, h, nq, nk);
    }
}
